/* libmicrohttpd glue: raw request targets, bounded bodies, dispatch, replies, headers, logging. */
#include "fake.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define RATE_LIMIT 1000 /* requests per minute window, only reported, never enforced */

static char *tls_cert_pem, *tls_key_pem; /* MHD keeps pointers to these while it runs */
static pthread_mutex_t rate_mutex = PTHREAD_MUTEX_INITIALIZER;
static long long rate_window; /* minute number since the epoch */
static long rate_used;

/* ---- replies ---- */

void reply_set(struct reply *r, int status, char *body) {
  free(r->body);
  r->status = status;
  r->body = body;
  r->len = body ? strlen(body) : 0;
}

void reply_json(struct reply *r, int status, cJSON *doc) {
  reply_set(r, status, cJSON_PrintUnformatted(doc));
  r->ctype = "application/json";
  cJSON_Delete(doc);
}

void reply_error(struct reply *r, int status, const char *key, const char *message) {
  cJSON *doc = cJSON_CreateObject();
  cJSON_AddStringToObject(doc, "key", key);
  if (message)
    cJSON_AddStringToObject(doc, "message", message);
  reply_json(r, status, doc);
}

void reply_header(struct reply *r, const char *name, const char *value) {
  if (!r->headers)
    r->headers = cJSON_CreateObject();
  cJSON_AddStringToObject(r->headers, name, value);
}

void reply_free(struct reply *r) {
  free(r->body);
  cJSON_Delete(r->headers);
  memset(r, 0, sizeof *r);
}

/* ---- request helpers ---- */

const char *request_header(const struct request *rq, const char *name) {
  return MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name);
}

int request_fd(const struct request *rq) {
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(rq->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
  return ci ? ci->connect_fd : -1;
}

void log_request(const struct request *rq, const char *outcome) {
  if (fake_cfg.quiet)
    return;
  /* the bearer key never reaches the log: only the scheme is shown */
  fake_log("atladmin-fake: %s %s -> %s%s\n", rq->method ? rq->method : "?", rq->path, outcome,
           request_header(rq, MHD_HTTP_HEADER_AUTHORIZATION) ? " (Authorization: Bearer ***)" : "");
}

static int has_header(const cJSON *headers, const char *name) {
  const cJSON *h;
  cJSON_ArrayForEach(h, headers) {
    if (strcasecmp(h->string, name) == 0)
      return 1;
  }
  return 0;
}

/* Adds the X-RateLimit-* trio, except names the caller sets itself in `overrides`. */
void add_ratelimit_headers(struct MHD_Response *resp, const cJSON *overrides) {
  char num[32], reset[40];
  long long now = fake_now_ms(), minute = now / 60000;
  long remaining;
  pthread_mutex_lock(&rate_mutex);
  if (minute != rate_window) {
    rate_window = minute;
    rate_used = 0;
  }
  rate_used++;
  remaining = rate_used >= RATE_LIMIT ? 0 : RATE_LIMIT - rate_used;
  pthread_mutex_unlock(&rate_mutex);
  snprintf(num, sizeof num, "%d", RATE_LIMIT);
  if (!has_header(overrides, "X-RateLimit-Limit"))
    MHD_add_response_header(resp, "X-RateLimit-Limit", num);
  snprintf(num, sizeof num, "%ld", remaining);
  if (!has_header(overrides, "X-RateLimit-Remaining"))
    MHD_add_response_header(resp, "X-RateLimit-Remaining", num);
  fake_iso_time((minute + 1) * 60000, reset, sizeof reset);
  if (!has_header(overrides, "X-RateLimit-Reset"))
    MHD_add_response_header(resp, "X-RateLimit-Reset", reset);
}

enum MHD_Result send_reply(struct request *rq, struct reply *r) {
  struct MHD_Response *resp;
  enum MHD_Result ret;
  const cJSON *h;
  char outcome[16];

  resp = MHD_create_response_from_buffer(r->len, r->body, MHD_RESPMEM_MUST_COPY);
  if (!resp) {
    reply_free(r);
    return MHD_NO;
  }
  if (r->ctype)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->ctype);
  else if (r->len)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
  if (!rq->control)
    add_ratelimit_headers(resp, r->headers);
  cJSON_ArrayForEach(h, r->headers) {
    if (cJSON_IsString(h))
      MHD_add_response_header(resp, h->string, h->valuestring);
  }
  ret = MHD_queue_response(rq->conn, (unsigned)r->status, resp);
  MHD_destroy_response(resp);
  snprintf(outcome, sizeof outcome, "%d", r->status);
  log_request(rq, outcome);
  reply_free(r);
  return ret;
}

