/* multi.c: the atladmin.Queue userdata: many requests in flight at once on libcurl's multi
 * interface, driven without blocking longer than asked (step(timeout), pollfd/events/timeout).
 * Retries follow the single-call rules (transport.c); a 429 pauses the whole queue. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include "internal.h"

#define ATL_QUEUE_MT "atladmin.Queue"
#define MAX_CONCURRENCY 1024
#define MAX_EVENTS 64

/* One request: its own buffers, an easy handle while it runs, its reply once finished. */
typedef struct atl_xfer {
  struct atl_xfer *next;            /* in the pending, waiting or done list */
  struct atl_xfer *all_prev, *all_next; /* every live request, for close */
  struct atl_xfer *run_prev, *run_next; /* requests running now, for the stall watch */
  CURL *easy;                       /* while running */
  const atl_op *op;
  lua_Integer id;
  char *url, *body, *arg1, *arg2;   /* malloc'ed copies */
  size_t body_len;
  int has_body;
  int attempt;
  double start, waited, ready_at;
  atl_buf resp;
  atl_reply_bufs rb;
  atl_watch watch;
  atl_reply r;
} atl_xfer;

typedef struct atl_queue {
  CURLM *multi;
  atl_client *client;               /* kept alive by client_ref */
  int client_ref;
  int epfd;
  double timer_at;                  /* when libcurl wants to be called, < 0 for never */
  double paused_until;              /* no request starts before this (rate limited) */
  int concurrency, running;
  size_t live;                      /* requests queued and not yet reported */
  lua_Integer next_id;
  atl_xfer *pending, *pending_tail; /* not started yet, in order */
  atl_xfer *waiting;                /* between attempts */
  atl_xfer *done, *done_tail;       /* finished, not yet reported */
  atl_xfer *all;
  atl_xfer *run;                    /* running now */
  CURL **idle;                      /* easy handles to reuse */
  int nidle;
  int closed;
} atl_queue;

/* ---- lifetime ---- */

static void xfer_free(atl_queue *q, atl_xfer *x) {
  if (x->all_prev) x->all_prev->all_next = x->all_next;
  else q->all = x->all_next;
  if (x->all_next) x->all_next->all_prev = x->all_prev;
  if (x->easy) curl_easy_cleanup(x->easy);
  free(x->url);
  free(x->body);
  free(x->arg1);
  free(x->arg2);
  atl_buf_free(&x->resp);
  free(x);
}

/* Frees everything the queue owns; idempotent (close, __gc, __close). */
static void queue_release(lua_State *L, atl_queue *q) {
  int i;
  while (q->all) {
    atl_xfer *x = q->all;
    if (x->easy && q->multi) curl_multi_remove_handle(q->multi, x->easy);
    xfer_free(q, x);
  }
  for (i = 0; i < q->nidle; i++) curl_easy_cleanup(q->idle[i]);
  free(q->idle);
  q->idle = NULL;
  q->nidle = 0;
  if (q->multi) curl_multi_cleanup(q->multi);
  q->multi = NULL;
  if (q->epfd >= 0) close(q->epfd);
  q->epfd = -1;
  if (q->client_ref != LUA_NOREF && L) luaL_unref(L, LUA_REGISTRYINDEX, q->client_ref);
  q->client_ref = LUA_NOREF;
  q->client = NULL;
  q->pending = q->pending_tail = q->waiting = q->done = q->done_tail = q->run = NULL;
  q->running = 0;
  q->live = 0;
  q->closed = 1;
}

static atl_queue *check_queue(lua_State *L, const char *method) {
  atl_queue *q = luaL_checkudata(L, 1, ATL_QUEUE_MT);
  if (q->closed) luaL_error(L, "atladmin: queue:%s called on a closed queue", method);
  if (q->client->closed) {
    queue_release(L, q);
    luaL_error(L, "atladmin: queue:%s called after its client was closed", method);
  }
  return q;
}

static int queue_gc(lua_State *L) {
  atl_queue *q = luaL_checkudata(L, 1, ATL_QUEUE_MT);
  queue_release(L, q);
  return 0;
}

