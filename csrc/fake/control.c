/* The /_fake/ control API for specs, and the log of API requests it serves. */
#include "fake.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REQLOG_MAX 100000 /* the oldest entries go once this many are kept */

static pthread_mutex_t reqlog_mutex = PTHREAD_MUTEX_INITIALIZER;
static cJSON *reqlog;
static long reqlog_count;
static long reqlog_seq;

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value) {
  cJSON *headers = cls, *old;
  char *name = fake_strdup(key), *c;
  for (c = name; *c; c++)
    *c = (char)tolower((unsigned char)*c);
  if (!value)
    value = "";
  old = cJSON_GetObjectItemCaseSensitive(headers, name);
  if (cJSON_IsString(old)) {
    /* a repeated header reads as one comma-joined value */
    size_t n = strlen(old->valuestring) + strlen(value) + 3;
    char *joined = fake_xmalloc(n);
    snprintf(joined, n, "%s, %s", old->valuestring, value);
    cJSON_ReplaceItemInObjectCaseSensitive(headers, name, cJSON_CreateString(joined));
    free(joined);
  } else {
    cJSON_AddStringToObject(headers, name, value);
  }
  free(name);
  return MHD_YES;
}

/* The client's port: requests with the same one came over the same connection. */
static int client_port(struct MHD_Connection *conn) {
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  const struct sockaddr *sa = ci ? ci->client_addr : NULL;
  if (!sa) return 0;
  if (sa->sa_family == AF_INET) return ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
  if (sa->sa_family == AF_INET6) return ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
  return 0;
}

void reqlog_add(const struct request *rq) {
  cJSON *e = cJSON_CreateObject(), *headers;
  pthread_mutex_lock(&reqlog_mutex);
  cJSON_AddNumberToObject(e, "seq", (double)++reqlog_seq);
  cJSON_AddStringToObject(e, "method", rq->method);
  cJSON_AddStringToObject(e, "path", rq->path);
  cJSON_AddStringToObject(e, "query", rq->query);
  cJSON_AddNumberToObject(e, "conn", (double)client_port(rq->conn));
  headers = cJSON_AddObjectToObject(e, "headers");
  MHD_get_connection_values(rq->conn, MHD_HEADER_KIND, collect_header, headers);
  cJSON_AddStringToObject(e, "body", rq->body ? rq->body : "");
  if (!reqlog)
    reqlog = cJSON_CreateArray();
  cJSON_AddItemToArray(reqlog, e);
  if (++reqlog_count > REQLOG_MAX) {
    cJSON_DeleteItemFromArray(reqlog, 0);
    reqlog_count--;
  }
  pthread_mutex_unlock(&reqlog_mutex);
}

static char *reqlog_print(void) {
  char *out;
  pthread_mutex_lock(&reqlog_mutex);
  out = reqlog ? cJSON_PrintUnformatted(reqlog) : fake_strdup("[]");
  pthread_mutex_unlock(&reqlog_mutex);
  return out;
}

void reqlog_free(void) {
  pthread_mutex_lock(&reqlog_mutex);
  cJSON_Delete(reqlog);
  reqlog = NULL;
  reqlog_count = 0;
  pthread_mutex_unlock(&reqlog_mutex);
}

static void ok_reply(struct reply *r, int status) {
  reply_set(r, status, fake_strdup("{\"ok\":true}"));
  r->ctype = "application/json";
}

static void add_faults(struct request *rq, struct reply *r) {
  cJSON *doc = rq->body ? cJSON_ParseWithLength(rq->body, rq->len) : NULL, *f;
  char err[200];
  if (!doc) {
    reply_error(r, 400, "bodyParseFailure", "a fault is a JSON object (or an array of them)");
    return;
  }
  if (cJSON_IsArray(doc)) {
    cJSON_ArrayForEach(f, doc) {
      if (faults_add(f, err, sizeof err)) {
        reply_error(r, 400, "badFault", err);
        cJSON_Delete(doc);
        return;
      }
    }
  } else if (faults_add(doc, err, sizeof err)) {
    reply_error(r, 400, "badFault", err);
    cJSON_Delete(doc);
    return;
  }
  cJSON_Delete(doc);
  ok_reply(r, 201);
}

static void put_state(struct request *rq, struct reply *r) {
  cJSON *doc = rq->body ? cJSON_ParseWithLength(rq->body, rq->len) : NULL;
  char err[200];
  if (!doc) {
    reply_error(r, 400, "bodyParseFailure", "the state must be a JSON object");
    return;
  }
  if (state_replace(doc, err, sizeof err)) {
    reply_error(r, 400, "badState", err);
    return;
  }
  ok_reply(r, 200);
}

static void not_allowed(struct reply *r, const char *allow) {
  reply_error(r, 405, "methodNotAllowed", "This method is not supported on this resource");
  reply_header(r, MHD_HTTP_HEADER_ALLOW, allow);
}

void control_handle(struct request *rq, struct reply *r) {
  const char *m = rq->method, *p = rq->path;
  int get = strcmp(m, "GET") == 0, del = strcmp(m, "DELETE") == 0;

  if (strcmp(p, "/_fake/health") == 0) {
    if (get)
      ok_reply(r, 200);
    else
      not_allowed(r, "GET");
  } else if (strcmp(p, "/_fake/requests") == 0) {
    if (get) {
      reply_set(r, 200, reqlog_print());
      r->ctype = "application/json";
    } else if (del) {
      reqlog_free();
      reply_set(r, 204, NULL);
    } else {
      not_allowed(r, "GET, DELETE");
    }
  } else if (strcmp(p, "/_fake/faults") == 0) {
    if (strcmp(m, "POST") == 0) {
      add_faults(rq, r);
    } else if (get) {
      reply_json(r, 200, faults_list());
    } else if (del) {
      faults_clear();
      reply_set(r, 204, NULL);
    } else {
      not_allowed(r, "GET, POST, DELETE");
    }
  } else if (strcmp(p, "/_fake/state") == 0) {
    if (get) {
      reply_set(r, 200, state_print());
      r->ctype = "application/json";
    } else if (strcmp(m, "PUT") == 0) {
      put_state(rq, r);
    } else {
      not_allowed(r, "GET, PUT");
    }
  } else {
    reply_error(r, 404, "notFound", "No such control resource");
  }
}
