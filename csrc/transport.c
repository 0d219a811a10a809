/* transport.c: sending a request with libcurl on the client's easy handle (one kept-alive
 * connection per client), bounded response bodies, and retries that respect rate limits. */
#include <errno.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "internal.h"

#define BUF_KEEP (256u * 1024) /* a bigger buffer is given back after use, not kept by the client */

void atl_buf_reset(atl_buf *b, size_t limit) {
  if (b->cap > BUF_KEEP) atl_buf_free(b);
  b->len = 0;
  b->limit = limit;
  b->overflow = 0;
  if (b->data) b->data[0] = '\0';
}

int atl_buf_append(atl_buf *b, const char *p, size_t n) {
  if (n > b->limit - b->len) {
    b->overflow = 1;
    return 0;
  }
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    char *d;
    while (cap < b->len + n + 1) cap *= 2;
    if (cap > b->limit + 1) cap = b->limit + 1; /* never more than max_body (+ NUL) */
    d = realloc(b->data, cap);
    if (!d) return 0;
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 1;
}

void atl_buf_free(atl_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  atl_client *c = ud;
  return atl_buf_append(&c->body, p, size * n) ? size * n : 0;
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_seconds(double s) {
  struct timespec ts;
  if (s <= 0) return;
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
  }
}

/* A uniform number in [0, 1) from the client's own xorshift state. */
static double next_unit(unsigned long long *s) {
  unsigned long long x = *s ? *s : 0x9E3779B97F4A7C15ULL;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  *s = x;
  return (double)(x >> 11) / 9007199254740992.0;
}

int atl_is_retryable_status(long status) { return status == 429 || status == 503; }

static int retryable_code(CURLcode rc) {
  switch (rc) {
  case CURLE_COULDNT_CONNECT:
  case CURLE_OPERATION_TIMEDOUT:
  case CURLE_SEND_ERROR:
  case CURLE_RECV_ERROR:
  case CURLE_GOT_NOTHING:
  case CURLE_PARTIAL_FILE:
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM:
    return 1;
  default:
    return 0;
  }
}

/* After a failure of this kind the server may already have acted on the request. */
static int maybe_delivered_code(CURLcode rc) {
  return retryable_code(rc) && rc != CURLE_COULDNT_CONNECT;
}

/* Seconds to wait before attempt number attempt+1. Retry-After wins when the server sent it;
 * otherwise exponential backoff from backoff_base, capped at backoff_max, jittered x0.7-1.3. */
double atl_backoff_delay(const atl_options *o, int attempt, double retry_after, unsigned long long *rng) {
  double d;
  if (retry_after >= 0) return retry_after;
  d = o->backoff_base * pow(2.0, attempt > 0 ? attempt - 1 : 0);
  if (d > o->backoff_max) d = o->backoff_max;
  return d * (0.7 + 0.6 * next_unit(rng));
}

/* Called by libcurl right before it sends a request, also when it silently resends one on a
 * reused connection that turned out dead: more than one call means the server may have acted. */
static int on_prereq(void *ud, char *conn_primary_ip, char *conn_local_ip, int conn_primary_port,
                     int conn_local_port) {
  atl_client *c = ud;
  (void)conn_primary_ip; (void)conn_local_ip; (void)conn_primary_port; (void)conn_local_port;
  c->sends++;
  return CURL_PREREQFUNC_OK;
}

/* Progress callback: once the body has started, a pause longer than stall_timeout stops the
 * transfer (the total timeout alone would let a trickling server hold a call for its full
 * length). libcurl calls this about once a second even when nothing arrives. */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
  atl_client *c = ud;
  double t = now_seconds();
  (void)dltotal; (void)ultotal;
  if (dlnow != c->seen_dl || ulnow != c->seen_ul || dlnow == 0) {
    c->seen_dl = dlnow;
    c->seen_ul = ulnow;
    c->last_progress = t;
    return 0;
  }
  if (t - c->last_progress < c->opt.stall_timeout) return 0;
  c->stalled = 1;
  return 1;
}

/* Gets the stall watch ready for one attempt. */
static void stall_reset(atl_client *c) {
  c->seen_dl = c->seen_ul = 0;
  c->last_progress = now_seconds();
  c->stalled = 0;
}

/* A stalled body reads as a timeout (retryable, the request may have been delivered). */
static CURLcode stall_result(atl_client *c, CURLcode rc) {
  if (!c->stalled || rc != CURLE_ABORTED_BY_CALLBACK) return rc;
  snprintf(c->errbuf, sizeof c->errbuf, "response body stalled: nothing received for %g s (stall_timeout)",
           c->opt.stall_timeout);
  return CURLE_OPERATION_TIMEDOUT;
}

/* The hardening options that do not depend on the call: TLS 1.2 at least, stall watch, no proxy
 * for clear text, counting sends. */
static void set_limits(atl_client *c) {
  CURL *e = c->easy;
  curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
  curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(e, CURLOPT_XFERINFODATA, c);
  /* http is only allowed to loopback: never let a proxy carry the clear-text key elsewhere */
  if (strncmp(c->base_url, "http://", 7) == 0) curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_prereq);
  curl_easy_setopt(e, CURLOPT_PREREQDATA, c);
}

