/* errors.c: the structured error object returned as `nil, err` (kind, status, key, message,
 * method, endpoint, attempts, ...), its __tostring, and reading Atlassian error bodies. */
#include <stdio.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "internal.h"

static void copy_out(char *dst, size_t dstsz, const char *src) {
  size_t n = src ? strlen(src) : 0;
  if (n >= dstsz) n = dstsz - 1;
  if (n) memcpy(dst, src, n);
  dst[n] = '\0';
}

static const char *str_at(const cJSON *obj, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Finds the error key and a message in an error body of any of the shapes the Admin APIs use:
 * {"key","message"}, {"code","message"} from the gateway, {"errors":[{"code","title","detail"}]}.
 * Writes empty strings when the body says nothing usable (empty, HTML, other JSON). */
void atl_error_details(const char *body, size_t len, char *key, size_t keysz, char *msg, size_t msgsz) {
  cJSON *tree;
  const cJSON *e, *ctx, *reason;
  key[0] = msg[0] = '\0';
  if (!body || len == 0) return;
  tree = cJSON_ParseWithLength(body, len);
  if (!cJSON_IsObject(tree)) {
    cJSON_Delete(tree);
    return;
  }
  copy_out(key, keysz, str_at(tree, "key"));
  copy_out(msg, msgsz, str_at(tree, "message"));
  if (!msg[0]) copy_out(msg, msgsz, str_at(tree, "errorMessage"));
  e = cJSON_GetObjectItemCaseSensitive(tree, "errors");
  if (cJSON_IsArray(e) && cJSON_IsObject(e->child)) {
    e = e->child;
    if (!key[0]) copy_out(key, keysz, str_at(e, "code"));
    if (!msg[0]) copy_out(msg, msgsz, str_at(e, "detail"));
    if (!msg[0]) copy_out(msg, msgsz, str_at(e, "title"));
  }
  ctx = cJSON_GetObjectItemCaseSensitive(tree, "context");
  reason = cJSON_IsObject(ctx) ? cJSON_GetObjectItemCaseSensitive(ctx, "reason") : NULL;
  if (!msg[0] && cJSON_IsObject(reason) && str_at(reason, "key"))
    snprintf(msg, msgsz, "reason: %s", str_at(reason, "key"));
  cJSON_Delete(tree);
}

/* Pushes at most max bytes of s with every occurrence of the secret replaced by "***", so
 * nothing echoed back shows the key. When the text shown stops early (cut at max, or the body
 * itself was cut: more is 1), a tail that starts the secret is hidden too, so no cut can leave
 * a prefix of the key behind. */
static void push_redacted_cut(lua_State *L, const char *s, size_t len, size_t max, int more,
                              const char *secret, size_t slen) {
  luaL_Buffer b;
  size_t i = 0, out = 0, end, k, copied_from = 0;
  if (!secret || slen == 0) {
    lua_pushlstring(L, s, len < max ? len : max);
    return;
  }
  /* first pass: where the shown text ends in s */
  while (i < len && out < max) {
    if (len - i >= slen && memcmp(s + i, secret, slen) == 0) {
      i += slen;
      out += 3;
      copied_from = i;
    } else {
      i++;
      out++;
    }
  }
  end = i;
  if (end < len) more = 1;
  k = 0;
  if (more) {
    /* the longest tail of s[copied_from, end) that is a proper prefix of the secret */
    for (k = slen - 1 < end - copied_from ? slen - 1 : end - copied_from; k > 0; k--)
      if (memcmp(s + end - k, secret, k) == 0) break;
  }
  luaL_buffinit(L, &b);
  i = 0;
  while (i < end - k) {
    if (end - k - i >= slen && memcmp(s + i, secret, slen) == 0) {
      luaL_addstring(&b, "***");
      i += slen;
    } else {
      luaL_addchar(&b, s[i]);
      i++;
    }
  }
  if (k) luaL_addstring(&b, "***");
  luaL_pushresult(&b);
}

/* Sets t[k] to the redacted text of a fixed-size buffer of size sz: a text that filled it may
 * have been cut, so its tail is treated as possibly the start of the key. */
static void set_redacted(lua_State *L, const char *k, const char *v, size_t sz, const atl_reply *r) {
  size_t n = strlen(v);
  push_redacted_cut(L, v, n, n, n + 1 >= sz, r->secret, r->secret_len);
  lua_setfield(L, -2, k);
}

static const char *reason_phrase(long status) {
  switch (status) {
  case 400: return "Bad Request";
  case 401: return "Unauthorized: the admin key was not accepted";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 409: return "Conflict";
  case 429: return "Too Many Requests";
  case 500: return "Internal Server Error";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  default: return status >= 500 ? "server error" : status >= 400 ? "client error" : "unexpected status";
  }
}

void atl_push_error(lua_State *L, const atl_reply *r, const char *kind, const char *message) {
  char key[128], msg[512], extra[64];
  key[0] = msg[0] = extra[0] = '\0';
  if (!r->transport_failed && r->status) atl_error_details(r->body, r->body_len, key, sizeof key, msg, sizeof msg);
  if (message) {
    copy_out(msg, sizeof msg, message);
  } else if (r->status >= 300 && r->status < 400) {
    snprintf(msg, sizeof msg, "redirect not followed (Location: %s)", r->location ? r->location : "none");
  } else if (!msg[0]) {
    copy_out(msg, sizeof msg, reason_phrase(r->status));
  }
  if (r->status == 429 && r->retry_after >= 0)
    snprintf(extra, sizeof extra, "; retry after %.0f s", r->retry_after);
  lua_createtable(L, 0, 14);
  lua_pushstring(L, kind);
  lua_setfield(L, -2, "kind");
  if (r->status) {
    atl_pushwhole(L, r->status);
    lua_setfield(L, -2, "status");
  }
  if (key[0]) set_redacted(L, "key", key, sizeof key, r);
  set_redacted(L, "message", msg, sizeof msg, r);
  if (extra[0]) {
    lua_getfield(L, -1, "message");
    lua_pushstring(L, extra);
    lua_concat(L, 2);
    lua_setfield(L, -2, "message");
  }
  if (r->method) {
    lua_pushstring(L, r->method);
    lua_setfield(L, -2, "method");
  }
  if (r->url) {
    lua_pushstring(L, r->url);
    lua_setfield(L, -2, "endpoint");
  }
  atl_pushwhole(L, r->attempts);
  lua_setfield(L, -2, "attempts");
  lua_pushnumber(L, (lua_Number)r->elapsed);
  lua_setfield(L, -2, "elapsed");
  if (r->waited > 0) {
    lua_pushnumber(L, (lua_Number)r->waited);
    lua_setfield(L, -2, "waited");
  }
  if (r->retry_after >= 0) {
    lua_pushnumber(L, (lua_Number)r->retry_after);
    lua_setfield(L, -2, "retry_after");
  }
  if (r->transport_failed) {
    atl_pushwhole(L, r->curl_code);
    lua_setfield(L, -2, "code");
  }
  if (r->location) set_redacted(L, "location", r->location, ATL_LOCATION_MAX, r);
  if (r->body && r->body_len) {
    push_redacted_cut(L, r->body, r->body_len, ATL_ERR_BODY_MAX, r->body_overflow, r->secret,
                      r->secret_len);
    lua_setfield(L, -2, "body");
  }
  luaL_getmetatable(L, ATL_ERROR_MT);
  lua_setmetatable(L, -2);
}

/* Leaves t[k] on the stack (values stay referenced until the function returns). */
static const char *field(lua_State *L, int t, const char *k) {
  lua_getfield(L, t, k);
  return lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER ? lua_tostring(L, -1) : NULL;
}

/* "atladmin: DELETE https://.../api-tokens/x: 404 notFound (message)" */
static int error_tostring(lua_State *L) {
  const char *kind, *method, *endpoint, *status, *key, *message;
  luaL_checktype(L, 1, LUA_TTABLE);
  kind = field(L, 1, "kind");
  method = field(L, 1, "method");
  endpoint = field(L, 1, "endpoint");
  status = field(L, 1, "status");
  key = field(L, 1, "key");
  message = field(L, 1, "message");
  lua_pushfstring(L, "atladmin: %s %s: ", method ? method : "?", endpoint ? endpoint : "?");
  if (kind && strcmp(kind, "http") == 0)
    lua_pushfstring(L, "%s%s%s (%s)", status ? status : "?", key ? " " : "", key ? key : "",
                    message ? message : "");
  else
    lua_pushfstring(L, "%s error (%s)", kind ? kind : "unknown", message ? message : "");
  lua_concat(L, 2);
  return 1;
}

void atl_register_error(lua_State *L) {
  luaL_newmetatable(L, ATL_ERROR_MT);
  lua_pushcfunction(L, error_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "atladmin.Error");
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);
}
