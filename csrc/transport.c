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

size_t atl_on_body(char *p, size_t size, size_t n, void *buf) {
  return atl_buf_append(buf, p, size * n) ? size * n : 0;
}

double atl_now(void) {
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
  atl_watch *w = ud;
  (void)conn_primary_ip; (void)conn_local_ip; (void)conn_primary_port; (void)conn_local_port;
  w->sends++;
  return CURL_PREREQFUNC_OK;
}

/* Progress callback: once the body has started, a pause longer than stall_timeout stops the
 * transfer (the total timeout alone would let a trickling server hold a call for its full
 * length). libcurl calls this about once a second even when nothing arrives. */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
  atl_watch *w = ud;
  double t = atl_now();
  (void)dltotal; (void)ultotal;
  if (dlnow != w->seen_dl || ulnow != w->seen_ul || dlnow == 0) {
    w->seen_dl = dlnow;
    w->seen_ul = ulnow;
    w->last_progress = t;
    return 0;
  }
  if (t - w->last_progress < w->opt->stall_timeout) return 0;
  w->stalled = 1;
  return 1;
}

/* Points handle e's callbacks at watch w (each transfer has its own). */
void atl_watch_arm(CURL *e, atl_watch *w, const atl_options *o, char *errbuf) {
  w->opt = o;
  w->errbuf = errbuf;
  curl_easy_setopt(e, CURLOPT_XFERINFODATA, w);
  curl_easy_setopt(e, CURLOPT_PREREQDATA, w);
}

/* Gets the watch ready for one attempt. */
void atl_watch_reset(atl_watch *w) {
  w->sends = 0;
  w->seen_dl = w->seen_ul = 0;
  w->last_progress = atl_now();
  w->stalled = 0;
}

/* A stalled body reads as a timeout (retryable, the request may have been delivered). */
static CURLcode stall_result(atl_watch *w, CURLcode rc) {
  if (!w->stalled || rc != CURLE_ABORTED_BY_CALLBACK) return rc;
  snprintf(w->errbuf, CURL_ERROR_SIZE, "response body stalled: nothing received for %g s (stall_timeout)",
           w->opt->stall_timeout);
  return CURLE_OPERATION_TIMEDOUT;
}

/* The hardening options that do not depend on the call: TLS 1.2 at least, stall watch, no proxy
 * for clear text, counting sends. */
static void set_limits(atl_client *c) {
  CURL *e = c->easy;
  curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
  curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
  /* http is only allowed to loopback: never let a proxy carry the clear-text key elsewhere */
  if (strncmp(c->base_url, "http://", 7) == 0) curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_prereq);
  atl_watch_arm(e, &c->watch, &c->opt, c->rb.errbuf);
}

/* The header lines every request carries. User-Agent and Accept-Encoding are given here as
 * ready-made lines: through CURLOPT_USERAGENT / CURLOPT_ACCEPT_ENCODING libcurl formats them
 * anew for every request, a cost that shows on loopback benchmarks. CURLOPT_ACCEPT_ENCODING
 * stays set, since it is what turns on decoding; libcurl then sends this line instead of its. */
static struct curl_slist *common_headers(const char *user_agent) {
  const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
  char line[512];
  struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json");
  snprintf(line, sizeof line, "Accept-Encoding: %s%s%s", (v->features & CURL_VERSION_LIBZ) ? "deflate, gzip" : "identity",
           (v->features & CURL_VERSION_BROTLI) ? ", br" : "", (v->features & CURL_VERSION_ZSTD) ? ", zstd" : "");
  if (h) h = curl_slist_append(h, line);
  if (h && strlen(user_agent) < sizeof line - 16) {
    snprintf(line, sizeof line, "User-Agent: %s", user_agent);
    h = curl_slist_append(h, line);
  }
  if (h) h = curl_slist_append(h, "Expect:");
  return h;
}

const char *atl_transport_init(atl_client *c, const char *ca_file, const char *proxy) {
  const char *problem;
  CURL *e = curl_easy_init();
  if (!e) return "curl_easy_init failed";
  c->easy = e;
  c->rng = (unsigned long long)time(NULL) ^ ((unsigned long long)(size_t)c << 16);
  c->headers = common_headers(c->user_agent);
  /* an empty POST (enable, disable without message) must not get libcurl's form Content-Type */
  if (c->headers) c->headers = curl_slist_append(c->headers, "Content-Type:");
  c->headers_body = common_headers(c->user_agent);
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
  curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
  curl_easy_setopt(e, CURLOPT_XOAUTH2_BEARER, c->token);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, atl_on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &c->body);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->rb.errbuf);
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(c->opt.timeout * 1000.0));
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(c->opt.connect_timeout * 1000.0));
  curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->opt.max_body);
  set_limits(c);
  return NULL;
}

