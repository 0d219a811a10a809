/* protocol.c: the request building, retry rule and reply decoding of the core, without any I/O,
 * for Lua transports that do their own networking (atladmin.resty on nginx's cosockets):
 *   core.request(op, base_url, ids..., [extra]) -> method, url, headers, body|nil
 *   core.retry_wait(options, attempt, reply)    -> seconds to wait, or nil (final reply)
 *   core.reply(op, reply)                       -> the same returns as the client call */
#include <math.h>
#include <string.h>
#include <time.h>
#include "internal.h"

static const atl_op *check_op(lua_State *L, int arg) {
  const char *name = luaL_checkstring(L, arg);
  const atl_op *op = atl_op_by_name(name);
  if (!op) luaL_argerror(L, arg, lua_pushfstring(L, "unknown operation '%s'", name));
  return op;
}

static void set_header(lua_State *L, const char *k, const char *v) {
  lua_pushstring(L, v);
  lua_setfield(L, -2, k);
}

/* request(op, base_url, id1 [, id2] [, extra]): extra is the privileges list (permissions),
 * the fields table (update_profile), the message (disable) or the query table (pages). */
static int proto_request(lua_State *L) {
  static const char *const names[] = {"account_id", "token_id"};
  const atl_op *op = check_op(L, 1);
  const char *base = luaL_checkstring(L, 2), *problem, *segs[2], *query = NULL;
  char norm[2048];
  size_t lens[2];
  int i, extra, has_body = 0, nargs = lua_gettop(L);
  problem = atl_check_base_url(base, norm, sizeof norm);
  if (problem) luaL_argerror(L, 2, lua_pushfstring(L, "base_url %s", problem));
  for (i = 0; i < op->nsegs; i++)
    atl_check_id(L, i + 3, op->result == ATL_RES_PAGE ? "org_id" : names[i], &segs[i], &lens[i]);
  extra = op->nsegs + 3;
  if (nargs < extra) lua_settop(L, extra);
  lua_settop(L, extra);
  if (op == &atl_op_permissions && !lua_isnil(L, extra)) {
    luaL_argcheck(L, lua_istable(L, extra), extra, "privileges: expected a list of privilege names");
    lua_createtable(L, 0, 1);
    lua_pushvalue(L, extra);
    lua_setfield(L, -2, "privileges");
    atl_push_query(L, -1, "privileges");
    query = lua_tostring(L, -1);
  } else if (op->result == ATL_RES_PAGE) {
    atl_push_query(L, extra, "query");
    query = lua_tostring(L, -1);
  } else if (op == &atl_op_update_profile) {
    luaL_argcheck(L, lua_istable(L, extra), extra, "fields: expected a table");
    atl_push_json_text(L, extra, "fields");
    has_body = 1;
  } else if (op == &atl_op_disable && !lua_isnil(L, extra)) {
    luaL_argcheck(L, lua_type(L, extra) == LUA_TSTRING, extra, "message: expected a string");
    lua_createtable(L, 0, 1);
    lua_pushvalue(L, extra);
    lua_setfield(L, -2, "message");
    atl_push_json_text(L, -1, "message");
    has_body = 1;
  } else if (op == &atl_op_disable || op == &atl_op_enable) {
    lua_pushliteral(L, "");
    has_body = 1;
  }
  /* stack: ... [scratch] [query or body] */
  lua_pushstring(L, op->method);
  atl_push_url(L, norm, op, segs, lens, query);
  lua_createtable(L, 0, 2);
  set_header(L, "Accept", "application/json");
  if (has_body && atl_rawlen(L, -4) > 0) set_header(L, "Content-Type", "application/json");
  if (has_body) lua_pushvalue(L, -4);
  else lua_pushnil(L);
  return 4;
}

static double num_field(lua_State *L, int t, const char *k, double dflt) {
  double v;
  lua_getfield(L, t, k);
  v = lua_isnumber(L, -1) ? (double)lua_tonumber(L, -1) : dflt;
  lua_pop(L, 1);
  return v;
}

/* Leaves t[k] on the stack so that the string stays referenced; NULL unless a string. */
static const char *str_field(lua_State *L, int t, const char *k, size_t *len) {
  lua_getfield(L, t, k);
  if (lua_type(L, -1) != LUA_TSTRING) return NULL;
  return lua_tolstring(L, -1, len);
}

