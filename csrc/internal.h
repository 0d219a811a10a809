/* internal.h: the private declarations shared by the C core's files (nothing here is exported). */
#ifndef ATLADMIN_INTERNAL_H
#define ATLADMIN_INTERNAL_H

#include <stddef.h>
#include <curl/curl.h>
#include "compat.h"

#define ATLADMIN_VERSION "0.1.0"
#define ATL_CLIENT_MT "atladmin.Client"
#define ATL_ERROR_MT "atladmin.Error"
#define ATL_BOX_MT "atladmin.json_box"

#define ATL_MAX_ID_LEN 1024     /* longest account or token id accepted */
#define ATL_MAX_DEPTH 200       /* deepest JSON nesting turned into Lua tables */
#define ATL_ERR_BODY_MAX 4096   /* how much of an error body err.body keeps */
#define ATL_LOCATION_MAX 512    /* how much of a Location header is kept */

/* A growable byte buffer with a hard limit (the response body). */
typedef struct atl_buf {
  char *data;
  size_t len, cap, limit;
  int overflow;                 /* set when the body went past limit */
} atl_buf;

/* One API operation: method, path template ('%' marks an encoded segment), expected status. */
typedef enum { ATL_RES_TOKENS, ATL_RES_JSON, ATL_RES_ACCOUNT, ATL_RES_PAGE, ATL_RES_NONE } atl_result_kind;
typedef struct atl_op {
  const char *name;
  const char *method;
  const char *path;
  int nsegs;
  long ok_status;
  atl_result_kind result;
} atl_op;

extern const atl_op atl_op_tokens, atl_op_revoke, atl_op_permissions, atl_op_profile,
    atl_op_update_profile, atl_op_disable, atl_op_enable, atl_op_org_users, atl_op_org_tokens;

/* What one finished call looks like to the decoder, whichever transport produced it. */
typedef struct atl_reply {
  const atl_op *op;
  const char *method, *url;
  long status;                  /* 0 when no HTTP response arrived */
  const char *body;
  size_t body_len;
  int body_overflow;
  const char *content_type;
  int transport_failed;         /* no usable response: code/errmsg say why */
  int curl_code;
  const char *errmsg;
  int attempts;
  double elapsed;
  double retry_after;           /* seconds, < 0 when not sent */
  double waited;                /* seconds slept between attempts */
  int maybe_delivered;          /* an earlier attempt may have reached the server */
  int have_rate_limit;
  long long rl_limit, rl_remaining;
  const char *rl_reset;
  const char *location;
  const char *secret;           /* the admin key, so that nothing echoed back can show it */
  size_t secret_len;
} atl_reply;

typedef struct atl_options {
  double timeout, connect_timeout;
  double backoff_base, backoff_max, max_retry_wait;
  int retries;
  size_t max_body;
  double stall_timeout;          /* abort when a started body pauses this long */
} atl_options;

/* Where one attempt's response metadata is copied (reply strings point into it). */
typedef struct atl_reply_bufs {
  char errbuf[CURL_ERROR_SIZE];
  char content_type[128];
  char rl_reset[64];
  char location[ATL_LOCATION_MAX];
} atl_reply_bufs;

/* What libcurl's callbacks watch during one attempt of one transfer: the requests it sent (it
 * may resend on a reused connection) and the stall watch (bytes seen, when they last grew). */
typedef struct atl_watch {
  const atl_options *opt;
  char *errbuf;
  int sends;
  curl_off_t seen_dl, seen_ul;
  double last_progress;
  int stalled;
} atl_watch;

typedef struct atl_client {
  CURL *easy;
  struct curl_slist *headers;       /* Accept (+ nothing secret) */
  struct curl_slist *headers_body;  /* the same plus Content-Type, for calls with a body */
  char *base_url;
  char *token;
  size_t token_len;
  char *user_agent;
  atl_options opt;
  unsigned long long rng;
  atl_buf body;
  atl_reply_bufs rb;
  atl_watch watch;
  char *ca_pem;                     /* ca_file's certificates, added to each TLS context */
  size_t ca_pem_len;
  int closed;
} atl_client;

/* buf */
void atl_buf_reset(atl_buf *b, size_t limit);
int atl_buf_append(atl_buf *b, const char *p, size_t n);
void atl_buf_free(atl_buf *b);

/* request.c: pure request building */
const char *atl_check_base_url(const char *url, char *norm, size_t normsz);
const char *atl_id_problem(const char *s, size_t len);
void atl_check_id(lua_State *L, int arg, const char *what, const char **s, size_t *len);
void atl_push_url(lua_State *L, const char *base, const atl_op *op,
                  const char *const *segs, const size_t *lens, const char *query);
void atl_encode_segment(luaL_Buffer *b, const char *s, size_t len);
const atl_op *atl_op_by_name(const char *name);

/* transport.c: libcurl */
const char *atl_transport_init(atl_client *c, const char *ca_file, const char *proxy);
void atl_transport_perform(atl_client *c, const atl_op *op, const char *url,
                           const char *body, size_t body_len, atl_reply *r);
int atl_is_retryable_status(long status);
double atl_backoff_delay(const atl_options *o, int attempt, double retry_after, unsigned long long *rng);
/* the pieces of one attempt, shared with multi.c */
double atl_now(void);
size_t atl_on_body(char *p, size_t size, size_t n, void *buf);
void atl_set_method(CURL *e, struct curl_slist *headers, struct curl_slist *headers_body,
                    const char *method, const char *body, size_t body_len);
void atl_watch_arm(CURL *e, atl_watch *w, const atl_options *o, char *errbuf);
void atl_watch_reset(atl_watch *w);
void atl_attempt_done(CURL *e, CURLcode rc, const atl_buf *body, atl_reply_bufs *rb, atl_watch *w,
                      atl_reply *r);
int atl_retry_wait(const atl_options *o, atl_reply *r, int attempt, unsigned long long *rng, double *wait);

void atl_push_query(lua_State *L, int idx, const char *what);

/* tls.c: ca_file adds to the system trust store */
const char *atl_tls_add_ca_file(atl_client *c, const char *path);

/* decode.c: JSON -> Lua and replies -> results */
int atl_push_json(lua_State *L, const void *cjson_item, int depth);
int atl_push_reply(lua_State *L, const atl_reply *r);
void **atl_push_box(lua_State *L, void (*release)(void *));
void atl_push_null(lua_State *L);

/* jsonlua.c: JSON text straight to Lua values (the token-list fast path) */
int atl_json_to_lua(lua_State *L, const char *s, size_t len, int tokens, const char **why);

/* encode.c: Lua -> JSON text (request bodies) */
void atl_push_json_text(lua_State *L, int idx, const char *what);
int atl_is_array_marked(lua_State *L, int idx);
int atl_mark_array(lua_State *L);

/* errors.c */
void atl_push_error(lua_State *L, const atl_reply *r, const char *kind, const char *message);
void atl_error_details(const char *body, size_t len, char *key, size_t keysz, char *msg, size_t msgsz);
void atl_register_error(lua_State *L);

/* multi.c: the Queue (many requests at once, non-blocking driving) */
int atl_queue_new(lua_State *L);
void atl_register_queue(lua_State *L);

/* protocol.c: request building and decoding for Lua transports (module field `protocol`) */
void atl_register_protocol(lua_State *L);

/* atladmin.c */
void atl_register_type(lua_State *L, const char *mt, const luaL_Reg *meta, const luaL_Reg *methods);

/* client.c */
int atl_client_new(lua_State *L);
void atl_register_client(lua_State *L);

#endif
