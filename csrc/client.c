/* client.c: the atladmin.Client userdata: options, lifetime (close/__gc/__close) and the
 * API methods, each one request built, sent and decoded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

#define BASE_URL_MAX 2048

static atl_client *check_client(lua_State *L, const char *method) {
  atl_client *c = luaL_checkudata(L, 1, ATL_CLIENT_MT);
  if (c->closed) luaL_error(L, "atladmin: %s called on a closed client", method);
  return c;
}

static char *dup_or_raise(lua_State *L, const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (!d) luaL_error(L, "not enough memory");
  memcpy(d, s, n);
  return d;
}

static void wipe(char *p, size_t n) {
  volatile char *v = p;
  while (n--) *v++ = 0;
}

/* Frees everything the client owns; safe to call any number of times (close and __gc). */
static void client_release(atl_client *c) {
  if (c->easy) curl_easy_cleanup(c->easy);
  c->easy = NULL;
  curl_slist_free_all(c->headers);
  curl_slist_free_all(c->headers_body);
  c->headers = c->headers_body = NULL;
  if (c->token) {
    wipe(c->token, c->token_len);
    free(c->token);
  }
  c->token = NULL;
  c->token_len = 0;
  free(c->base_url);
  free(c->user_agent);
  free(c->ca_pem);
  c->base_url = c->user_agent = c->ca_pem = NULL;
  atl_buf_free(&c->body);
  c->closed = 1;
}

static int client_gc(lua_State *L) {
  atl_client *c = luaL_checkudata(L, 1, ATL_CLIENT_MT);
  client_release(c);
  return 0;
}

static int client_close(lua_State *L) {
  client_gc(L);
  return 0;
}

static int client_tostring(lua_State *L) {
  atl_client *c = luaL_checkudata(L, 1, ATL_CLIENT_MT);
  if (c->closed)
    lua_pushliteral(L, "atladmin.client (closed)");
  else
    lua_pushfstring(L, "atladmin.client (%s)", c->base_url);
  return 1;
}

/* ---- options ---- */

typedef struct opt_values {
  const char *token, *base_url, *user_agent, *ca_file, *proxy;
  atl_options o;
} opt_values;

static double opt_number(lua_State *L, const char *name, double min, double max) {
  double v;
  if (lua_type(L, -1) != LUA_TNUMBER)
    luaL_error(L, "atladmin.new: option '%s' must be a number, got %s", name, luaL_typename(L, -1));
  v = (double)lua_tonumber(L, -1);
  if (!(v >= min && v <= max)) {
    /* lua_pushfstring's %f prints 86400.0 on 5.3+ and 86400 on 5.1: same text everywhere */
    char lo[32], hi[32];
    snprintf(lo, sizeof lo, "%g", min);
    snprintf(hi, sizeof hi, "%g", max);
    luaL_error(L, "atladmin.new: option '%s' must be between %s and %s", name, lo, hi);
  }
  return v;
}

static const char *opt_string(lua_State *L, const char *name) {
  size_t len;
  const char *s;
  if (lua_type(L, -1) != LUA_TSTRING)
    luaL_error(L, "atladmin.new: option '%s' must be a string, got %s", name, luaL_typename(L, -1));
  s = lua_tolstring(L, -1, &len);
  /* C would silently stop at the NUL: a key, URL or path must be used whole or not at all */
  if (strlen(s) != len) luaL_error(L, "atladmin.new: option '%s' contains a NUL byte", name);
  return s;
}

static void read_option(lua_State *L, const char *k, opt_values *v) {
  if (strcmp(k, "token") == 0) v->token = opt_string(L, k);
  else if (strcmp(k, "base_url") == 0) v->base_url = opt_string(L, k);
  else if (strcmp(k, "user_agent") == 0) v->user_agent = opt_string(L, k);
  else if (strcmp(k, "ca_file") == 0) v->ca_file = opt_string(L, k);
  else if (strcmp(k, "proxy") == 0) v->proxy = opt_string(L, k);
  else if (strcmp(k, "timeout") == 0) v->o.timeout = opt_number(L, k, 0.001, 86400);
  else if (strcmp(k, "connect_timeout") == 0) v->o.connect_timeout = opt_number(L, k, 0.001, 86400);
  else if (strcmp(k, "retries") == 0) {
    double r = opt_number(L, k, 0, 100);
    if (r != (double)(int)r) luaL_error(L, "atladmin.new: option 'retries' must be a whole number");
    v->o.retries = (int)r;
  }
  else if (strcmp(k, "backoff_base") == 0) v->o.backoff_base = opt_number(L, k, 0, 3600);
  else if (strcmp(k, "backoff_max") == 0) v->o.backoff_max = opt_number(L, k, 0, 3600);
  else if (strcmp(k, "max_retry_wait") == 0) v->o.max_retry_wait = opt_number(L, k, 0, 86400);
  else if (strcmp(k, "stall_timeout") == 0) v->o.stall_timeout = opt_number(L, k, 0.001, 86400);
  else if (strcmp(k, "max_body") == 0) v->o.max_body = (size_t)opt_number(L, k, 1024, 1024.0 * 1024 * 1024);
  else luaL_error(L, "atladmin.new: unknown option '%s'", k);
}