/* What a transport says went wrong, as the libcurl code the retry rule knows. */
static int transport_code(const char *kind) {
  if (!kind) return CURLE_RECV_ERROR;
  if (strcmp(kind, "connect") == 0) return CURLE_COULDNT_CONNECT;
  if (strcmp(kind, "timeout") == 0) return CURLE_OPERATION_TIMEDOUT;
  if (strcmp(kind, "send") == 0) return CURLE_SEND_ERROR;
  if (strcmp(kind, "tls") == 0) return CURLE_SSL_CONNECT_ERROR;
  if (strcmp(kind, "too_large") == 0) return CURLE_FILESIZE_EXCEEDED;
  return CURLE_RECV_ERROR;
}

/* Fills r from a reply table: {url, status, body, content_type, retry_after, location,
 * rate_limit = {limit, remaining, reset}, transport = kind, error = message, attempts, elapsed,
 * waited, maybe_delivered, secret}. Strings stay on the Lua stack while r is used. */
static void read_reply(lua_State *L, int t, const atl_op *op, atl_reply *r) {
  const char *err;
  memset(r, 0, sizeof *r);
  luaL_checktype(L, t, LUA_TTABLE);
  r->op = op;
  r->method = op->method;
  r->url = str_field(L, t, "url", NULL);
  r->status = (long)num_field(L, t, "status", 0);
  r->body = str_field(L, t, "body", &r->body_len);
  if (!r->body) r->body = "";
  r->content_type = str_field(L, t, "content_type", NULL);
  r->retry_after = num_field(L, t, "retry_after", -1);
  r->location = str_field(L, t, "location", NULL);
  r->attempts = (int)num_field(L, t, "attempts", 1);
  r->elapsed = num_field(L, t, "elapsed", 0);
  r->waited = num_field(L, t, "waited", 0);
  lua_getfield(L, t, "maybe_delivered");
  r->maybe_delivered = lua_toboolean(L, -1);
  r->secret = str_field(L, t, "secret", &r->secret_len);
  err = str_field(L, t, "error", NULL);
  if (err) {
    r->transport_failed = 1;
    r->errmsg = err;
    r->curl_code = transport_code(str_field(L, t, "transport", NULL));
    r->body_overflow = r->curl_code == CURLE_FILESIZE_EXCEEDED;
    r->status = 0;
  }
  lua_getfield(L, t, "rate_limit");
  if (lua_istable(L, -1)) {
    int rl = lua_gettop(L);
    r->have_rate_limit = 1;
    r->rl_limit = (long long)num_field(L, rl, "limit", 0);
    r->rl_remaining = (long long)num_field(L, rl, "remaining", -1);
    r->rl_reset = str_field(L, rl, "reset", NULL);
  }
}

static int proto_reply(lua_State *L) {
  const atl_op *op = check_op(L, 1);
  atl_reply r;
  read_reply(L, 2, op, &r);
  return atl_push_reply(L, &r);
}

static unsigned long long proto_rng;

/* retry_wait(options, attempt, reply) -> seconds, maybe_delivered | nil */
static int proto_retry_wait(lua_State *L) {
  atl_options o;
  atl_reply r;
  double wait;
  int attempt = (int)luaL_checkinteger(L, 2);
  luaL_checktype(L, 1, LUA_TTABLE);
  memset(&o, 0, sizeof o);
  o.retries = (int)num_field(L, 1, "retries", 4);
  o.backoff_base = num_field(L, 1, "backoff_base", 5);
  o.backoff_max = num_field(L, 1, "backoff_max", 30);
  o.max_retry_wait = num_field(L, 1, "max_retry_wait", 60);
  o.timeout = o.connect_timeout = 0;
  o.max_body = 0;
  read_reply(L, 3, &atl_op_tokens, &r);
  if (!proto_rng) proto_rng = (unsigned long long)time(NULL) * 0x9E3779B97F4A7C15ULL;
  if (!atl_retry_wait(&o, &r, attempt, &proto_rng, &wait)) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushnumber(L, (lua_Number)wait);
  lua_pushboolean(L, r.maybe_delivered);
  return 2;
}

void atl_register_protocol(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"request", proto_request},
      {"reply", proto_reply},
      {"retry_wait", proto_retry_wait},
      {NULL, NULL}};
  lua_createtable(L, 0, 3);
  atl_setfuncs(L, funcs, 0);
  lua_setfield(L, -2, "protocol");
}