static int queue_tostring(lua_State *L) {
  atl_queue *q = luaL_checkudata(L, 1, ATL_QUEUE_MT);
  if (q->closed) lua_pushliteral(L, "atladmin.queue (closed)");
  else lua_pushfstring(L, "atladmin.queue (%d running, %d not reported)", q->running, (int)q->live);
  return 1;
}

/* ---- libcurl callbacks: keep the epoll set and the timer in step with libcurl ---- */

static int on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp) {
  atl_queue *q = userp;
  struct epoll_event ev;
  (void)e;
  (void)socketp;
  if (what == CURL_POLL_REMOVE) {
    epoll_ctl(q->epfd, EPOLL_CTL_DEL, s, NULL);
    return 0;
  }
  memset(&ev, 0, sizeof ev);
  ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0);
  ev.data.fd = s;
  if (epoll_ctl(q->epfd, EPOLL_CTL_MOD, s, &ev) != 0 && errno == ENOENT)
    epoll_ctl(q->epfd, EPOLL_CTL_ADD, s, &ev);
  return 0;
}

static int on_timer(CURLM *m, long timeout_ms, void *userp) {
  atl_queue *q = userp;
  (void)m;
  q->timer_at = timeout_ms < 0 ? -1 : atl_now() + (double)timeout_ms / 1000.0;
  return 0;
}

/* ---- scheduling ---- */

static void push_done(atl_queue *q, atl_xfer *x) {
  x->next = NULL;
  if (q->done_tail) q->done_tail->next = x;
  else q->done = x;
  q->done_tail = x;
}

static void finish(atl_queue *q, atl_xfer *x, double now) {
  x->r.attempts = x->attempt;
  x->r.waited = x->waited;
  x->r.body = x->resp.data ? x->resp.data : "";
  x->r.body_len = x->resp.len;
  x->r.elapsed = now - x->start;
  push_done(q, x);
}

static void give_back_easy(atl_queue *q, atl_xfer *x) {
  if (!x->easy) return;
  if (q->nidle < q->concurrency) q->idle[q->nidle++] = x->easy;
  else curl_easy_cleanup(x->easy);
  x->easy = NULL;
}

static void start(atl_queue *q, atl_xfer *x, double now) {
  atl_client *c = q->client;
  CURL *e = q->nidle ? q->idle[--q->nidle] : curl_easy_duphandle(c->easy);
  x->attempt++;
  if (x->attempt == 1) x->start = now;
  if (!e) {
    x->r.transport_failed = 1;
    x->r.curl_code = CURLE_OUT_OF_MEMORY;
    x->r.errmsg = "could not create a transfer handle";
    finish(q, x, now);
    return;
  }
  x->easy = e;
  atl_buf_reset(&x->resp, c->opt.max_body);
  x->rb.errbuf[0] = '\0';
  curl_easy_setopt(e, CURLOPT_URL, x->url);
  atl_set_method(e, c->headers, c->headers_body, x->op->method, x->has_body ? x->body : NULL, x->body_len);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &x->resp);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->rb.errbuf);
  atl_watch_arm(e, &x->watch, &c->opt, x->rb.errbuf);
  atl_watch_reset(&x->watch);
  curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)x);
  /* over https, wait for a connection being set up to say (ALPN) whether it multiplexes
   * (HTTP/2) rather than opening one connection per transfer at the start of a batch; plain
   * http is HTTP/1.1, where waiting would only hold every transfer behind the first one */
  curl_easy_setopt(e, CURLOPT_PIPEWAIT, strncmp(x->url, "https:", 6) == 0 ? 1L : 0L);
  if (curl_multi_add_handle(q->multi, e) != CURLM_OK) {
    give_back_easy(q, x);
    x->r.transport_failed = 1;
    x->r.curl_code = CURLE_FAILED_INIT;
    x->r.errmsg = "could not start the transfer";
    finish(q, x, now);
    return;
  }
  q->running++;
  x->run_prev = NULL;
  x->run_next = q->run;
  if (q->run) q->run->run_prev = x;
  q->run = x;
}

