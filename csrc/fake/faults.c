/* Fault injection: a FIFO of armed faults, and the misbehaviours they put on the wire. */
#include "fake.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define STREAM_BLOCK (16 * 1024)

struct fault_entry {
  cJSON *spec;
  long remaining; /* -1: never runs out */
  struct fault_entry *next;
};

static pthread_mutex_t faults_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct fault_entry *faults_head;

static const char *const fault_types[] = {
    "status",           "delay", "hang", "drop",   "malformed", "truncate",
    "truncate_chunked", "stall", "big",  "nested", "raw",       "reset"};

/* ---- the queue ---- */

static int check_type(const cJSON *spec, const char *name, cJSON_bool (*is)(const cJSON *),
                      const char *what, char *err, size_t errsz) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(spec, name);
  if (v && !is(v)) {
    snprintf(err, errsz, "fault field \"%s\" must be %s", name, what);
    return -1;
  }
  return 0;
}

int faults_add(const cJSON *spec, char *err, size_t errsz) {
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(spec, "type");
  const cJSON *count = cJSON_GetObjectItemCaseSensitive(spec, "count");
  const cJSON *h;
  struct fault_entry *e, **tail;
  size_t i;
  int known = 0;

  if (!cJSON_IsObject(spec)) {
    snprintf(err, errsz, "a fault must be a JSON object");
    return -1;
  }
  if (!cJSON_IsString(type)) {
    snprintf(err, errsz, "a fault needs a string \"type\"");
    return -1;
  }
  for (i = 0; i < sizeof fault_types / sizeof fault_types[0]; i++)
    known |= strcmp(type->valuestring, fault_types[i]) == 0;
  if (!known) {
    snprintf(err, errsz, "unknown fault type \"%.40s\"", type->valuestring);
    return -1;
  }
  if (check_type(spec, "method", cJSON_IsString, "a string", err, errsz) ||
      check_type(spec, "path", cJSON_IsString, "a string", err, errsz) ||
      check_type(spec, "path_prefix", cJSON_IsString, "a string", err, errsz) ||
      check_type(spec, "body", cJSON_IsString, "a string", err, errsz) ||
      check_type(spec, "content_type", cJSON_IsString, "a string", err, errsz) ||
      check_type(spec, "headers", cJSON_IsObject, "an object", err, errsz) ||
      check_type(spec, "status", cJSON_IsNumber, "a number", err, errsz) ||
      check_type(spec, "count", cJSON_IsNumber, "a number", err, errsz) ||
      check_type(spec, "delay_ms", cJSON_IsNumber, "a number", err, errsz) ||
      check_type(spec, "ms", cJSON_IsNumber, "a number", err, errsz) ||
      check_type(spec, "depth", cJSON_IsNumber, "a number", err, errsz) ||
      check_type(spec, "closed", cJSON_IsBool, "a boolean", err, errsz) ||
      check_type(spec, "apply", cJSON_IsBool, "a boolean", err, errsz))
    return -1;
  cJSON_ArrayForEach(h, cJSON_GetObjectItemCaseSensitive(spec, "headers")) {
    if (!cJSON_IsString(h)) {
      snprintf(err, errsz, "fault header values must be strings");
      return -1;
    }
  }
  if (strcmp(type->valuestring, "status") == 0) {
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(spec, "status");
    if (!st || st->valuedouble < 100 || st->valuedouble > 999) {
      snprintf(err, errsz, "a status fault needs \"status\" between 100 and 999");
      return -1;
    }
  }
  /* "bytes" is the raw fault's payload but the big fault's size */
  if (strcmp(type->valuestring, "raw") == 0) {
    if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(spec, "bytes"))) {
      snprintf(err, errsz, "a raw fault needs \"bytes\" as a string");
      return -1;
    }
  } else if (check_type(spec, "bytes", cJSON_IsNumber, "a number", err, errsz)) {
    return -1;
  }
  if (count && (count->valuedouble < -1 || (long)count->valuedouble == 0)) {
    snprintf(err, errsz, "\"count\" must be at least 1 (or -1 for every request)");
    return -1;
  }

  e = fake_xmalloc(sizeof *e);
  e->spec = cJSON_Duplicate(spec, 1);
  e->remaining = count ? (long)count->valuedouble : 1;
  e->next = NULL;
  pthread_mutex_lock(&faults_mutex);
  for (tail = &faults_head; *tail; tail = &(*tail)->next)
    ;
  *tail = e;
  pthread_mutex_unlock(&faults_mutex);
  return 0;
}

