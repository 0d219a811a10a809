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

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Reads n hex digits of s[0, avail); returns the value, -1 when a digit is not hex, -2 when
 * the text ends before n digits (each present one being hex). */
static long read_hex(const char *s, size_t avail, int n) {
  long v = 0;
  int i;
  for (i = 0; i < n; i++) {
    if ((size_t)i >= avail) return -2;
    if (hexval(s[i]) < 0) return -1;
    v = v * 16 + hexval(s[i]);
  }
  return v;
}

/* The UTF-8 bytes of code point cp into u (4 bytes); returns their count. */
static size_t utf8_of(unsigned long cp, unsigned char *u) {
  if (cp < 0x80) { u[0] = (unsigned char)cp; return 1; }
  if (cp < 0x800) { u[0] = (unsigned char)(0xC0 | (cp >> 6)); u[1] = (unsigned char)(0x80 | (cp & 0x3F)); return 2; }
  if (cp < 0x10000) {
    u[0] = (unsigned char)(0xE0 | (cp >> 12));
    u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    u[2] = (unsigned char)(0x80 | (cp & 0x3F));
    return 3;
  }
  u[0] = (unsigned char)(0xF0 | (cp >> 18));
  u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
  u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
  u[3] = (unsigned char)(0x80 | (cp & 0x3F));
  return 4;
}

/* Reads the escape at s[0, avail) (s[0] is '%' or '\\'): %XX, or JSON's \/ \" \\ \b \f \n \r
 * \t \uXXXX (either case; a surrogate pair as one code point). Puts its bytes in u (*un of
 * them) and its length in *used; returns 1, 0 when it is no escape, -1 when s ends inside it. */
static int read_escape(const char *s, size_t avail, unsigned char *u, size_t *un, size_t *used) {
  static const char simple[] = "\"\"\\\\//b\bf\fn\nr\rt\t";
  const char *e;
  long v, lo;
  if (s[0] == '%') {
    if ((v = read_hex(s + 1, avail - 1, 2)) < 0) return v == -2 ? -1 : 0;
    u[0] = (unsigned char)v;
    *un = 1;
    *used = 3;
    return 1;
  }
  if (avail < 2) return -1;
  if (s[1] != 'u') {
    for (e = simple; *e && *e != s[1]; e += 2) {}
    if (!*e) return 0;
    u[0] = (unsigned char)e[1];
    *un = 1;
    *used = 2;
    return 1;
  }
  if ((v = read_hex(s + 2, avail - 2, 4)) < 0) return v == -2 ? -1 : 0;
  *used = 6;
  if (v >= 0xD800 && v <= 0xDBFF) { /* a high surrogate: its low half must follow */
    if (avail < 8 && (avail == 6 || s[6] == '\\')) return -1;
    if (s[6] != '\\' || s[7] != 'u') return 0;
    if ((lo = read_hex(s + 8, avail - 8, 4)) < 0) return lo == -2 ? -1 : 0;
    if (lo < 0xDC00 || lo > 0xDFFF) return 0;
    v = 0x10000 + (((v & 0x3FF) << 10) | (lo & 0x3FF));
    *used = 12;
  }
  *un = utf8_of((unsigned long)v, u);
  return 1;
}

/* One way of matching for secret_at: where a '\\' or '%' of s both is the secret's next byte
 * and starts an escape of the bytes after it, escape_first says which reading to take. */
static size_t match_from(const char *s, size_t i, size_t len, const char *secret, size_t slen, int escape_first,
                         int *partial) {
  size_t at = i, k = 0, un = 0, used = 0;
  unsigned char u[4];
  *partial = 0;
  while (k < slen) {
    int r = 0, raw_ok, esc_ok;
    if (at >= len) {
      *partial = 1;
      return 0;
    }
    if (s[at] == '%' || s[at] == '\\') r = read_escape(s + at, len - at, u, &un, &used);
    raw_ok = s[at] == secret[k];
    esc_ok = r == 1 && un <= slen - k && memcmp(u, secret + k, un) == 0;
    if (raw_ok && !(escape_first && esc_ok)) {
      at++;
      k++;
    } else if (esc_ok) {
      at += used;
      k += un;
    } else {
      *partial = r == -1;
      return 0;
    }
  }
  return at - i;
}

/* Does the secret start at s[i] in [i, len), spelled as is or with its bytes escaped the way
 * a server may echo it: in JSON (\/ \" \\ \b \f \n \r \t, \uXXXX in either case, surrogate
 * pairs) or percent-encoded (%2F) as in a URL? Returns how many bytes of s the secret takes,
 * or 0; when s ends while every byte so far matched (a cut mid-secret or mid-escape), returns 0
 * with *partial set. A key that itself holds '\' or '%' is found with those bytes read all as
 * themselves or all as escapes where they can be (two passes), not in every mix. */
static size_t secret_at(const char *s, size_t i, size_t len, const char *secret, size_t slen, int *partial) {
  int p1, p2 = 0;
  size_t m = match_from(s, i, len, secret, slen, 0, &p1);
  if (!m && (memchr(secret, '\\', slen) || memchr(secret, '%', slen))) m = match_from(s, i, len, secret, slen, 1, &p2);
  *partial = !m && (p1 || p2);
  return m;
}

/* Pushes at most max bytes of s with every occurrence of the secret (in any spelling
 * secret_at knows) replaced by "***", so nothing echoed back shows the key. When the text
 * shown stops early (cut at max, or the body itself was cut: more is 1), a tail that starts the
 * secret is hidden too, so no cut can leave a prefix of the key behind. */
static void push_redacted_cut(lua_State *L, const char *s, size_t len, size_t max, int more,
                              const char *secret, size_t slen) {
  luaL_Buffer b;
  size_t i = 0, out = 0, end, tail, m, copied_from = 0;
  int partial;
  if (!secret || slen == 0) {
    lua_pushlstring(L, s, len < max ? len : max);
    return;
  }
  /* first pass: where the shown text ends in s */
  while (i < len && out < max) {
    if ((m = secret_at(s, i, len, secret, slen, &partial)) > 0) {
      i += m;
      out += 3;
      copied_from = i;
    } else {
      i++;
      out++;
    }
  }
  end = i;
  if (end < len) more = 1;
  tail = end;
  if (more) {
    /* the earliest start in [copied_from, end) from which the rest could begin the secret */
    for (i = copied_from; i < end; i++) {
      if (secret_at(s, i, end, secret, slen, &partial) == 0 && partial) {
        tail = i;
        break;
      }
    }
  }
  luaL_buffinit(L, &b);
  i = 0;
  while (i < tail) {
    if ((m = secret_at(s, i, tail, secret, slen, &partial)) > 0) {
      luaL_addstring(&b, "***");
      i += m;
    } else {
      luaL_addchar(&b, s[i]);
      i++;
    }
  }
  if (tail < end) luaL_addstring(&b, "***");
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
