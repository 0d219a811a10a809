/* Private interface shared by the files of atladmin-fake, the fake Atlassian Admin API server. */
#ifndef ATLADMIN_FAKE_H
#define ATLADMIN_FAKE_H

#include <stddef.h>
#include <cjson/cJSON.h>
#include <microhttpd.h>

#define FAKE_MAX_BODY (1024 * 1024) /* request bodies above this get 413 */
#define FAKE_DEFAULT_KEY "test-admin-key"

/* Startup settings; written once by main.c before the daemon starts, read-only afterwards. */
struct fake_config {
  const char *host; /* "127.0.0.1" or "::1" */
  int ipv6;
  int port;        /* requested port, 0 = ephemeral */
  int bound_port;  /* the port actually bound */
  long latency_ms; /* added before every API response */
  long page_size;  /* organization listings */
  int quiet;       /* no per-request log */
  int tls;
};
extern struct fake_config fake_cfg;

/* One HTTP request as it travels through the server. */
struct request {
  struct MHD_Connection *conn;
  char *uri;   /* the raw request target as received */
  char *path;  /* raw path, percent-encodings intact */
  char *query; /* raw query without '?', "" when none */
  const char *method;
  char *body;
  size_t len, cap;
  int too_big;
  int started;
  int control;  /* a /_fake/ request: no auth, faults, latency or recording */
  cJSON *fault; /* the fault this request consumed, or NULL */
};

/* A response before it goes on the wire: routes build one, faults may reshape it. */
struct reply {
  int status;
  char *body; /* malloc'ed, NULL for no body */
  size_t len;
  const char *ctype; /* static string; NULL means application/json when there is a body */
  cJSON *headers;    /* extra headers, name -> string; owned, may be NULL */
};

/* util.c */
char *fake_strdup(const char *s);
char *fake_strndup(const char *s, size_t n);
void *fake_xmalloc(size_t n);
char *fake_pct_decode(const char *s, size_t n, size_t *outlen);
char *fake_pct_encode(const char *s);
void fake_iso_time(long long epoch_ms, char *out, size_t outsz);
long long fake_now_ms(void);
int fake_stopping(void);
void fake_request_stop(void);
int fake_nap(long ms, int fd);
int fake_client_gone(int fd);
void fake_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* reply helpers (http.c) */
void reply_set(struct reply *r, int status, char *body);
void reply_json(struct reply *r, int status, cJSON *doc);
void reply_error(struct reply *r, int status, const char *key, const char *message);
void reply_header(struct reply *r, const char *name, const char *value);
void reply_free(struct reply *r);
const char *request_header(const struct request *rq, const char *name);
int request_fd(const struct request *rq);
enum MHD_Result send_reply(struct request *rq, struct reply *r);
void add_ratelimit_headers(struct MHD_Response *resp, const cJSON *overrides);
void log_request(const struct request *rq, const char *outcome);

/* state.c: every state_* call below takes the state lock itself unless it says otherwise */
int state_load_file(const char *path, char *err, size_t errsz);
int state_replace(cJSON *doc, char *err, size_t errsz);
void state_set_cli_key(const char *key);
int state_key_matches(const char *presented);
char *state_print(void);
void state_lock(void);
void state_unlock(void);
void state_free(void);
/* these need the lock held */
cJSON *state_account(const char *id);
cJSON *state_org(const char *id);
cJSON *state_accounts(void);
int state_denied(const cJSON *account, const char *privilege);
int state_normalize(cJSON *root, char *err, size_t errsz);

/* sample.c */
cJSON *sample_state(int accounts);

/* routes.c */
void routes_handle(struct request *rq, struct reply *out);

/* faults.c */
int faults_add(const cJSON *spec, char *err, size_t errsz);
cJSON *faults_take(const char *method, const char *path);
cJSON *faults_list(void);
void faults_clear(void);
enum MHD_Result fault_deliver(struct request *rq, struct reply *normal);

/* control.c */
void control_handle(struct request *rq, struct reply *out);
void reqlog_add(const struct request *rq);
void reqlog_free(void);

/* http.c */
struct MHD_Daemon *http_start(const char *tls_cert, const char *tls_key, char *err, size_t errsz);
void http_stop(struct MHD_Daemon *d);

#endif