static int fault_matches(const cJSON *spec, const char *method, const char *path) {
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(spec, "method");
  const cJSON *p = cJSON_GetObjectItemCaseSensitive(spec, "path");
  const cJSON *pre = cJSON_GetObjectItemCaseSensitive(spec, "path_prefix");
  if (m && strcasecmp(m->valuestring, method) != 0)
    return 0;
  if (p && strcmp(p->valuestring, path) != 0)
    return 0;
  if (pre && strncmp(pre->valuestring, path, strlen(pre->valuestring)) != 0)
    return 0;
  return 1;
}

/* Consume one use of the first armed fault matching this request; the copy is the caller's. */
cJSON *faults_take(const char *method, const char *path) {
  struct fault_entry **pp, *e;
  cJSON *out = NULL;
  pthread_mutex_lock(&faults_mutex);
  for (pp = &faults_head; (e = *pp) != NULL; pp = &e->next) {
    if (!fault_matches(e->spec, method, path))
      continue;
    out = cJSON_Duplicate(e->spec, 1);
    if (e->remaining > 0 && --e->remaining == 0) {
      *pp = e->next;
      cJSON_Delete(e->spec);
      free(e);
    }
    break;
  }
  pthread_mutex_unlock(&faults_mutex);
  return out;
}

cJSON *faults_list(void) {
  cJSON *out = cJSON_CreateArray();
  struct fault_entry *e;
  pthread_mutex_lock(&faults_mutex);
  for (e = faults_head; e; e = e->next) {
    cJSON *item = cJSON_Duplicate(e->spec, 1);
    cJSON_DeleteItemFromObjectCaseSensitive(item, "count");
    cJSON_AddNumberToObject(item, "count", (double)e->remaining);
    cJSON_AddItemToArray(out, item);
  }
  pthread_mutex_unlock(&faults_mutex);
  return out;
}

void faults_clear(void) {
  struct fault_entry *e, *next;
  pthread_mutex_lock(&faults_mutex);
  e = faults_head;
  faults_head = NULL;
  pthread_mutex_unlock(&faults_mutex);
  for (; e; e = next) {
    next = e->next;
    cJSON_Delete(e->spec);
    free(e);
  }
}

/* ---- delivery ---- */

static long long num(const cJSON *f, const char *name, long long dflt) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(f, name);
  return cJSON_IsNumber(v) ? (long long)v->valuedouble : dflt;
}

static const char *str(const cJSON *f, const char *name, const char *dflt) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(f, name);
  return cJSON_IsString(v) ? v->valuestring : dflt;
}

static void add_headers(struct MHD_Response *resp, const cJSON *headers) {
  const cJSON *h;
  cJSON_ArrayForEach(h, headers) {
    if (cJSON_IsString(h))
      MHD_add_response_header(resp, h->string, h->valuestring);
  }
}

static int send_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0)
      return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Write bytes straight to the socket, bypassing HTTP framing, then end the connection. */
static enum MHD_Result write_raw(struct request *rq, const char *bytes, size_t n) {
  int fd = request_fd(rq);
  if (fd >= 0) {
    send_all(fd, bytes, n);
    shutdown(fd, SHUT_WR);
  }
  log_request(rq, "raw bytes, then close");
  return MHD_NO;
}

