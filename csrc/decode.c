/* decode.c: JSON text -> Lua values (cJSON), and a finished reply -> the Lua results of a call:
 * (value, res), (res) or (nil, err). */
#include <math.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "internal.h"

/* A userdata that owns one malloc'ed thing (a cJSON tree, a printed string) and frees it in
 * __gc, so an error raised while it is in use cannot leak it. */
typedef struct atl_box {
  void *p;
  void (*release)(void *);
} atl_box;

static int box_gc(lua_State *L) {
  atl_box *box = lua_touserdata(L, 1);
  if (box && box->p) {
    box->release(box->p);
    box->p = NULL;
  }
  return 0;
}

void **atl_push_box(lua_State *L, void (*release)(void *)) {
  atl_box *box = atl_newuserdata(L, sizeof *box);
  box->p = NULL;
  box->release = release;
  if (luaL_newmetatable(L, ATL_BOX_MT)) {
    lua_pushcfunction(L, box_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return &box->p;
}

static void release_tree(void *p) { cJSON_Delete(p); }

/* JSON null inside arrays: a sentinel that keeps positions (members that are null are dropped). */
void atl_push_null(lua_State *L) { lua_pushlightuserdata(L, NULL); }

static void push_number(lua_State *L, double d) {
  if (d == floor(d) && fabs(d) <= 9007199254740992.0)
    atl_pushwhole(L, (long long)d);
  else
    lua_pushnumber(L, (lua_Number)d);
}

/* Pushes item as a Lua value; returns 0 (pushing nothing) when nesting is deeper than allowed. */
int atl_push_json(lua_State *L, const void *item_, int depth) {
  const cJSON *item = item_, *ch;
  int i;
  if (depth > ATL_MAX_DEPTH) return 0;
  if (!lua_checkstack(L, 4)) luaL_error(L, "atladmin: Lua stack exhausted while decoding JSON");
  if (cJSON_IsNull(item)) {
    atl_push_null(L);
  } else if (cJSON_IsBool(item)) {
    lua_pushboolean(L, cJSON_IsTrue(item));
  } else if (cJSON_IsNumber(item)) {
    push_number(L, item->valuedouble);
  } else if (cJSON_IsString(item)) {
    lua_pushstring(L, item->valuestring);
  } else if (cJSON_IsArray(item)) {
    lua_createtable(L, cJSON_GetArraySize(item), 0);
    for (i = 1, ch = item->child; ch; ch = ch->next, i++) {
      if (!atl_push_json(L, ch, depth + 1)) {
        lua_pop(L, 1);
        return 0;
      }
      lua_rawseti(L, -2, i);
    }
  } else if (cJSON_IsObject(item)) {
    lua_createtable(L, 0, cJSON_GetArraySize(item));
    for (ch = item->child; ch; ch = ch->next) {
      if (cJSON_IsNull(ch) || !ch->string) continue;
      lua_pushstring(L, ch->string);
      if (!atl_push_json(L, ch, depth + 1)) {
        lua_pop(L, 2);
        return 0;
      }
      lua_rawset(L, -3);
    }
  } else {
    return 0;
  }
  return 1;
}

static void set_num(lua_State *L, const char *k, double v) {
  lua_pushnumber(L, (lua_Number)v);
  lua_setfield(L, -2, k);
}

static void set_int(lua_State *L, const char *k, long long v) {
  atl_pushwhole(L, v);
  lua_setfield(L, -2, k);
}

static void set_str(lua_State *L, const char *k, const char *v) {
  if (!v) return;
  lua_pushstring(L, v);
  lua_setfield(L, -2, k);
}

/* The `res` table every successful call returns. */
static void push_res(lua_State *L, const atl_reply *r) {
  lua_createtable(L, 0, 10);
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, "ok");
  set_int(L, "status", r->status);
  set_str(L, "method", r->method);
  set_str(L, "endpoint", r->url);
  set_int(L, "attempts", r->attempts);
  set_num(L, "elapsed", r->elapsed);
  if (r->waited > 0) set_num(L, "waited", r->waited);
  if (r->have_rate_limit) {
    lua_createtable(L, 0, 3);
    set_int(L, "limit", r->rl_limit);
    if (r->rl_remaining >= 0) set_int(L, "remaining", r->rl_remaining);
    set_str(L, "reset", r->rl_reset);
    lua_setfield(L, -2, "rate_limit");
  }
}

static int fail(lua_State *L, const atl_reply *r, const char *kind, const char *message) {
  lua_pushnil(L);
  atl_push_error(L, r, kind, message);
  return 2;
}

/* Checks one token object; returns NULL when its shape is right, else what is wrong. */
static const char *token_problem(const cJSON *t) {
  static const char *const required[] = {"label", "createdAt", NULL};
  static const char *const optional[] = {"lastAccess", "expiry", NULL};
  const cJSON *f;
  int i;
  if (!cJSON_IsObject(t)) return "a token is not a JSON object";
  f = cJSON_GetObjectItemCaseSensitive(t, "id");
  if (!cJSON_IsString(f) || f->valuestring[0] == '\0') return "a token has no string 'id'";
  for (i = 0; required[i]; i++) {
    f = cJSON_GetObjectItemCaseSensitive(t, required[i]);
    if (f && !cJSON_IsNull(f) && !cJSON_IsString(f)) return "a token field 'label' or 'createdAt' is not a string";
  }
  for (i = 0; optional[i]; i++) {
    f = cJSON_GetObjectItemCaseSensitive(t, optional[i]);
    if (f && !cJSON_IsNull(f) && !cJSON_IsString(f)) return "a token field 'lastAccess' or 'expiry' is not a string";
  }
  return NULL;
}

/* Parses JSON text that must be one value and nothing else but white space after it. */
static cJSON *parse_whole(const char *text, size_t len) {
  const char *end = NULL;
  cJSON *tree = cJSON_ParseWithLengthOpts(text, len, &end, 0);
  if (!tree) return NULL;
  while (end < text + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')) end++;
  if (end != text + len) {
    cJSON_Delete(tree);
    return NULL;
  }
  return tree;
}

/* Parses the body into a boxed tree (box left on the stack); NULL with *why set on failure. */
static cJSON *parse_boxed(lua_State *L, const atl_reply *r, const char **why) {
  void **box = atl_push_box(L, release_tree);
  cJSON *tree;
  if (r->body_len == 0) {
    *why = "empty response body where JSON was expected";
    return NULL;
  }
  tree = parse_whole(r->body, r->body_len);
  if (!tree) {
    *why = "response body is not valid JSON (or nests too deeply)";
    return NULL;
  }
  *box = tree;
  return tree;
}

static void box_release(lua_State *L, int idx) {
  atl_box *box = lua_touserdata(L, idx);
  if (box->p) box->release(box->p);
  box->p = NULL;
  lua_remove(L, idx);
}

/* Checks the decoded token at the top of the stack, like token_problem does on a cJSON tree. */
static const char *lua_token_problem(lua_State *L) {
  static const char *const fields[] = {"label", "createdAt", "lastAccess", "expiry", NULL};
  const char *problem = NULL;
  int i;
  lua_getfield(L, -1, "id");
  if (lua_type(L, -1) != LUA_TSTRING || atl_rawlen(L, -1) == 0) problem = "a token has no string 'id'";
  lua_pop(L, 1);
  for (i = 0; !problem && fields[i]; i++) {
    int t;
    lua_getfield(L, -1, fields[i]);
    t = lua_type(L, -1);
    if (t != LUA_TNIL && t != LUA_TSTRING)
      problem = i < 2 ? "a token field 'label' or 'createdAt' is not a string"
                      : "a token field 'lastAccess' or 'expiry' is not a string";
    lua_pop(L, 1);
  }
  return problem;
}

/* Token lists can be long: decoded straight to Lua (jsonlua.c), then checked. */
static int push_tokens(lua_State *L, const atl_reply *r) {
  const char *why = NULL;
  int i, n;
  if (r->body_len == 0) return fail(L, r, "decode", "empty response body where JSON was expected");
  if (!atl_json_to_lua(L, r->body, r->body_len, 1, &why)) return fail(L, r, "decode", why);
  n = (int)atl_rawlen(L, -1);
  for (i = 1; i <= n && !why; i++) {
    lua_rawgeti(L, -1, i);
    why = lua_token_problem(L);
    lua_pop(L, 1);
  }
  if (why) {
    lua_pop(L, 1);
    return fail(L, r, "decode", why);
  }
  push_res(L, r);
  return 2;
}

static int push_success(lua_State *L, const atl_reply *r) {
  const char *why = NULL;
  const cJSON *tree, *t;
  int boxidx;
  if (r->op->result == ATL_RES_NONE) {
    push_res(L, r);
    return 1;
  }
  if (r->op->result == ATL_RES_TOKENS) return push_tokens(L, r);
  tree = parse_boxed(L, r, &why);
  boxidx = lua_gettop(L);
  if (tree && r->op->result == ATL_RES_TOKENS) {
    if (!cJSON_IsArray(tree)) why = "expected a JSON array of tokens";
    for (t = tree->child; !why && t; t = t->next) why = token_problem(t);
  } else if (tree && r->op->result == ATL_RES_ACCOUNT) {
    /* {"account": {...}}: the account object is the result */
    t = cJSON_GetObjectItemCaseSensitive(tree, "account");
    if (!cJSON_IsObject(t)) why = "expected a JSON object with an 'account' object";
    else tree = t;
  } else if (tree && r->op->result == ATL_RES_PAGE) {
    t = cJSON_GetObjectItemCaseSensitive(tree, "data");
    if (!cJSON_IsObject(tree) || !cJSON_IsArray(t)) why = "expected a JSON page object with a 'data' array";
  } else if (tree && !cJSON_IsObject(tree)) {
    why = "expected a JSON object";
  }
  if (!why && !atl_push_json(L, tree, 0)) why = "response JSON nests too deeply";
  if (why) {
    lua_settop(L, boxidx);
    box_release(L, boxidx);
    return fail(L, r, "decode", why);
  }
  box_release(L, boxidx);
  push_res(L, r);
  return 2;
}

/* Turns a finished reply into the call's Lua results. */
int atl_push_reply(lua_State *L, const atl_reply *r) {
  char key[128], msg[512];
  if (r->transport_failed) {
    if (r->body_overflow) return fail(L, r, "transport", "response body is larger than max_body");
    return fail(L, r, "transport", r->errmsg ? r->errmsg : "transfer failed");
  }
  if (r->status >= 200 && r->status < 300) return push_success(L, r);
  if (r->status == 404 && r->maybe_delivered && r->op->result == ATL_RES_NONE &&
      strcmp(r->method, "DELETE") == 0) {
    atl_error_details(r->body, r->body_len, key, sizeof key, msg, sizeof msg);
    if (strcmp(key, "notFound") == 0) {
      /* An earlier attempt may have done the work: the token is gone either way. */
      push_res(L, r);
      lua_pushboolean(L, 1);
      lua_setfield(L, -2, "already_revoked");
      return 1;
    }
  }
  return fail(L, r, "http", NULL);
}
