/* The fake Admin API itself: auth, routing on raw path segments, and each endpoint's reply. */
#include "fake.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_SEGS 12

struct segments {
  int n;
  char *s[MAX_SEGS];
  int has_nul[MAX_SEGS]; /* a %00 inside: such an id never matches anything */
};

static const char *const all_privileges[] = {
    "profile",       "profile.write",  "profile.read", "email.set", "lifecycle.enablement",
    "apiToken.read", "apiToken.delete"};
static const char *const profile_fields[] = {"name",     "nickname", "email",
                                             "zoneinfo", "locale",   "extended_profile"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- parsing ---- */

/* Split the raw path on '/' and decode each segment on its own. 0 on success. */
static int split_path(const char *path, struct segments *sg) {
  const char *p, *slash;
  memset(sg, 0, sizeof *sg);
  if (path[0] != '/')
    return -1;
  p = path + 1;
  for (;;) {
    size_t len, dlen;
    if (sg->n == MAX_SEGS)
      return -1;
    slash = strchr(p, '/');
    len = slash ? (size_t)(slash - p) : strlen(p);
    sg->s[sg->n] = fake_pct_decode(p, len, &dlen);
    sg->has_nul[sg->n] = strlen(sg->s[sg->n]) != dlen;
    sg->n++;
    if (!slash)
      return 0;
    p = slash + 1;
  }
}

static void free_segments(struct segments *sg) {
  int i;
  for (i = 0; i < sg->n; i++)
    free(sg->s[i]);
}

static int seg_is(const struct segments *sg, int i, const char *lit) {
  return i < sg->n && !sg->has_nul[i] && strcmp(sg->s[i], lit) == 0;
}

/* Form-style decoding of one query component: '+' is a space, then %XX. */
static char *query_decode(const char *s, size_t n) {
  char *tmp = fake_strndup(s, n), *out, *c;
  for (c = tmp; *c; c++)
    if (*c == '+')
      *c = ' ';
  out = fake_pct_decode(tmp, strlen(tmp), NULL);
  free(tmp);
  return out;
}

/* Every decoded value of parameter `name` in the raw query, as a cJSON array of strings. */
static cJSON *query_values(const char *query, const char *name) {
  cJSON *out = cJSON_CreateArray();
  const char *p = query;
  while (*p) {
    const char *amp = strchr(p, '&');
    size_t len = amp ? (size_t)(amp - p) : strlen(p);
    const char *eq = memchr(p, '=', len);
    size_t klen = eq ? (size_t)(eq - p) : len;
    char *k = query_decode(p, klen);
    if (strcmp(k, name) == 0) {
      char *v = eq ? query_decode(eq + 1, len - klen - 1) : fake_strdup("");
      cJSON_AddItemToArray(out, cJSON_CreateString(v));
      free(v);
    }
    free(k);
    if (!amp)
      break;
    p = amp + 1;
  }
  return out;
}

static char *query_first(const char *query, const char *name) {
  cJSON *vals = query_values(query, name);
  char *out = NULL;
  if (cJSON_IsString(vals->child))
    out = fake_strdup(vals->child->valuestring);
  cJSON_Delete(vals);
  return out;
}

/* ---- reply shapes ---- */

static void forbidden_action(struct reply *r, const char *privilege) {
  char msg[160];
  cJSON *doc = cJSON_CreateObject(), *ctx, *reason;
  snprintf(msg, sizeof msg, "The admin lacks the %s privilege on this account", privilege);
  cJSON_AddStringToObject(doc, "key", "forbidden.action");
  cJSON_AddStringToObject(doc, "message", msg);
  ctx = cJSON_AddObjectToObject(doc, "context");
  cJSON_AddFalseToObject(ctx, "allowed");
  reason = cJSON_AddObjectToObject(ctx, "reason");
  cJSON_AddStringToObject(reason, "key", "denied");
  reply_json(r, 403, doc);
}

static void org_error(struct reply *r, int status, const char *code, const char *title,
                      const char *detail) {
  static unsigned serial;
  char id[48], st[8];
  cJSON *doc = cJSON_CreateObject(), *errs = cJSON_AddArrayToObject(doc, "errors");
  cJSON *e = cJSON_CreateObject();
  snprintf(id, sizeof id, "00000000-fake-4000-8000-%012u",
           __atomic_add_fetch(&serial, 1, __ATOMIC_SEQ_CST));
  snprintf(st, sizeof st, "%d", status);
  cJSON_AddStringToObject(e, "id", id);
  cJSON_AddStringToObject(e, "status", st);
  cJSON_AddStringToObject(e, "code", code);
  cJSON_AddStringToObject(e, "title", title);
  cJSON_AddStringToObject(e, "detail", detail);
  cJSON_AddItemToArray(errs, e);
  reply_json(r, status, doc);
}

static void method_not_allowed(struct reply *r, const char *allow) {
  reply_error(r, 405, "methodNotAllowed", "This method is not supported on this resource");
  reply_header(r, MHD_HTTP_HEADER_ALLOW, allow);
}

static cJSON *permission(int allowed) {
  cJSON *p = cJSON_CreateObject(), *reason;
  cJSON_AddBoolToObject(p, "allowed", allowed);
  reason = cJSON_AddObjectToObject(p, "reason");
  cJSON_AddStringToObject(reason, "key", allowed ? "allowed" : "denied");
  return p;
}

static cJSON *privilege_entry(const cJSON *acct, const char *name) {
  int allowed = !state_denied(acct, name);
  if (strcmp(name, "profile") == 0 || strcmp(name, "profile.write") == 0) {
    cJSON *map = cJSON_CreateObject();
    size_t i;
    for (i = 0; i < COUNT(profile_fields); i++)
      cJSON_AddItemToObject(map, profile_fields[i], permission(allowed));
    return map;
  }
  return permission(allowed);
}

/* ---- user management: /users/{id}/manage... (state lock held) ---- */

static void get_permissions(struct request *rq, const cJSON *acct, struct reply *r) {
  cJSON *asked = query_values(rq->query, "privileges");
  cJSON *doc = cJSON_CreateObject(), *p;
  size_t i;
  if (asked->child) {
    cJSON_ArrayForEach(p, asked) {
      if (!cJSON_GetObjectItemCaseSensitive(doc, p->valuestring))
        cJSON_AddItemToObject(doc, p->valuestring, privilege_entry(acct, p->valuestring));
    }
  } else {
    for (i = 0; i < COUNT(all_privileges); i++)
      cJSON_AddItemToObject(doc, all_privileges[i], privilege_entry(acct, all_privileges[i]));
  }
  cJSON_Delete(asked);
  reply_json(r, 200, doc);
}

static void list_tokens(const cJSON *acct, struct reply *r) {
  /* stored tokens go out verbatim, extra fields and nulls included */
  reply_json(r, 200, cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(acct, "tokens"), 1));
}