static void unlink_running(atl_queue *q, atl_xfer *x) {
  if (x->run_prev) x->run_prev->run_next = x->run_next;
  else q->run = x->run_next;
  if (x->run_next) x->run_next->run_prev = x->run_prev;
  x->run_prev = x->run_next = NULL;
}

/* Starts what may start now: retries whose wait is over, then new requests in order. */
static void start_ready(atl_queue *q, double now) {
  atl_xfer **pp = &q->waiting;
  if (now < q->paused_until) return;
  while (*pp && q->running < q->concurrency) {
    atl_xfer *x = *pp;
    if (x->ready_at <= now) {
      *pp = x->next;
      start(q, x, now);
    } else {
      pp = &x->next;
    }
  }
  while (q->pending && q->running < q->concurrency) {
    atl_xfer *x = q->pending;
    q->pending = x->next;
    if (!q->pending) q->pending_tail = NULL;
    start(q, x, now);
  }
}

/* One attempt of x has ended with rc: to the waiting list for a retry, or to done. */
static void attempt_ended(atl_queue *q, atl_xfer *x, CURLcode rc) {
  atl_client *c = q->client;
  double wait = 0, now;
  if (x->watch.stalled) {
    /* taken away mid-transfer: libcurl writes its own message into the error buffer as it
     * lets go of the handle, so the stall is described after that */
    curl_multi_remove_handle(q->multi, x->easy);
    atl_attempt_done(x->easy, rc, &x->resp, &x->rb, &x->watch, &x->r);
  } else {
    atl_attempt_done(x->easy, rc, &x->resp, &x->rb, &x->watch, &x->r);
    curl_multi_remove_handle(q->multi, x->easy);
  }
  q->running--;
  unlink_running(q, x);
  give_back_easy(q, x);
  now = atl_now();
  if (atl_retry_wait(&c->opt, &x->r, x->attempt, &c->rng, &wait)) {
    x->waited += wait;
    x->ready_at = now + wait;
    x->next = q->waiting;
    q->waiting = x;
  } else {
    finish(q, x, now);
  }
  /* The server is rate limiting this key: every request would be refused, so none starts
   * until the time it asked for has passed (bounded like a single call's wait). */
  if (x->r.status == 429 || (x->r.status == 503 && x->r.retry_after >= 0)) {
    double pause = x->r.retry_after >= 0 ? x->r.retry_after : wait; /* 0 for a final reply */
    if (pause > c->opt.max_retry_wait) pause = c->opt.max_retry_wait;
    if (now + pause > q->paused_until) q->paused_until = now + pause;
  }
}

/* Moves finished attempts out of libcurl. */
static void harvest(atl_queue *q) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(q->multi, &left))) {
    atl_xfer *x = NULL;
    if (m->msg != CURLMSG_DONE) continue;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
    attempt_ended(q, x, m->data.result);
  }
}

/* When a started body has been quiet this long the attempt has stalled (-1: not watched). In
 * event-driven mode libcurl calls the progress callback only on activity, so the queue checks
 * the deadline itself. */
static double stall_deadline(const atl_xfer *x) {
  if (x->watch.seen_dl == 0) return -1;
  return x->watch.last_progress + x->watch.opt->stall_timeout;
}

static void check_stalls(atl_queue *q, double now) {
  atl_xfer *x = q->run;
  while (x) {
    atl_xfer *next = x->run_next;
    double d = stall_deadline(x);
    if (d >= 0 && d <= now) {
      x->watch.stalled = 1;
      attempt_ended(q, x, CURLE_ABORTED_BY_CALLBACK);
    }
    x = next;
  }
}

static void fire(atl_queue *q, curl_socket_t s, int mask) {
  int still;
  curl_multi_socket_action(q->multi, s, mask, &still);
}