static void read_options(lua_State *L, int idx, opt_values *v) {
  memset(v, 0, sizeof *v);
  v->base_url = "https://api.atlassian.com";
  v->o.timeout = 30;
  v->o.connect_timeout = 10;
  v->o.retries = 4;
  v->o.backoff_base = 5;
  v->o.backoff_max = 30;
  v->o.max_retry_wait = 60;
  v->o.stall_timeout = 20;
  v->o.max_body = 8u * 1024 * 1024;
  if (lua_isnoneornil(L, idx)) return;
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING) luaL_error(L, "atladmin.new: option names must be strings");
    read_option(L, lua_tostring(L, -2), v);
    lua_pop(L, 1);
  }
}

static void check_token(lua_State *L, const char *t) {
  const char *p;
  if (!t || !*t)
    luaL_error(L, "atladmin.new: no admin key: pass token= or set ATLASSIAN_ADMIN_TOKEN");
  for (p = t; *p; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f)
      luaL_error(L, "atladmin.new: option 'token' contains a control character (CR, LF, ...)");
}

int atl_client_new(lua_State *L) {
  opt_values v;
  char norm[BASE_URL_MAX], ua[128];
  const char *problem;
  atl_client *c;
  const curl_version_info_data *cv;
  lua_settop(L, 1);
  read_options(L, 1, &v);
  if (!v.token) v.token = getenv("ATLASSIAN_ADMIN_TOKEN");
  check_token(L, v.token);
  if (v.user_agent) {
    const char *p;
    for (p = v.user_agent; *p; p++)
      if ((unsigned char)*p < 0x20) luaL_error(L, "atladmin.new: option 'user_agent' contains a control character");
  }
  problem = atl_check_base_url(v.base_url, norm, sizeof norm);
  if (problem) luaL_error(L, "atladmin.new: option 'base_url' %s", problem);

  c = atl_newuserdata(L, sizeof *c);
  memset(c, 0, sizeof *c);
  c->closed = 1; /* until everything is in place; __gc frees whatever was acquired */
  luaL_getmetatable(L, ATL_CLIENT_MT);
  lua_setmetatable(L, -2);
  c->opt = v.o;
  c->base_url = dup_or_raise(L, norm);
  c->token = dup_or_raise(L, v.token);
  c->token_len = strlen(v.token);
  if (v.user_agent) {
    c->user_agent = dup_or_raise(L, v.user_agent);
  } else {
    cv = curl_version_info(CURLVERSION_NOW);
    snprintf(ua, sizeof ua, "atladmin/%s libcurl/%s", ATLADMIN_VERSION, cv->version);
    c->user_agent = dup_or_raise(L, ua);
  }
  problem = atl_transport_init(c, v.ca_file, v.proxy);
  if (problem) {
    client_release(c);
    luaL_error(L, "atladmin.new: %s", problem);
  }
  c->closed = 0;
  return 1;
}

/* ---- calls ---- */

/* Checks the ids in arguments 2.. (named by names) and pushes the request URL. */
static atl_client *prepare(lua_State *L, const atl_op *op, const char *const *names, const char *query) {
  atl_client *c = check_client(L, op->name);
  const char *segs[4];
  size_t lens[4];
  int i;
  for (i = 0; i < op->nsegs; i++) atl_check_id(L, i + 2, names[i], &segs[i], &lens[i]);
  atl_push_url(L, c->base_url, op, segs, lens, query);
  return c;
}

/* Sends the request whose URL is on top of the stack and pushes the call's results. */
static int send_call(lua_State *L, atl_client *c, const atl_op *op, const char *body, size_t body_len) {
  atl_reply r;
  atl_transport_perform(c, op, lua_tostring(L, -1), body, body_len, &r);
  return atl_push_reply(L, &r);
}

static const char *const account_arg[] = {"account_id"};
static const char *const org_arg[] = {"org_id"};

static int client_tokens(lua_State *L) {
  atl_client *c = prepare(L, &atl_op_tokens, account_arg, NULL);
  return send_call(L, c, &atl_op_tokens, NULL, 0);
}