static void revoke_token(cJSON *acct, const char *token_id, struct reply *r) {
  cJSON *tokens = cJSON_GetObjectItemCaseSensitive(acct, "tokens"), *t;
  int i = 0;
  cJSON_ArrayForEach(t, tokens) {
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(t, "id");
    if (token_id && cJSON_IsString(id) && strcmp(id->valuestring, token_id) == 0) {
      cJSON_DeleteItemFromArray(tokens, i);
      reply_set(r, 204, NULL);
      return;
    }
    i++;
  }
  reply_error(r, 404, "notFound", "No such API token on this account");
}

static void profile_reply(const cJSON *acct, struct reply *r) {
  cJSON *doc = cJSON_CreateObject();
  cJSON_AddItemToObject(doc, "account",
                        cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(acct, "profile"), 1));
  reply_json(r, 200, doc);
}

static void violation(cJSON *list, const char *field, const char *message) {
  cJSON *v = cJSON_CreateObject();
  cJSON_AddStringToObject(v, "field", field);
  cJSON_AddStringToObject(v, "message", message);
  cJSON_AddItemToArray(list, v);
}

static void set_member(cJSON *obj, const char *name, cJSON *value) {
  if (cJSON_GetObjectItemCaseSensitive(obj, name))
    cJSON_ReplaceItemInObjectCaseSensitive(obj, name, value);
  else
    cJSON_AddItemToObject(obj, name, value);
}