/* Seconds until something must happen without any socket activity, or -1 for nothing. */
static double next_deadline(const atl_queue *q) {
  double t = q->timer_at;
  const atl_xfer *x;
  double unpause = q->paused_until;
  if (q->done) return 0;
  if (q->pending && q->running < q->concurrency) t = (t < 0 || unpause < t) ? unpause : t;
  /* a retry that is due can only start in a free slot: with every slot busy, the next
   * completion (a socket event) is what to wait for */
  for (x = q->running < q->concurrency ? q->waiting : NULL; x; x = x->next) {
    double r = x->ready_at > unpause ? x->ready_at : unpause;
    if (t < 0 || r < t) t = r;
  }
  for (x = q->run; x; x = x->run_next) {
    double d = stall_deadline(x);
    if (d >= 0 && (t < 0 || d < t)) t = d;
  }
  return t;
}

/* Runs everything that is due now and waits at most wait_s for sockets. */
static void pass(atl_queue *q, double wait_s) {
  struct epoll_event evs[MAX_EVENTS];
  double now = atl_now(), due;
  int n, i, ms;
  start_ready(q, now);
  if (q->timer_at >= 0 && q->timer_at <= now) {
    q->timer_at = -1;
    fire(q, CURL_SOCKET_TIMEOUT, 0);
  }
  harvest(q);
  due = next_deadline(q);
  if (due >= 0 && due - now < wait_s) wait_s = due - now;
  if (wait_s < 0 || q->done) wait_s = 0;
  if (!q->running && !q->pending && !q->waiting) wait_s = 0;
  ms = wait_s > 86400 ? 86400000 : (int)ceil(wait_s * 1000.0);
  n = epoll_wait(q->epfd, evs, MAX_EVENTS, ms);
  for (i = 0; i < n; i++) {
    int mask = 0;
    if (evs[i].events & (EPOLLIN | EPOLLHUP)) mask |= CURL_CSELECT_IN;
    if (evs[i].events & EPOLLOUT) mask |= CURL_CSELECT_OUT;
    if (evs[i].events & EPOLLERR) mask |= CURL_CSELECT_ERR;
    fire(q, evs[i].data.fd, mask);
  }
  if (q->timer_at >= 0 && q->timer_at <= atl_now()) {
    q->timer_at = -1;
    fire(q, CURL_SOCKET_TIMEOUT, 0);
  }
  harvest(q);
  check_stalls(q, atl_now());
}

/* ---- reporting ---- */

/* Pushes the completion table of a finished request. */
static void push_completion(lua_State *L, atl_xfer *x) {
  int top, n;
  lua_createtable(L, 0, 7);
  atl_pushwhole(L, x->id);
  lua_setfield(L, -2, "id");
  lua_pushstring(L, x->op->name);
  lua_setfield(L, -2, "op");
  if (x->arg1) {
    lua_pushstring(L, x->arg1);
    lua_setfield(L, -2, "account_id");
  }
  if (x->arg2) {
    lua_pushstring(L, x->arg2);
    lua_setfield(L, -2, "token_id");
  }
  top = lua_gettop(L);
  n = atl_push_reply(L, &x->r);
  if (n == 1) {
    lua_setfield(L, top, "res");
  } else if (lua_isnil(L, -2)) {
    lua_setfield(L, top, "err");
    lua_pop(L, 1);
  } else {
    lua_setfield(L, top, "res");
    lua_setfield(L, top, "value");
  }
}

/* step([timeout]): drives the transfers; returns as soon as at least one request has finished
 * (an array of completions) or when timeout seconds (default 0) have passed (an empty array).
 * Never blocks longer than timeout. */
static int queue_step(lua_State *L) {
  atl_queue *q = check_queue(L, "step");
  double timeout = luaL_optnumber(L, 2, 0), deadline;
  int i = 0;
  luaL_argcheck(L, timeout >= 0, 2, "timeout: expected a number of seconds >= 0");
  deadline = atl_now() + timeout;
  for (;;) {
    double left = deadline - atl_now();
    pass(q, left > 0 ? left : 0);
    if (q->done || left <= 0) break;
    if (!q->running && !q->pending && !q->waiting) break;
  }
  lua_newtable(L);
  while (q->done) {
    atl_xfer *x = q->done;
    q->done = x->next;
    if (!q->done) q->done_tail = NULL;
    q->live--;
    /* unlink first: if building the Lua result raises, x is still freed by __gc (via all) */
    push_completion(L, x);
    lua_rawseti(L, -2, ++i);
    xfer_free(q, x);
  }
  return 1;
}