/* A body MHD would not send (e.g. on 204) goes out by hand instead. */
static enum MHD_Result raw_status(struct request *rq, int status, const char *ctype,
                                  const char *body, const cJSON *headers) {
  size_t cap = strlen(body) + 1024, n;
  char *buf = fake_xmalloc(cap);
  const cJSON *h;
  enum MHD_Result ret;
  const char *reason = MHD_get_reason_phrase_for((unsigned)status);
  n = (size_t)snprintf(buf, cap,
                       "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                       "Connection: close\r\n",
                       status, reason[0] ? reason : "Fault", ctype, strlen(body));
  cJSON_ArrayForEach(h, headers) {
    size_t need = strlen(h->string) + strlen(h->valuestring) + 8;
    if (n + need + strlen(body) + 3 > cap) {
      cap = (n + need + strlen(body) + 3) * 2;
      buf = realloc(buf, cap);
      if (!buf)
        abort();
    }
    n += (size_t)snprintf(buf + n, cap - n, "%s: %s\r\n", h->string, h->valuestring);
  }
  n += (size_t)snprintf(buf + n, cap - n, "\r\n%s", body);
  ret = write_raw(rq, buf, n);
  free(buf);
  return ret;
}

/* Streaming body pieces: a body with a cut point, an optional pause there, an optional abort. */
struct cut_body {
  char *body;
  size_t len, cut;
  long pause_ms; /* > 0: stall at the cut, then send the rest */
  int paused;
  int fd;
};

static ssize_t cut_reader(void *cls, uint64_t pos, char *buf, size_t max) {
  struct cut_body *cb = cls;
  size_t n;
  if (pos < cb->cut) {
    n = cb->cut - (size_t)pos;
  } else if (cb->pause_ms <= 0) {
    return MHD_CONTENT_READER_END_WITH_ERROR; /* truncation: close mid-body */
  } else {
    if (!cb->paused) {
      cb->paused = 1;
      if (fake_nap(cb->pause_ms, cb->fd) != 0)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    if (pos >= cb->len)
      return MHD_CONTENT_READER_END_OF_STREAM;
    n = cb->len - (size_t)pos;
  }
  if (n > max)
    n = max;
  memcpy(buf, cb->body + pos, n);
  return (ssize_t)n;
}

static void cut_free(void *cls) {
  struct cut_body *cb = cls;
  free(cb->body);
  free(cb);
}

/* The big fault's body: a JSON array of fixed-width objects, generated as it is read. */
#define BIG_ELEM 64
struct big_body {
  uint64_t total;
  uint64_t count;
};

static ssize_t big_reader(void *cls, uint64_t pos, char *buf, size_t max) {
  struct big_body *bb = cls;
  size_t o = 0;
  while (o < max && pos < bb->total) {
    if (pos == 0) {
      buf[o++] = '[';
      pos++;
    } else if (pos == bb->total - 1) {
      buf[o++] = ']';
      pos++;
    } else {
      uint64_t idx = (pos - 1) / (BIG_ELEM + 1), off = (pos - 1) % (BIG_ELEM + 1);
      char elem[BIG_ELEM + 2];
      size_t n;
      snprintf(elem, sizeof elem, "{\"id\":\"big_%010llu\",\"label\":\"%030d\"}",
               (unsigned long long)(idx % 10000000000ULL), 0);
      elem[BIG_ELEM] = ',';
      n = (idx + 1 == bb->count) ? BIG_ELEM : BIG_ELEM + 1;
      if (off >= n) { /* cannot happen for the last element: ']' follows directly */
        pos++;
        continue;
      }
      n -= (size_t)off;
      if (n > max - o)
        n = max - o;
      memcpy(buf + o, elem + off, n);
      o += n;
      pos += n;
    }
  }
  return o ? (ssize_t)o : MHD_CONTENT_READER_END_OF_STREAM;
}

static enum MHD_Result queue_stream(struct request *rq, int status, uint64_t size,
                                    MHD_ContentReaderCallback reader, void *cls,
                                    MHD_ContentReaderFreeCallback done, const cJSON *fault) {
  struct MHD_Response *resp =
      MHD_create_response_from_callback(size, STREAM_BLOCK, reader, cls, done);
  const cJSON *headers = cJSON_GetObjectItemCaseSensitive(fault, "headers");
  enum MHD_Result ret;
  char outcome[64];
  if (!resp) {
    done(cls);
    return MHD_NO;
  }
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                          str(fault, "content_type", "application/json"));
  add_ratelimit_headers(resp, headers);
  add_headers(resp, headers);
  ret = MHD_queue_response(rq->conn, (unsigned)status, resp);
  MHD_destroy_response(resp);
  snprintf(outcome, sizeof outcome, "%d (fault %s)", status, str(fault, "type", "?"));
  log_request(rq, outcome);
  return ret;
}