static void patch_profile(struct request *rq, cJSON *acct, struct reply *r) {
  static const char *const strings[] = {"name", "nickname", "zoneinfo", "locale"};
  cJSON *body = rq->body ? cJSON_ParseWithLength(rq->body, rq->len) : NULL;
  cJSON *viol, *f, *profile;
  size_t i;

  if (!cJSON_IsObject(body)) {
    cJSON_Delete(body);
    reply_error(r, 400, "bodyParseFailure", "The request body is not a JSON object");
    return;
  }
  viol = cJSON_CreateArray();
  cJSON_ArrayForEach(f, body) {
    int known = 0;
    for (i = 0; i < COUNT(strings); i++) {
      if (strcmp(f->string, strings[i]) == 0) {
        known = 1;
        if (!cJSON_IsString(f))
          violation(viol, f->string, "must be a string");
        else if (strcmp(f->string, "name") == 0 && f->valuestring[0] == '\0')
          violation(viol, f->string, "must not be empty");
        else if (strlen(f->valuestring) > 255)
          violation(viol, f->string, "must be at most 255 characters");
      }
    }
    if (strcmp(f->string, "extended_profile") == 0) {
      const cJSON *e;
      known = 1;
      if (!cJSON_IsObject(f))
        violation(viol, f->string, "must be an object");
      else
        cJSON_ArrayForEach(e, f) {
          if (!cJSON_IsString(e) && !cJSON_IsNull(e))
            violation(viol, "extended_profile", "values must be strings or null");
        }
    }
    if (!known)
      violation(viol, f->string, "is not a writable profile field");
  }
  if (viol->child) {
    cJSON *doc = cJSON_CreateObject(), *ctx;
    cJSON_AddStringToObject(doc, "key", "fieldConstraintsViolated");
    cJSON_AddStringToObject(doc, "message", "Some fields are not valid");
    ctx = cJSON_AddObjectToObject(doc, "context");
    cJSON_AddItemToObject(ctx, "fieldViolations", viol);
    cJSON_Delete(body);
    reply_json(r, 400, doc);
    return;
  }
  cJSON_Delete(viol);

  profile = cJSON_GetObjectItemCaseSensitive(acct, "profile");
  cJSON_ArrayForEach(f, body) {
    if (strcmp(f->string, "extended_profile") == 0) {
      cJSON *ext = cJSON_GetObjectItemCaseSensitive(profile, "extended_profile"), *e;
      if (!cJSON_IsObject(ext)) {
        ext = cJSON_CreateObject();
        set_member(profile, "extended_profile", ext);
      }
      cJSON_ArrayForEach(e, f) {
        if (cJSON_IsNull(e))
          cJSON_DeleteItemFromObjectCaseSensitive(ext, e->string);
        else
          set_member(ext, e->string, cJSON_Duplicate(e, 1));
      }
    } else {
      set_member(profile, f->string, cJSON_Duplicate(f, 1));
    }
  }
  cJSON_Delete(body);
  profile_reply(acct, r);
}

static void lifecycle(struct request *rq, cJSON *acct, int enable, struct reply *r) {
  const cJSON *status = cJSON_GetObjectItemCaseSensitive(acct, "status");
  const char *want = enable ? "active" : "inactive";
  cJSON *lc, *errs, *e;

  if (rq->len) {
    cJSON *body = cJSON_ParseWithLength(rq->body, rq->len);
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(body, "message");
    if (!cJSON_IsObject(body)) {
      cJSON_Delete(body);
      reply_error(r, 400, "bodyParseFailure", "The request body is not a JSON object");
      return;
    }
    if (msg && !cJSON_IsString(msg)) {
      cJSON *doc = cJSON_CreateObject(), *ctx, *viol;
      cJSON_AddStringToObject(doc, "key", "fieldConstraintsViolated");
      ctx = cJSON_AddObjectToObject(doc, "context");
      viol = cJSON_AddArrayToObject(ctx, "fieldViolations");
      violation(viol, "message", "must be a string");
      cJSON_Delete(body);
      reply_json(r, 400, doc);
      return;
    }
    cJSON_Delete(body);
  }
  if (cJSON_IsString(status) && strcmp(status->valuestring, want) == 0) {
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "key", "conflict.lifecycleErrors");
    cJSON_AddStringToObject(
        doc, "message",
        enable ? "The account is already active" : "The account is already deactivated");
    lc = cJSON_AddObjectToObject(doc, "context");
    errs = cJSON_AddArrayToObject(lc, "errors");
    e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "key", enable ? "alreadyEnabled" : "alreadyDisabled");
    cJSON_AddItemToArray(errs, e);
    reply_json(r, 409, doc);
    return;
  }
  set_member(acct, "status", cJSON_CreateString(want));
  set_member(cJSON_GetObjectItemCaseSensitive(acct, "profile"), "account_status",
             cJSON_CreateString(want));
  reply_set(r, 204, NULL);
}

