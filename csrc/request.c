/* request.c: building requests without any I/O: base URL checks, id checks, path-segment
 * encoding and the table of API operations. */
#include <string.h>
#include <strings.h>
#include <stdio.h>
#include <arpa/inet.h>
#include "internal.h"

const atl_op atl_op_tokens = {"tokens", "GET", "/users/%/manage/api-tokens", 1, 200, ATL_RES_TOKENS};
const atl_op atl_op_revoke = {"revoke", "DELETE", "/users/%/manage/api-tokens/%", 2, 204, ATL_RES_NONE};

const atl_op atl_op_permissions = {"permissions", "GET", "/users/%/manage", 1, 200, ATL_RES_JSON};
const atl_op atl_op_profile = {"profile", "GET", "/users/%/manage/profile", 1, 200, ATL_RES_ACCOUNT};
const atl_op atl_op_update_profile = {"update_profile", "PATCH", "/users/%/manage/profile", 1, 200, ATL_RES_ACCOUNT};
const atl_op atl_op_disable = {"disable", "POST", "/users/%/manage/lifecycle/disable", 1, 204, ATL_RES_NONE};
const atl_op atl_op_enable = {"enable", "POST", "/users/%/manage/lifecycle/enable", 1, 204, ATL_RES_NONE};
const atl_op atl_op_org_users = {"org_users_page", "GET", "/admin/v1/orgs/%/users", 1, 200, ATL_RES_PAGE};
const atl_op atl_op_org_tokens = {"org_tokens_page", "GET", "/admin/api-access/v1/orgs/%/api-tokens", 1, 200, ATL_RES_PAGE};

static const atl_op *const all_ops[] = {&atl_op_tokens, &atl_op_revoke, &atl_op_permissions,
                                        &atl_op_profile, &atl_op_update_profile, &atl_op_disable,
                                        &atl_op_enable, &atl_op_org_users, &atl_op_org_tokens, NULL};

const atl_op *atl_op_by_name(const char *name) {
  int i;
  for (i = 0; all_ops[i]; i++)
    if (strcmp(all_ops[i]->name, name) == 0) return all_ops[i];
  return NULL;
}

static int is_loopback_host(const char *host) {
  unsigned char v4[4], v6[16];
  static const unsigned char one6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  char inner[64];
  size_t n = strlen(host);
  if (strcasecmp(host, "localhost") == 0) return 1;
  if (inet_pton(AF_INET, host, v4) == 1) return v4[0] == 127;
  if (n > 2 && n < sizeof inner && host[0] == '[' && host[n - 1] == ']') {
    memcpy(inner, host + 1, n - 2);
    inner[n - 2] = '\0';
    if (inet_pton(AF_INET6, inner, v6) == 1) return memcmp(v6, one6, 16) == 0;
  }
  return 0;
}

/* Checks a base URL and writes its normal form (no trailing slash) to norm.
 * Returns NULL when fine, else a sentence saying what is wrong. */
const char *atl_check_base_url(const char *url, char *norm, size_t normsz) {
  CURLU *u = curl_url();
  char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *user = NULL, *pass = NULL,
       *query = NULL, *frag = NULL;
  const char *problem = NULL;
  size_t plen;
  int n;
  if (!u) return "out of memory";
  if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
    problem = "is not a valid absolute URL";
    goto done;
  }
  curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
  curl_url_get(u, CURLUPART_HOST, &host, 0);
  curl_url_get(u, CURLUPART_PORT, &port, 0);
  curl_url_get(u, CURLUPART_PATH, &path, 0);
  curl_url_get(u, CURLUPART_USER, &user, 0);
  curl_url_get(u, CURLUPART_PASSWORD, &pass, 0);
  curl_url_get(u, CURLUPART_QUERY, &query, 0);
  curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0);
  if (scheme && strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0) {
    problem = "must use https (or http to a loopback host)";
  } else if (!scheme || !host || !*host) {
    problem = "is not a valid absolute URL";
  } else if (strcmp(scheme, "http") == 0 && !is_loopback_host(host)) {
    problem = "uses http to a host that is not loopback: the admin key would cross the network in clear text; use https";
  } else if (user || pass) {
    problem = "must not carry a user name or password";
  } else if (query || frag) {
    problem = "must not carry a query or fragment";
  } else {
    plen = path ? strlen(path) : 0;
    while (plen > 0 && path[plen - 1] == '/') plen--;
    n = snprintf(norm, normsz, "%s://%s%s%s%.*s", scheme, host, port ? ":" : "", port ? port : "",
                 (int)plen, path ? path : "");
    if (n < 0 || (size_t)n >= normsz) problem = "is too long";
  }
done:
  curl_free(scheme); curl_free(host); curl_free(port); curl_free(path);
  curl_free(user); curl_free(pass); curl_free(query); curl_free(frag);
  curl_url_cleanup(u);
  return problem;
}