/* pollfd(): a file descriptor that becomes readable when step() has work (cqueues protocol). */
static int queue_pollfd(lua_State *L) {
  atl_queue *q = check_queue(L, "pollfd");
  lua_pushinteger(L, q->epfd);
  return 1;
}

static int queue_events(lua_State *L) {
  check_queue(L, "events");
  lua_pushliteral(L, "r");
  return 1;
}

/* timeout(): seconds after which step() must be called even if pollfd stays quiet; nil when
 * nothing is queued. */
static int queue_timeout(lua_State *L) {
  atl_queue *q = check_queue(L, "timeout");
  double t = next_deadline(q), now = atl_now();
  if (q->pending && q->running < q->concurrency && now >= q->paused_until) t = now;
  if (t < 0) {
    if (q->live) lua_pushnumber(L, 1); /* something is running and libcurl set no timer */
    else lua_pushnil(L);
    return 1;
  }
  lua_pushnumber(L, t > now ? t - now : 0);
  return 1;
}

static int queue_pending(lua_State *L) {
  atl_queue *q = check_queue(L, "pending");
  lua_pushinteger(L, (lua_Integer)q->live);
  return 1;
}

static int queue_close(lua_State *L) {
  atl_queue *q = luaL_checkudata(L, 1, ATL_QUEUE_MT);
  queue_release(L, q);
  return 0;
}

/* ---- queuing requests ---- */

static char *dup_mem(const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (d) {
    memcpy(d, s, n);
    d[n] = '\0';
  }
  return d;
}

/* Queues op with the ids in arguments 2.. and an optional body; returns the request id. */
static int enqueue(lua_State *L, atl_queue *q, const atl_op *op, const char *const *names,
                   const char *body, size_t body_len, int has_body) {
  atl_client *c = q->client;
  const char *segs[2];
  size_t lens[2], ulen;
  const char *url;
  atl_xfer *x;
  int i;
  for (i = 0; i < op->nsegs; i++) atl_check_id(L, i + 2, names[i], &segs[i], &lens[i]);
  atl_push_url(L, c->base_url, op, segs, lens, NULL);
  url = lua_tolstring(L, -1, &ulen);
  x = calloc(1, sizeof *x);
  if (!x) return luaL_error(L, "not enough memory");
  x->all_next = q->all;
  if (q->all) q->all->all_prev = x;
  q->all = x;
  x->url = dup_mem(url, ulen);
  x->arg1 = op->nsegs > 0 ? dup_mem(segs[0], lens[0]) : NULL;
  x->arg2 = op->nsegs > 1 ? dup_mem(segs[1], lens[1]) : NULL;
  x->has_body = has_body;
  x->body_len = body_len;
  x->body = has_body ? dup_mem(body ? body : "", body_len) : NULL;
  if (!x->url || (op->nsegs > 0 && !x->arg1) || (op->nsegs > 1 && !x->arg2) || (has_body && !x->body)) {
    xfer_free(q, x);
    return luaL_error(L, "not enough memory");
  }
  x->op = op;
  x->id = ++q->next_id;
  x->r.op = op;
  x->r.method = op->method;
  x->r.url = x->url;
  x->r.secret = c->token;
  x->r.secret_len = c->token_len;
  x->next = NULL;
  if (q->pending_tail) q->pending_tail->next = x;
  else q->pending = x;
  q->pending_tail = x;
  q->live++;
  atl_pushwhole(L, x->id);
  return 1;
}

static const char *const account_arg[] = {"account_id"};
static const char *const revoke_args[] = {"account_id", "token_id"};

static int queue_tokens(lua_State *L) {
  return enqueue(L, check_queue(L, "tokens"), &atl_op_tokens, account_arg, NULL, 0, 0);
}

static int queue_revoke(lua_State *L) {
  return enqueue(L, check_queue(L, "revoke"), &atl_op_revoke, revoke_args, NULL, 0, 0);
}

static int queue_profile(lua_State *L) {
  return enqueue(L, check_queue(L, "profile"), &atl_op_profile, account_arg, NULL, 0, 0);
}