enum user_route { UR_PERMISSIONS, UR_TOKENS, UR_REVOKE, UR_PROFILE, UR_DISABLE, UR_ENABLE };

static void user_route(struct request *rq, const struct segments *sg, enum user_route which,
                       struct reply *r) {
  const char *m = rq->method;
  const char *priv = NULL;
  cJSON *acct;

  switch (which) {
  case UR_PERMISSIONS:
  case UR_TOKENS:
    if (strcmp(m, "GET") != 0) {
      method_not_allowed(r, "GET");
      return;
    }
    priv = which == UR_TOKENS ? "apiToken.read" : NULL;
    break;
  case UR_REVOKE:
    if (strcmp(m, "DELETE") != 0) {
      method_not_allowed(r, "DELETE");
      return;
    }
    priv = "apiToken.delete";
    break;
  case UR_PROFILE:
    if (strcmp(m, "GET") == 0)
      priv = "profile.read";
    else if (strcmp(m, "PATCH") == 0)
      priv = "profile.write";
    else {
      method_not_allowed(r, "GET, PATCH");
      return;
    }
    break;
  case UR_DISABLE:
  case UR_ENABLE:
    if (strcmp(m, "POST") != 0) {
      method_not_allowed(r, "POST");
      return;
    }
    priv = "lifecycle.enablement";
    break;
  }

  state_lock();
  acct = sg->has_nul[1] ? NULL : state_account(sg->s[1]);
  if (!acct)
    reply_error(r, 404, "accountNotFound", "The account does not exist or is not managed");
  else if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(acct, "unverified")))
    reply_error(r, 403, "forbidden.targetUnverified",
                "The account's domain is not verified by this organization");
  else if (priv && state_denied(acct, priv))
    forbidden_action(r, priv);
  else {
    switch (which) {
    case UR_PERMISSIONS:
      get_permissions(rq, acct, r);
      break;
    case UR_TOKENS:
      list_tokens(acct, r);
      break;
    case UR_REVOKE:
      revoke_token(acct, sg->has_nul[4] ? NULL : sg->s[4], r);
      break;
    case UR_PROFILE:
      if (strcmp(m, "GET") == 0)
        profile_reply(acct, r);
      else
        patch_profile(rq, acct, r);
      break;
    case UR_DISABLE:
    case UR_ENABLE:
      lifecycle(rq, acct, which == UR_ENABLE, r);
      break;
    }
  }
  state_unlock();
}

/* ---- organizations (state lock held) ---- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Cursors are opaque base64 with padding, so a client must carry links.next verbatim. */
static char *make_cursor(long offset) {
  char plain[40], *out;
  size_t n, i, o = 0;
  snprintf(plain, sizeof plain, "offset:%ld", offset);
  n = strlen(plain);
  out = fake_xmalloc((n + 2) / 3 * 4 + 1);
  for (i = 0; i < n; i += 3) {
    unsigned v = (unsigned char)plain[i] << 16;
    if (i + 1 < n)
      v |= (unsigned char)plain[i + 1] << 8;
    if (i + 2 < n)
      v |= (unsigned char)plain[i + 2];
    out[o++] = b64[(v >> 18) & 63];
    out[o++] = b64[(v >> 12) & 63];
    out[o++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
    out[o++] = i + 2 < n ? b64[v & 63] : '=';
  }
  out[o] = '\0';
  return out;
}

static long parse_cursor(const char *c) {
  char plain[64];
  size_t n = strlen(c), i, o = 0;
  unsigned v = 0;
  int bits = 0;
  char *end;
  long off;
  for (i = 0; i < n && c[i] != '='; i++) {
    const char *p = strchr(b64, c[i]);
    if (!p || c[i] == '\0')
      return -1;
    v = (v << 6) | (unsigned)(p - b64);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (o + 1 >= sizeof plain)
        return -1;
      plain[o++] = (char)((v >> bits) & 0xff);
    }
  }
  plain[o] = '\0';
  if (strncmp(plain, "offset:", 7) != 0)
    return -1;
  off = strtol(plain + 7, &end, 10);
  if (*end || off < 0 || end == plain + 7)
    return -1;
  return off;
}