const char *atl_id_problem(const char *s, size_t len) {
  size_t i;
  if (len == 0) return "must not be empty";
  if (len > ATL_MAX_ID_LEN) return "is longer than 1024 bytes";
  if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
    return "must not be '.' or '..'";
  for (i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch < 0x20 || ch == 0x7f) return "contains a NUL or control character";
  }
  return NULL;
}

/* Raises (argument error naming `what`) unless argument arg is a usable id string. */
void atl_check_id(lua_State *L, int arg, const char *what, const char **s, size_t *len) {
  const char *problem;
  if (lua_type(L, arg) != LUA_TSTRING) {
    lua_pushfstring(L, "%s: expected a string, got %s", what, luaL_typename(L, arg));
    luaL_argerror(L, arg, lua_tostring(L, -1));
  }
  *s = lua_tolstring(L, arg, len);
  problem = atl_id_problem(*s, *len);
  if (problem) {
    lua_pushfstring(L, "%s %s", what, problem);
    luaL_argerror(L, arg, lua_tostring(L, -1));
  }
}

/* Percent-encodes everything but A-Z a-z 0-9 - . _ ~ : so that the id is one path segment. */
void atl_encode_segment(luaL_Buffer *b, const char *s, size_t len) {
  static const char hex[] = "0123456789ABCDEF";
  size_t i;
  for (i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)s[i];
    if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
        ch == '-' || ch == '.' || ch == '_' || ch == '~' || ch == ':') {
      luaL_addchar(b, (char)ch);
    } else {
      luaL_addchar(b, '%');
      luaL_addchar(b, hex[ch >> 4]);
      luaL_addchar(b, hex[ch & 15]);
    }
  }
}

void atl_push_url(lua_State *L, const char *base, const atl_op *op,
                  const char *const *segs, const size_t *lens, const char *query) {
  luaL_Buffer b;
  const char *p;
  int seg = 0;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, base);
  for (p = op->path; *p; p++) {
    if (*p == '%' && seg < op->nsegs) {
      atl_encode_segment(&b, segs[seg], lens[seg]);
      seg++;
    } else {
      luaL_addchar(&b, *p);
    }
  }
  if (query && *query) {
    luaL_addchar(&b, '?');
    luaL_addstring(&b, query);
  }
  luaL_pushresult(&b);
}

/* Pushes "key=value", both encoded; the value at vidx must be a string, number or boolean. */
static void push_pair(lua_State *L, int kidx, int vidx, const char *what) {
  luaL_Buffer b;
  const char *k, *v;
  size_t klen, vlen;
  int t = lua_type(L, vidx);
  k = lua_tolstring(L, kidx, &klen);
  if (t == LUA_TBOOLEAN) {
    lua_pushstring(L, lua_toboolean(L, vidx) ? "true" : "false");
    lua_replace(L, vidx);
  } else if (t != LUA_TSTRING && t != LUA_TNUMBER) {
    luaL_error(L, "%s: query value for '%s' must be a string, number or boolean, got %s", what, k,
               luaL_typename(L, vidx));
  }
  v = lua_tolstring(L, vidx, &vlen); /* vidx is a scratch copy: converting it in place is fine */
  luaL_buffinit(L, &b);
  atl_encode_segment(&b, k, klen);
  luaL_addchar(&b, '=');
  atl_encode_segment(&b, v, vlen);
  luaL_pushresult(&b);
}

/* Pushes the query string for a table of name -> value or name -> {values...}: names sorted,
 * so the same table always gives the same URL; "" for nil. Everything stays owned by Lua. */
void atl_push_query(lua_State *L, int idx, const char *what) {
  luaL_Buffer b;
  int n = 0, parts = 0, i, j, names, pieces;
  idx = atl_absindex(L, idx);
  if (lua_isnoneornil(L, idx)) {
    lua_pushliteral(L, "");
    return;
  }
  if (!lua_istable(L, idx)) luaL_error(L, "%s: expected a table of query parameters", what);
  lua_newtable(L);
  names = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "%s: query parameter names must be strings", what);
    lua_pushvalue(L, -1);
    lua_rawseti(L, names, ++n);
  }
  lua_getglobal(L, "table");
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, "sort");
    if (lua_isfunction(L, -1)) {
      lua_pushvalue(L, names);
      lua_call(L, 1, 0);
    } else {
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  lua_newtable(L);
  pieces = lua_gettop(L);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, names, i);
    lua_pushvalue(L, -1);
    lua_gettable(L, idx);
    if (lua_istable(L, -1)) {
      int len = (int)atl_rawlen(L, -1);
      for (j = 1; j <= len; j++) {
        lua_rawgeti(L, -1, j);
        push_pair(L, -3, lua_gettop(L), what);
        lua_rawseti(L, pieces, ++parts);
        lua_pop(L, 1);
      }
    } else {
      push_pair(L, -2, lua_gettop(L), what);
      lua_rawseti(L, pieces, ++parts);
    }
    lua_pop(L, 2);
  }
  luaL_buffinit(L, &b);
  for (i = 1; i <= parts; i++) {
    if (i > 1) luaL_addchar(&b, '&');
    lua_rawgeti(L, pieces, i);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  lua_replace(L, names);
  lua_settop(L, names);
}