/* ---- MHD callbacks ---- */

static void request_free(struct request *rq) {
  if (!rq)
    return;
  free(rq->uri);
  free(rq->path);
  free(rq->query);
  free(rq->body);
  cJSON_Delete(rq->fault);
  free(rq);
}

static struct request *request_new(const char *uri, struct MHD_Connection *conn) {
  struct request *rq = fake_xmalloc(sizeof *rq);
  const char *q;
  memset(rq, 0, sizeof *rq);
  rq->conn = conn;
  rq->uri = fake_strdup(uri ? uri : "/");
  q = strchr(rq->uri, '?');
  if (q) {
    rq->path = fake_strndup(rq->uri, (size_t)(q - rq->uri));
    rq->query = fake_strdup(q + 1);
  } else {
    rq->path = fake_strdup(rq->uri);
    rq->query = fake_strdup("");
  }
  return rq;
}

/* Called with the request target exactly as sent, before MHD splits or unescapes it. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn) {
  return request_new(uri, conn);
}

/* Keep every escape: routing splits the raw path on '/' and decodes each segment itself. */
static size_t unescape_nothing(void *cls, struct MHD_Connection *conn, char *s) {
  return strlen(s);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  request_free(*con_cls);
  *con_cls = NULL;
}

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt,
                                                             va_list ap) {
  /* MHD notes every connection a fault ends on purpose (drop, hang, truncate...): the
     request's own log line already says what happened, so those notes are noise */
  if (fake_cfg.quiet || strstr(fmt, "pplication reported") || strstr(fmt, "pplication error") ||
      strstr(fmt, "application reported"))
    return;
  flockfile(stderr);
  fputs("atladmin-fake: mhd: ", stderr);
  vfprintf(stderr, fmt, ap);
  fflush(stderr);
  funlockfile(stderr);
}

static enum MHD_Result too_big(struct request *rq) {
  struct reply r;
  memset(&r, 0, sizeof r);
  reply_error(&r, 413, "payloadTooLarge", "request body exceeds 1 MiB");
  reply_header(&r, MHD_HTTP_HEADER_CONNECTION, "close");
  return send_reply(rq, &r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
  struct request *rq = *con_cls;
  struct reply r;
  int fd;

  if (!rq) {
    rq = request_new(url, conn);
    *con_cls = rq;
  }
  if (!rq->started) {
    const char *cl;
    rq->started = 1;
    rq->conn = conn;
    rq->method = method;
    rq->control = strncmp(rq->path, "/_fake/", 7) == 0 || strcmp(rq->path, "/_fake") == 0;
    if (!rq->control)
      rq->fault = faults_take(method, rq->path);
    cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > FAKE_MAX_BODY)
      return too_big(rq);
    return MHD_YES;
  }
  if (*upload_data_size) {
    size_t n = *upload_data_size;
    *upload_data_size = 0;
    if (rq->too_big || rq->len + n > FAKE_MAX_BODY) {
      rq->too_big = 1;
      return MHD_YES;
    }
    if (rq->len + n + 1 > rq->cap) {
      size_t cap = rq->cap ? rq->cap : 1024;
      char *grown;
      while (cap < rq->len + n + 1)
        cap *= 2;
      grown = realloc(rq->body, cap);
      if (!grown)
        return MHD_NO;
      rq->body = grown;
      rq->cap = cap;
    }
    memcpy(rq->body + rq->len, upload_data, n);
    rq->len += n;
    rq->body[rq->len] = '\0';
    return MHD_YES;
  }