static char *base_url(const struct request *rq) {
  const char *host = request_header(rq, MHD_HTTP_HEADER_HOST);
  char fallback[64], *out;
  size_t n;
  if (!host) {
    snprintf(fallback, sizeof fallback, fake_cfg.ipv6 ? "[%s]:%d" : "%s:%d", fake_cfg.host,
             fake_cfg.bound_port);
    host = fallback;
  }
  n = strlen(host) + 16;
  out = fake_xmalloc(n);
  snprintf(out, n, "%s://%s", fake_cfg.tls ? "https" : "http", host);
  return out;
}

/* Adds "links" (and meta.total) for a page starting at offset of total items. */
static void add_page_links(struct request *rq, cJSON *doc, long offset, long total) {
  char *base = base_url(rq), *buf;
  size_t n = strlen(base) + strlen(rq->path) + strlen(rq->query) + 64;
  cJSON *links = cJSON_AddObjectToObject(doc, "links"), *meta;

  meta = cJSON_AddObjectToObject(doc, "meta");
  cJSON_AddNumberToObject(meta, "total", (double)total);
  buf = fake_xmalloc(n);
  snprintf(buf, n, "%s%s%s%s", base, rq->path, rq->query[0] ? "?" : "", rq->query);
  cJSON_AddStringToObject(links, "self", buf);
  if (offset > 0) {
    long prev = offset - fake_cfg.page_size < 0 ? 0 : offset - fake_cfg.page_size;
    char *cur = make_cursor(prev), *enc = fake_pct_encode(cur);
    snprintf(buf, n, "%s%s?cursor=%s", base, rq->path, enc);
    cJSON_AddStringToObject(links, "prev", buf);
    free(cur);
    free(enc);
  }
  if (offset + fake_cfg.page_size < total) {
    char *cur = make_cursor(offset + fake_cfg.page_size), *enc = fake_pct_encode(cur);
    snprintf(buf, n, "%s%s?cursor=%s", base, rq->path, enc);
    cJSON_AddStringToObject(links, "next", buf);
    free(cur);
    free(enc);
  }
  free(buf);
  free(base);
}

static void copy_member(cJSON *to, const char *name, const cJSON *from, const char *from_name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(from, from_name);
  if (v)
    cJSON_AddItemToObject(to, name, cJSON_Duplicate(v, 1));
}

static cJSON *org_user(const char *id) {
  const cJSON *acct = state_account(id);
  const cJSON *profile = cJSON_GetObjectItemCaseSensitive(acct, "profile");
  const cJSON *status = cJSON_GetObjectItemCaseSensitive(acct, "status");
  cJSON *u = cJSON_CreateObject();
  char pic[300];
  int active = !cJSON_IsString(status) || strcmp(status->valuestring, "active") == 0;

  cJSON_AddStringToObject(u, "account_id", id);
  if (cJSON_GetObjectItemCaseSensitive(profile, "account_type"))
    copy_member(u, "account_type", profile, "account_type");
  else
    cJSON_AddStringToObject(u, "account_type", "atlassian");
  cJSON_AddStringToObject(u, "account_status",
                          cJSON_IsString(status) ? status->valuestring : "active");
  copy_member(u, "name", profile, "name");
  copy_member(u, "email", profile, "email");
  if (cJSON_GetObjectItemCaseSensitive(profile, "picture")) {
    copy_member(u, "picture", profile, "picture");
  } else {
    snprintf(pic, sizeof pic, "https://avatar.example.invalid/%.200s.png", id);
    cJSON_AddStringToObject(u, "picture", pic);
  }
  if (cJSON_GetObjectItemCaseSensitive(profile, "last_active")) {
    copy_member(u, "last_active", profile, "last_active");
  } else {
    /* the newest token use stands in for the last activity */
    const cJSON *t, *newest = NULL;
    cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(acct, "tokens")) {
      const cJSON *la = cJSON_GetObjectItemCaseSensitive(t, "lastAccess");
      if (cJSON_IsString(la) && (!newest || strcmp(la->valuestring, newest->valuestring) > 0))
        newest = la;
    }
    if (newest)
      cJSON_AddStringToObject(u, "last_active", newest->valuestring);
  }
  if (cJSON_GetObjectItemCaseSensitive(profile, "access_billable"))
    copy_member(u, "access_billable", profile, "access_billable");
  else
    cJSON_AddBoolToObject(u, "access_billable", active);
  if (cJSON_GetObjectItemCaseSensitive(profile, "product_access"))
    copy_member(u, "product_access", profile, "product_access");
  else
    cJSON_AddArrayToObject(u, "product_access");
  return u;
}