void atl_set_method(CURL *e, struct curl_slist *headers, struct curl_slist *headers_body,
                    const char *method, const char *body, size_t body_len) {
  if (body) {
    /* Content-Type goes only with a body that has content. */
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, body_len ? headers_body : headers);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
  } else {
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
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
static void collect(CURL *e, atl_reply_bufs *rb, atl_reply *r) {
  char *ct = NULL;
  const char *v;
  curl_off_t ra = -1;
  r->retry_after = -1;
  if (header_value(e, "Retry-After") && curl_easy_getinfo(e, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK)
    r->retry_after = ra >= 0 ? (double)ra : 0;
  curl_easy_getinfo(e, CURLINFO_CONTENT_TYPE, &ct);
  copy_str(rb->content_type, sizeof rb->content_type, ct);
  r->content_type = ct ? rb->content_type : NULL;
  r->have_rate_limit = 0;
  v = header_value(e, "X-RateLimit-Limit");
  if (v) {
    r->have_rate_limit = 1;
    r->rl_limit = strtoll(v, NULL, 10);
    v = header_value(e, "X-RateLimit-Remaining");
    r->rl_remaining = v ? strtoll(v, NULL, 10) : -1;
    v = header_value(e, "X-RateLimit-Reset");
    copy_str(rb->rl_reset, sizeof rb->rl_reset, v);
    r->rl_reset = v ? rb->rl_reset : NULL;
  }
  v = r->status >= 300 && r->status < 400 ? header_value(e, "Location") : NULL;
  copy_str(rb->location, sizeof rb->location, v);
  r->location = v ? rb->location : NULL;
}

/* Fills r from one finished attempt on e (result rc, response body in body, watched by w). */
void atl_attempt_done(CURL *e, CURLcode rc, const atl_buf *body, atl_reply_bufs *rb, atl_watch *w,
                      atl_reply *r) {
  rc = stall_result(w, rc);
  if (w->sends > 1) r->maybe_delivered = 1;
  r->status = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
  r->curl_code = (int)rc;
  r->body_overflow = body->overflow;
  r->transport_failed = rc != CURLE_OK;
  if (rc == CURLE_FILESIZE_EXCEEDED) r->body_overflow = 1;
  r->errmsg = rb->errbuf[0] ? rb->errbuf : curl_easy_strerror(rc);
  collect(e, rb, r);
}

/* Decides whether attempt number `attempt` (just finished, described by r) is tried again:
 * returns 1 with *wait set to the seconds to wait first, or 0 when r is the final reply. */
int atl_retry_wait(const atl_options *o, atl_reply *r, int attempt, unsigned long long *rng, double *wait) {
  CURLcode rc = (CURLcode)r->curl_code;
  int retry = r->transport_failed ? (retryable_code(rc) && !r->body_overflow)
                                  : atl_is_retryable_status(r->status);
  if (!retry || attempt > o->retries) return 0;
  if (r->retry_after > o->max_retry_wait) return 0;   /* the server asks for longer than allowed */
  *wait = atl_backoff_delay(o, attempt, r->retry_after, rng);
  if (*wait > o->max_retry_wait) *wait = o->max_retry_wait;
  if (r->transport_failed && maybe_delivered_code(rc)) r->maybe_delivered = 1;
  return 1;
}

void atl_transport_perform(atl_client *c, const atl_op *op, const char *url,
                           const char *body, size_t body_len, atl_reply *r) {
  double start = atl_now();
  int attempt = 0;
  memset(r, 0, sizeof *r);
  r->op = op;
  r->method = op->method;
  r->url = url;
  r->secret = c->token;
  r->secret_len = c->token_len;
  curl_easy_setopt(c->easy, CURLOPT_URL, url);
  atl_set_method(c->easy, c->headers, c->headers_body, op->method, body, body_len);
  for (;;) {
    CURLcode rc;
    double wait;
    attempt++;
    atl_buf_reset(&c->body, c->opt.max_body);
    c->rb.errbuf[0] = '\0';
    atl_watch_reset(&c->watch);
    rc = curl_easy_perform(c->easy);
    atl_attempt_done(c->easy, rc, &c->body, &c->rb, &c->watch, r);
    if (!atl_retry_wait(&c->opt, r, attempt, &c->rng, &wait)) break;
    sleep_seconds(wait);
    r->waited += wait;
  }
  r->attempts = attempt;
  r->body = c->body.data ? c->body.data : "";
  r->body_len = c->body.len;
  r->elapsed = atl_now() - start;
}