const char *atl_transport_init(atl_client *c, const char *ca_file, const char *proxy) {
  const char *problem;
  CURL *e = curl_easy_init();
  if (!e) return "curl_easy_init failed";
  c->easy = e;
  c->rng = (unsigned long long)time(NULL) ^ ((unsigned long long)(size_t)c << 16);
  c->headers = curl_slist_append(NULL, "Accept: application/json");
  if (c->headers) c->headers = curl_slist_append(c->headers, "Expect:");
  /* an empty POST (enable, disable without message) must not get libcurl's form Content-Type */
  if (c->headers) c->headers = curl_slist_append(c->headers, "Content-Type:");
  c->headers_body = curl_slist_append(NULL, "Accept: application/json");
  if (c->headers_body) c->headers_body = curl_slist_append(c->headers_body, "Expect:");
  if (c->headers_body) c->headers_body = curl_slist_append(c->headers_body, "Content-Type: application/json");
  if (!c->headers || !c->headers_body) return "out of memory";
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
  if (ca_file && (problem = atl_tls_add_ca_file(c, ca_file)) != NULL) return problem;
  if (proxy && curl_easy_setopt(e, CURLOPT_PROXY, proxy) != CURLE_OK) return "proxy not supported";
  curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent);
  curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
  curl_easy_setopt(e, CURLOPT_XOAUTH2_BEARER, c->token);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf);
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(c->opt.timeout * 1000.0));
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(c->opt.connect_timeout * 1000.0));
  curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->opt.max_body);
  set_limits(c);
  return NULL;
}

static void set_method(atl_client *c, const char *method, const char *body, size_t body_len) {
  CURL *e = c->easy;
  if (body) {
    /* Content-Type goes only with a body that has content. */
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, body_len ? c->headers_body : c->headers);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
  } else {
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  }
  curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, strcmp(method, body ? "POST" : "GET") == 0 ? NULL : method);
}

static const char *header_value(CURL *e, const char *name) {
  struct curl_header *h = NULL;
  if (curl_easy_header(e, name, 0, CURLH_HEADER, -1, &h) == CURLHE_OK && h) return h->value;
  return NULL;
}

static void copy_str(char *dst, size_t dstsz, const char *src) {
  size_t n = src ? strlen(src) : 0;
  if (n >= dstsz) n = dstsz - 1;
  if (n) memcpy(dst, src, n);
  dst[n] = '\0';
}

/* Reads what the reply needs from the handle after one attempt. */
static void collect(atl_client *c, atl_reply *r) {
  CURL *e = c->easy;
  char *ct = NULL;
  const char *v;
  curl_off_t ra = -1;
  r->retry_after = -1;
  if (header_value(e, "Retry-After") && curl_easy_getinfo(e, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK)
    r->retry_after = ra >= 0 ? (double)ra : 0;
  curl_easy_getinfo(e, CURLINFO_CONTENT_TYPE, &ct);
  copy_str(c->content_type, sizeof c->content_type, ct);
  r->content_type = ct ? c->content_type : NULL;
  r->have_rate_limit = 0;
  v = header_value(e, "X-RateLimit-Limit");
  if (v) {
    r->have_rate_limit = 1;
    r->rl_limit = strtoll(v, NULL, 10);
    v = header_value(e, "X-RateLimit-Remaining");
    r->rl_remaining = v ? strtoll(v, NULL, 10) : -1;
    v = header_value(e, "X-RateLimit-Reset");
    copy_str(c->rl_reset, sizeof c->rl_reset, v);
    r->rl_reset = v ? c->rl_reset : NULL;
  }
  v = r->status >= 300 && r->status < 400 ? header_value(e, "Location") : NULL;
  copy_str(c->location, sizeof c->location, v);
  r->location = v ? c->location : NULL;
}

void atl_transport_perform(atl_client *c, const atl_op *op, const char *url,
                           const char *body, size_t body_len, atl_reply *r) {
  double start = now_seconds();
  int attempt = 0;
  memset(r, 0, sizeof *r);
  r->op = op;
  r->method = op->method;
  r->url = url;
  r->secret = c->token;
  r->secret_len = c->token_len;
  curl_easy_setopt(c->easy, CURLOPT_URL, url);
  set_method(c, op->method, body, body_len);
  for (;;) {
    CURLcode rc;
    double wait;
    int retry;
    attempt++;
    atl_buf_reset(&c->body, c->opt.max_body);
    c->errbuf[0] = '\0';
    c->sends = 0;
    stall_reset(c);
    rc = stall_result(c, curl_easy_perform(c->easy));
    if (c->sends > 1) r->maybe_delivered = 1;
    r->status = 0;
    curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &r->status);
    r->curl_code = (int)rc;
    r->body_overflow = c->body.overflow;
    r->transport_failed = rc != CURLE_OK;
    if (rc == CURLE_FILESIZE_EXCEEDED) r->body_overflow = 1;
    r->errmsg = c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc);
    collect(c, r);
    retry = r->transport_failed ? (retryable_code(rc) && !r->body_overflow)
                                : atl_is_retryable_status(r->status);
    if (!retry || attempt > c->opt.retries) break;
    if (r->retry_after > c->opt.max_retry_wait) break;   /* the server asks for longer than allowed */
    wait = atl_backoff_delay(&c->opt, attempt, r->retry_after, &c->rng);
    if (wait > c->opt.max_retry_wait) wait = c->opt.max_retry_wait;
    if (r->transport_failed && maybe_delivered_code(rc)) r->maybe_delivered = 1;
    sleep_seconds(wait);
    r->waited += wait;
  }
  r->attempts = attempt;
  r->body = c->body.data ? c->body.data : "";
  r->body_len = c->body.len;
  r->elapsed = now_seconds() - start;
}