static int page_offset(struct request *rq, struct reply *r, long *offset) {
  char *cursor = query_first(rq->query, "cursor");
  *offset = 0;
  if (cursor && cursor[0]) {
    *offset = parse_cursor(cursor);
    if (*offset < 0) {
      free(cursor);
      org_error(r, 400, "ADMIN-400-1", "Bad Request", "The cursor is not valid");
      return -1;
    }
  }
  free(cursor);
  return 0;
}

static void org_users(struct request *rq, const cJSON *org, struct reply *r) {
  const cJSON *users = cJSON_GetObjectItemCaseSensitive(org, "users"), *u;
  long offset, i = 0, total = cJSON_GetArraySize(users);
  cJSON *doc, *data;
  if (page_offset(rq, r, &offset))
    return;
  doc = cJSON_CreateObject();
  data = cJSON_AddArrayToObject(doc, "data");
  cJSON_ArrayForEach(u, users) {
    if (i >= offset && i < offset + fake_cfg.page_size)
      cJSON_AddItemToArray(data, org_user(u->valuestring));
    i++;
  }
  add_page_links(rq, doc, offset, total);
  reply_json(r, 200, doc);
}

static cJSON *org_token(const char *org_id, const char *account_id, const cJSON *acct,
                        const cJSON *t) {
  const cJSON *profile = cJSON_GetObjectItemCaseSensitive(acct, "profile");
  cJSON *o = cJSON_CreateObject(), *user;
  static const char *const pairs[][2] = {
      {"createdAt", "createdAt"}, {"expiresAt", "expiry"}, {"lastActiveAt", "lastAccess"}};
  size_t i;
  copy_member(o, "id", t, "id");
  copy_member(o, "label", t, "label");
  cJSON_AddStringToObject(o, "status", "ALLOWED");
  for (i = 0; i < COUNT(pairs); i++) {
    if (cJSON_GetObjectItemCaseSensitive(t, pairs[i][1]))
      copy_member(o, pairs[i][0], t, pairs[i][1]);
    else
      cJSON_AddNullToObject(o, pairs[i][0]);
  }
  user = cJSON_AddObjectToObject(o, "user");
  cJSON_AddStringToObject(user, "id", account_id);
  cJSON_AddStringToObject(user, "orgId", org_id);
  copy_member(user, "name", profile, "name");
  copy_member(user, "email", profile, "email");
  return o;
}

static void org_tokens(struct request *rq, const char *org_id, const cJSON *org, struct reply *r) {
  const cJSON *u, *t;
  long offset, i = 0;
  cJSON *doc, *data;
  if (page_offset(rq, r, &offset))
    return;
  doc = cJSON_CreateObject();
  data = cJSON_AddArrayToObject(doc, "data");
  cJSON_ArrayForEach(u, cJSON_GetObjectItemCaseSensitive(org, "users")) {
    const cJSON *acct = state_account(u->valuestring);
    cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(acct, "tokens")) {
      if (i >= offset && i < offset + fake_cfg.page_size)
        cJSON_AddItemToArray(data, org_token(org_id, u->valuestring, acct, t));
      i++;
    }
  }
  add_page_links(rq, doc, offset, i);
  reply_json(r, 200, doc);
}