static enum MHD_Result deliver_status(struct request *rq, const cJSON *f, struct reply *r) {
  int status = (int)num(f, "status", 500);
  const char *body = str(f, "body", "");
  const char *ctype = str(f, "content_type", "application/json");
  const cJSON *headers = cJSON_GetObjectItemCaseSensitive(f, "headers");
  const cJSON *h;

  reply_free(r);
  if (body[0] && (status < 200 || status == 204 || status == 304))
    return raw_status(rq, status, ctype, body, headers);
  reply_set(r, status, body[0] ? fake_strdup(body) : NULL);
  if (body[0] || cJSON_GetObjectItemCaseSensitive(f, "content_type"))
    r->ctype = ctype;
  cJSON_ArrayForEach(h, headers)
    reply_header(r, h->string, h->valuestring);
  return send_reply(rq, r);
}

/* A reshaped body: the fault's own, else the real reply's, else a stand-in. */
static enum MHD_Result deliver_cut(struct request *rq, const cJSON *f, struct reply *r,
                                   const char *type) {
  struct cut_body *cb = fake_xmalloc(sizeof *cb);
  int status;
  uint64_t size;
  memset(cb, 0, sizeof *cb);
  if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(f, "body"))) {
    cb->body = fake_strdup(str(f, "body", ""));
    status = 200;
  } else if (r->body && r->len) {
    cb->body = fake_strndup(r->body, r->len);
    status = r->status;
  } else {
    cb->body = fake_strdup(
        "[{\"id\":\"asp_fault_filler_0001\",\"label\":\"filler body of a fault\","
        "\"createdAt\":\"2024-01-01T00:00:00.000Z\"}]");
    status = 200;
  }
  status = (int)num(f, "status", status);
  reply_free(r);
  cb->len = strlen(cb->body);
  cb->cut = cb->len / 2;
  if (cb->cut == 0 && cb->len)
    cb->cut = 1;
  cb->fd = request_fd(rq);
  size = cb->len;
  if (strcmp(type, "stall") == 0) {
    cb->pause_ms = (long)num(f, "ms", 10000);
    if (cb->pause_ms <= 0)
      cb->pause_ms = 1;
  } else if (strcmp(type, "truncate_chunked") == 0) {
    size = MHD_SIZE_UNKNOWN;
  }
  return queue_stream(rq, status, size, cut_reader, cb, cut_free, f);
}

static enum MHD_Result deliver_big(struct request *rq, const cJSON *f) {
  struct big_body *bb = fake_xmalloc(sizeof *bb);
  long long bytes = num(f, "bytes", 1024 * 1024);
  if (bytes < BIG_ELEM + 2)
    bytes = BIG_ELEM + 2;
  if (bytes > (1LL << 36))
    bytes = 1LL << 36;
  bb->count = (uint64_t)(bytes - 1) / (BIG_ELEM + 1);
  if (bb->count == 0)
    bb->count = 1;
  bb->total = 2 + bb->count * BIG_ELEM + (bb->count - 1);
  return queue_stream(rq, 200, bb->total, big_reader, bb, free, f);
}