static int client_revoke(lua_State *L) {
  static const char *const names[] = {"account_id", "token_id"};
  atl_client *c = prepare(L, &atl_op_revoke, names, NULL);
  return send_call(L, c, &atl_op_revoke, NULL, 0);
}

/* Pushes {name = <argument idx>} and its encoding (a query string or JSON text); when the
 * argument is nil, pushes nil and "" instead. */
static void push_wrapped(lua_State *L, int idx, const char *name, void (*encode)(lua_State *, int, const char *)) {
  if (lua_isnil(L, idx)) {
    lua_pushnil(L);
    lua_pushliteral(L, "");
    return;
  }
  lua_createtable(L, 0, 1);
  lua_pushvalue(L, idx);
  lua_setfield(L, -2, name);
  encode(L, -1, name);
}

/* permissions(account_id [, {"apiToken.read", ...}]) */
static int client_permissions(lua_State *L) {
  atl_client *c;
  int i, n;
  lua_settop(L, 3);
  if (!lua_isnil(L, 3)) {
    luaL_argcheck(L, lua_istable(L, 3), 3, "privileges: expected a list of privilege names");
    n = (int)atl_rawlen(L, 3);
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, 3, i);
      if (lua_type(L, -1) != LUA_TSTRING || atl_rawlen(L, -1) == 0)
        luaL_argerror(L, 3, lua_pushfstring(L, "privileges[%d] must be a non-empty string", i));
      lua_pop(L, 1);
    }
  }
  push_wrapped(L, 3, "privileges", atl_push_query);
  c = prepare(L, &atl_op_permissions, account_arg, lua_tostring(L, -1));
  return send_call(L, c, &atl_op_permissions, NULL, 0);
}

static int client_profile(lua_State *L) {
  atl_client *c = prepare(L, &atl_op_profile, account_arg, NULL);
  return send_call(L, c, &atl_op_profile, NULL, 0);
}

/* update_profile(account_id, fields): fields are checked and encoded before anything is sent. */
static int client_update_profile(lua_State *L) {
  atl_client *c;
  size_t len;
  const char *body;
  lua_settop(L, 3);
  check_client(L, "update_profile");
  luaL_argcheck(L, lua_istable(L, 3), 3, "fields: expected a table");
  atl_push_json_text(L, 3, "fields");
  c = prepare(L, &atl_op_update_profile, account_arg, NULL);
  body = lua_tolstring(L, -2, &len);
  return send_call(L, c, &atl_op_update_profile, body, len);
}

/* disable(account_id [, message]) */
static int client_disable(lua_State *L) {
  atl_client *c;
  size_t len = 0;
  const char *body = "";
  lua_settop(L, 3);
  check_client(L, "disable");
  luaL_argcheck(L, lua_isnil(L, 3) || lua_type(L, 3) == LUA_TSTRING, 3, "message: expected a string");
  push_wrapped(L, 3, "message", atl_push_json_text);
  c = prepare(L, &atl_op_disable, account_arg, NULL);
  body = lua_tolstring(L, -2, &len);
  return send_call(L, c, &atl_op_disable, body, len);
}

static int client_enable(lua_State *L) {
  atl_client *c = prepare(L, &atl_op_enable, account_arg, NULL);
  return send_call(L, c, &atl_op_enable, "", 0);
}

/* One page of an Organizations listing; query carries the cursor and filters. */
static int page(lua_State *L, const atl_op *op) {
  atl_client *c;
  lua_settop(L, 3);
  check_client(L, op->name);
  atl_push_query(L, 3, "query");
  c = prepare(L, op, org_arg, lua_tostring(L, -1));
  return send_call(L, c, op, NULL, 0);
}

static int client_org_users_page(lua_State *L) { return page(L, &atl_op_org_users); }
static int client_org_tokens_page(lua_State *L) { return page(L, &atl_op_org_tokens); }

static int client_base_url(lua_State *L) {
  atl_client *c = check_client(L, "base_url");
  lua_pushstring(L, c->base_url);
  return 1;
}

void atl_register_client(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"tokens", client_tokens},
      {"revoke", client_revoke},
      {"permissions", client_permissions},
      {"profile", client_profile},
      {"update_profile", client_update_profile},
      {"disable", client_disable},
      {"enable", client_enable},
      {"org_users_page", client_org_users_page},
      {"org_tokens_page", client_org_tokens_page},
      {"close", client_close},
      {"base_url", client_base_url},
      {NULL, NULL}};
  static const luaL_Reg meta[] = {
      {"__gc", client_gc},
      {"__close", client_gc},
      {"__tostring", client_tostring},
      {NULL, NULL}};
  atl_register_type(L, ATL_CLIENT_MT, meta, methods);
}