static int queue_permissions(lua_State *L) {
  return enqueue(L, check_queue(L, "permissions"), &atl_op_permissions, account_arg, NULL, 0, 0);
}

static int queue_enable(lua_State *L) {
  return enqueue(L, check_queue(L, "enable"), &atl_op_enable, account_arg, "", 0, 1);
}

/* disable(account_id [, message]) */
static int queue_disable(lua_State *L) {
  atl_queue *q = check_queue(L, "disable");
  const char *body = "";
  size_t len = 0;
  lua_settop(L, 3);
  if (!lua_isnil(L, 3)) {
    luaL_argcheck(L, lua_type(L, 3) == LUA_TSTRING, 3, "message: expected a string");
    lua_createtable(L, 0, 1);
    lua_pushvalue(L, 3);
    lua_setfield(L, -2, "message");
    atl_push_json_text(L, -1, "message");
    body = lua_tolstring(L, -1, &len);
  }
  return enqueue(L, q, &atl_op_disable, account_arg, body, len, 1);
}

/* client:queue([{concurrency = 8}]) */
int atl_queue_new(lua_State *L) {
  atl_client *c = luaL_checkudata(L, 1, ATL_CLIENT_MT);
  atl_queue *q;
  int concurrency = 8;
  if (c->closed) luaL_error(L, "atladmin: queue called on a closed client");
  lua_settop(L, 2);
  if (!lua_isnil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, 2)) {
      const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
      if (k && strcmp(k, "concurrency") == 0) {
        double v = lua_type(L, -1) == LUA_TNUMBER ? (double)lua_tonumber(L, -1) : 0;
        if (!(v >= 1 && v <= MAX_CONCURRENCY) || v != floor(v))
          luaL_error(L, "atladmin: queue option 'concurrency' must be a whole number from 1 to %d", MAX_CONCURRENCY);
        concurrency = (int)v;
      } else {
        luaL_error(L, "atladmin: unknown queue option '%s'", k ? k : "?");
      }
      lua_pop(L, 1);
    }
  }
  q = atl_newuserdata(L, sizeof *q);
  memset(q, 0, sizeof *q);
  q->epfd = -1;
  q->client_ref = LUA_NOREF;
  q->closed = 1;
  q->timer_at = -1;
  luaL_getmetatable(L, ATL_QUEUE_MT);
  lua_setmetatable(L, -2);
  q->concurrency = concurrency;
  q->idle = calloc((size_t)concurrency, sizeof *q->idle);
  q->multi = curl_multi_init();
  q->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (!q->idle || !q->multi || q->epfd < 0) {
    queue_release(L, q);
    luaL_error(L, "atladmin: could not create a queue (%s)", q->epfd < 0 ? "epoll" : "memory");
  }
  curl_multi_setopt(q->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(q->multi, CURLMOPT_SOCKETDATA, q);
  curl_multi_setopt(q->multi, CURLMOPT_TIMERFUNCTION, on_timer);
  curl_multi_setopt(q->multi, CURLMOPT_TIMERDATA, q);
  curl_multi_setopt(q->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
  curl_multi_setopt(q->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)concurrency);
  curl_multi_setopt(q->multi, CURLMOPT_MAXCONNECTS, (long)concurrency);
  lua_pushvalue(L, 1);
  q->client_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  q->client = c;
  q->closed = 0;
  return 1;
}

void atl_register_queue(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"tokens", queue_tokens},
      {"revoke", queue_revoke},
      {"profile", queue_profile},
      {"permissions", queue_permissions},
      {"enable", queue_enable},
      {"disable", queue_disable},
      {"step", queue_step},
      {"pollfd", queue_pollfd},
      {"events", queue_events},
      {"timeout", queue_timeout},
      {"pending", queue_pending},
      {"close", queue_close},
      {NULL, NULL}};
  static const luaL_Reg meta[] = {
      {"__gc", queue_gc},
      {"__close", queue_gc},
      {"__tostring", queue_tostring},
      {NULL, NULL}};
  atl_register_type(L, ATL_QUEUE_MT, meta, methods);
}