static void org_revoke_all(const cJSON *org, struct reply *r) {
  const cJSON *u;
  cJSON_ArrayForEach(u, cJSON_GetObjectItemCaseSensitive(org, "users")) {
    cJSON *acct = state_account(u->valuestring);
    if (acct)
      cJSON_ReplaceItemInObjectCaseSensitive(acct, "tokens", cJSON_CreateArray());
  }
  reply_set(r, 204, NULL);
}

static void org_route(struct request *rq, const struct segments *sg, int org_idx, int tokens,
                      struct reply *r) {
  const char *m = rq->method;
  const char *org_id = sg->s[org_idx];
  cJSON *org;
  char detail[200];

  if (tokens ? (strcmp(m, "GET") != 0 && strcmp(m, "DELETE") != 0) : strcmp(m, "GET") != 0) {
    method_not_allowed(r, tokens ? "GET, DELETE" : "GET");
    return;
  }
  state_lock();
  org = sg->has_nul[org_idx] ? NULL : state_org(org_id);
  if (!org) {
    snprintf(detail, sizeof detail, "Organization %.120s was not found", org_id);
    org_error(r, 404, "ADMIN-404-2", "Not Found", detail);
  } else if (tokens && !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(org, "api_access"))) {
    snprintf(detail, sizeof detail, "The API Access API is not enabled for organization %.120s",
             org_id);
    org_error(r, 403, "ADMIN-403-1", "Forbidden", detail);
  } else if (!tokens) {
    org_users(rq, org, r);
  } else if (strcmp(m, "GET") == 0) {
    org_tokens(rq, org_id, org, r);
  } else {
    org_revoke_all(org, r);
  }
  state_unlock();
}

/* ---- entry ---- */

static int authorized(const struct request *rq) {
  const char *h = request_header(rq, MHD_HTTP_HEADER_AUTHORIZATION);
  if (!h)
    return 0;
  while (*h == ' ' || *h == '\t')
    h++;
  if (strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t'))
    return 0;
  h += 6;
  while (*h == ' ' || *h == '\t')
    h++;
  return state_key_matches(h);
}

void routes_handle(struct request *rq, struct reply *r) {
  struct segments sg;

  if (!authorized(rq)) {
    reply_error(r, 401, "unauthorized",
                "A valid admin API key is required (Authorization: Bearer)");
    reply_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    return;
  }
  if (split_path(rq->path, &sg) != 0) {
    free_segments(&sg);
    reply_error(r, 404, "notFound", "No such resource");
    return;
  }
  if (seg_is(&sg, 0, "users") && seg_is(&sg, 2, "manage")) {
    if (sg.n == 3)
      user_route(rq, &sg, UR_PERMISSIONS, r);
    else if (sg.n == 4 && seg_is(&sg, 3, "api-tokens"))
      user_route(rq, &sg, UR_TOKENS, r);
    else if (sg.n == 5 && seg_is(&sg, 3, "api-tokens"))
      user_route(rq, &sg, UR_REVOKE, r);
    else if (sg.n == 4 && seg_is(&sg, 3, "profile"))
      user_route(rq, &sg, UR_PROFILE, r);
    else if (sg.n == 5 && seg_is(&sg, 3, "lifecycle") && seg_is(&sg, 4, "disable"))
      user_route(rq, &sg, UR_DISABLE, r);
    else if (sg.n == 5 && seg_is(&sg, 3, "lifecycle") && seg_is(&sg, 4, "enable"))
      user_route(rq, &sg, UR_ENABLE, r);
    else
      reply_error(r, 404, "notFound", "No such resource");
  } else if (sg.n == 5 && seg_is(&sg, 0, "admin") && seg_is(&sg, 1, "v1") &&
             seg_is(&sg, 2, "orgs") && seg_is(&sg, 4, "users")) {
    org_route(rq, &sg, 3, 0, r);
  } else if (sg.n == 6 && seg_is(&sg, 0, "admin") && seg_is(&sg, 1, "api-access") &&
             seg_is(&sg, 2, "v1") && seg_is(&sg, 3, "orgs") && seg_is(&sg, 5, "api-tokens")) {
    org_route(rq, &sg, 4, 1, r);
  } else {
    reply_error(r, 404, "notFound", "No such resource");
  }
  free_segments(&sg);
}