  /* the whole request is in */
  if (rq->too_big)
    return too_big(rq);
  memset(&r, 0, sizeof r);
  if (rq->control) {
    control_handle(rq, &r);
    return send_reply(rq, &r);
  }
  reqlog_add(rq);
  fd = request_fd(rq);
  if (fake_cfg.latency_ms > 0 && fake_nap(fake_cfg.latency_ms, fd) != 0) {
    log_request(rq, "abandoned");
    return MHD_NO;
  }
  if (rq->fault)
    return fault_deliver(rq, &r);
  routes_handle(rq, &r);
  return send_reply(rq, &r);
}

static char *read_pem(const char *path, char *err, size_t errsz) {
  FILE *f = fopen(path, "rb");
  char *buf;
  size_t got;
  if (!f) {
    snprintf(err, errsz, "cannot open %s", path);
    return NULL;
  }
  buf = fake_xmalloc(256 * 1024);
  got = fread(buf, 1, 256 * 1024 - 1, f);
  fclose(f);
  buf[got] = '\0';
  return buf;
}

struct MHD_Daemon *http_start(const char *tls_cert, const char *tls_key, char *err, size_t errsz) {
  struct sockaddr_in sa4;
  struct sockaddr_in6 sa6;
  struct sockaddr *sa;
  unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                   MHD_USE_ERROR_LOG;
  struct MHD_Daemon *d;
  const union MHD_DaemonInfo *info;
  char *cert, *key;

  memset(&sa4, 0, sizeof sa4);
  memset(&sa6, 0, sizeof sa6);
  if (fake_cfg.ipv6) {
    sa6.sin6_family = AF_INET6;
    sa6.sin6_port = htons((unsigned short)fake_cfg.port);
    sa6.sin6_addr = in6addr_loopback;
    sa = (struct sockaddr *)&sa6;
    flags |= MHD_USE_IPv6;
  } else {
    sa4.sin_family = AF_INET;
    sa4.sin_port = htons((unsigned short)fake_cfg.port);
    inet_pton(AF_INET, fake_cfg.host, &sa4.sin_addr);
    sa = (struct sockaddr *)&sa4;
  }

  if (fake_cfg.tls) {
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
      snprintf(err, errsz, "libmicrohttpd was built without TLS");
      return NULL;
    }
    cert = tls_cert_pem = read_pem(tls_cert, err, errsz);
    key = tls_key_pem = cert ? read_pem(tls_key, err, errsz) : NULL;
    if (!cert || !key)
      return NULL;
    d = MHD_start_daemon(
        flags | MHD_USE_TLS, (unsigned short)fake_cfg.port, NULL, NULL, on_request, NULL,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL, MHD_OPTION_SOCK_ADDR, sa,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL, MHD_OPTION_UNESCAPE_CALLBACK, unescape_nothing,
        NULL, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)1000, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)300, MHD_OPTION_THREAD_STACK_SIZE,
        (size_t)(512 * 1024), MHD_OPTION_HTTPS_MEM_CERT, cert, MHD_OPTION_HTTPS_MEM_KEY, key,
        MHD_OPTION_END);
  } else {
    d = MHD_start_daemon(flags, (unsigned short)fake_cfg.port, NULL, NULL, on_request, NULL,
                         MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL, MHD_OPTION_SOCK_ADDR, sa,
                         MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL, MHD_OPTION_UNESCAPE_CALLBACK,
                         unescape_nothing, NULL, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000, MHD_OPTION_CONNECTION_TIMEOUT,
                         (unsigned)300, MHD_OPTION_THREAD_STACK_SIZE, (size_t)(512 * 1024),
                         MHD_OPTION_END);
  }
  if (!d) {
    snprintf(err, errsz, "cannot listen on %s port %d", fake_cfg.host, fake_cfg.port);
    return NULL;
  }
  info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
  fake_cfg.bound_port = info ? info->port : fake_cfg.port;
  return d;
}

void http_stop(struct MHD_Daemon *d) {
  if (d)
    MHD_stop_daemon(d);
  free(tls_cert_pem);
  free(tls_key_pem);
  tls_cert_pem = tls_key_pem = NULL;
}