static enum MHD_Result deliver_nested(struct request *rq, const cJSON *f, struct reply *r) {
  long long depth = num(f, "depth", 100000);
  int closed = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(f, "closed"));
  size_t n, i;
  char *body;
  if (depth < 1)
    depth = 1;
  if (depth > 50000000)
    depth = 50000000;
  n = (size_t)depth * (closed ? 2 : 1);
  body = fake_xmalloc(n + 1);
  for (i = 0; i < (size_t)depth; i++)
    body[i] = '[';
  for (; i < n; i++)
    body[i] = ']';
  body[n] = '\0';
  reply_set(r, 200, body);
  r->ctype = "application/json";
  return send_reply(rq, r);
}

static enum MHD_Result deliver_reset(struct request *rq) {
  int fd = request_fd(rq);
  log_request(rq, "reset");
  if (fd >= 0) {
    struct linger lg;
    int spare;
    lg.l_onoff = 1;
    lg.l_linger = 0;
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    /* Swap a fresh socket into the descriptor: that closes the connection at once with
       an RST, before MHD can shut it down politely with a FIN; MHD then closes the spare. */
    spare = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (spare >= 0) {
      dup2(spare, fd);
      close(spare);
    }
  }
  return MHD_NO;
}

enum MHD_Result fault_deliver(struct request *rq, struct reply *r) {
  const cJSON *f = rq->fault;
  const char *type = str(f, "type", "");
  const cJSON *apply = cJSON_GetObjectItemCaseSensitive(f, "apply");
  int fd = request_fd(rq);
  /* faults that carry the real reply run the request; the others only run it when asked */
  int carries = strcmp(type, "delay") == 0 || strcmp(type, "stall") == 0 ||
                strcmp(type, "truncate") == 0 || strcmp(type, "truncate_chunked") == 0;

  if (num(f, "delay_ms", 0) > 0 && fake_nap((long)num(f, "delay_ms", 0), fd) != 0) {
    log_request(rq, "abandoned during fault delay");
    return MHD_NO;
  }
  if (apply ? cJSON_IsTrue(apply) : carries)
    routes_handle(rq, r);

  if (strcmp(type, "delay") == 0) {
    if (fake_nap((long)num(f, "ms", 1000), fd) != 0) {
      reply_free(r);
      log_request(rq, "abandoned during fault delay");
      return MHD_NO;
    }
    return send_reply(rq, r);
  }
  if (strcmp(type, "status") == 0)
    return deliver_status(rq, f, r);
  if (strcmp(type, "malformed") == 0) {
    reply_set(r, (int)num(f, "status", 200), fake_strdup(str(f, "body", "{\"not json")));
    r->ctype = str(f, "content_type", "application/json");
    return send_reply(rq, r);
  }
  if (strcmp(type, "stall") == 0 || strcmp(type, "truncate") == 0 ||
      strcmp(type, "truncate_chunked") == 0)
    return deliver_cut(rq, f, r, type);
  reply_free(r);
  if (strcmp(type, "big") == 0)
    return deliver_big(rq, f);
  if (strcmp(type, "nested") == 0)
    return deliver_nested(rq, f, r);
  if (strcmp(type, "raw") == 0) {
    const cJSON *bytes = cJSON_GetObjectItemCaseSensitive(f, "bytes");
    return write_raw(rq, bytes->valuestring, strlen(bytes->valuestring));
  }
  if (strcmp(type, "reset") == 0)
    return deliver_reset(rq);
  if (strcmp(type, "hang") == 0) {
    fake_nap((long)num(f, "ms", 60000), fd);
    log_request(rq, "hung, then closed");
    return MHD_NO;
  }
  log_request(rq, "dropped");
  return MHD_NO; /* drop: MHD closes the connection without a response */
}
