/* encode.c: Lua values -> JSON text for request bodies (cJSON builds and prints it). Arrays are
 * decided explicitly: a table marked with atladmin.array() is always an array (even empty); an
 * unmarked table is an array when its keys are exactly 1..n (n > 0), an object when all keys are
 * strings (the empty table is {}), and anything else raises before a request is sent. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "internal.h"

#define ATL_ARRAY_MT "atladmin.array"
#define PATH_MAX_LEN 200

int atl_is_array_marked(lua_State *L, int idx) {
  int marked;
  if (!lua_getmetatable(L, idx)) return 0;
  luaL_getmetatable(L, ATL_ARRAY_MT);
  marked = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return marked;
}

static void release_tree(void *p) { cJSON_Delete(p); }
static void release_text(void *p) { cJSON_free(p); }

static void nomem(lua_State *L) { luaL_error(L, "not enough memory"); }

/* 1 array, 0 object; raises on mixed or sparse keys. */
static int table_is_array(lua_State *L, int idx, const char *path) {
  size_t n = atl_rawlen(L, idx), count = 0;
  int strings = 0, others = 0;
  if (atl_is_array_marked(L, idx)) return 1;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    count++;
    if (lua_type(L, -1) == LUA_TSTRING) strings++;
    else others++;
  }
  if (strings && others) luaL_error(L, "%s: a table mixes string and other keys", path);
  if (others && count != n) luaL_error(L, "%s: a table with non-string keys must be a sequence 1..n", path);
  return others > 0;
}

static void build(lua_State *L, int idx, cJSON *parent, const char *key, int depth, const char *path);

/* Attaches item to parent at once, so the tree owned by the box always holds it. */
static void attach(lua_State *L, cJSON *parent, const char *key, cJSON *item) {
  if (!item) nomem(L);
  if (key ? !cJSON_AddItemToObject(parent, key, item) : !cJSON_AddItemToArray(parent, item)) {
    cJSON_Delete(item);
    nomem(L);
  }
}

static void build_table(lua_State *L, int idx, cJSON *parent, const char *key, int depth, const char *path) {
  char sub[PATH_MAX_LEN];
  cJSON *node;
  size_t i, n;
  if (depth > ATL_MAX_DEPTH) luaL_error(L, "%s: nested too deeply (or a cycle)", path);
  if (!lua_checkstack(L, 6)) luaL_error(L, "%s: Lua stack exhausted", path);
  if (table_is_array(L, idx, path)) {
    node = cJSON_CreateArray();
    attach(L, parent, key, node);
    n = atl_rawlen(L, idx);
    for (i = 1; i <= n; i++) {
      snprintf(sub, sizeof sub, "%s[%u]", path, (unsigned)i);
      lua_rawgeti(L, idx, (int)i);
      build(L, lua_gettop(L), node, NULL, depth + 1, sub);
      lua_pop(L, 1);
    }
  } else {
    node = cJSON_CreateObject();
    attach(L, parent, key, node);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      const char *k = lua_tostring(L, -2); /* string keys only: no conversion happens */
      snprintf(sub, sizeof sub, "%s.%s", path, k);
      build(L, lua_gettop(L), node, k, depth + 1, sub);
      lua_pop(L, 1);
    }
  }
}

static void build(lua_State *L, int idx, cJSON *parent, const char *key, int depth, const char *path) {
  switch (lua_type(L, idx)) {
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    if (strlen(s) != len) luaL_error(L, "%s: strings must not contain NUL bytes", path);
    attach(L, parent, key, cJSON_CreateString(s));
    break;
  }
  case LUA_TNUMBER: {
    double d = (double)lua_tonumber(L, idx);
    if (isnan(d) || isinf(d)) luaL_error(L, "%s: NaN and infinity have no JSON form", path);
    if (atl_isinteger(L, idx) && fabs(d) > 9007199254740992.0)
      luaL_error(L, "%s: integer too large to send exactly as JSON", path);
    attach(L, parent, key, cJSON_CreateNumber(d));
    break;
  }
  case LUA_TBOOLEAN:
    attach(L, parent, key, cJSON_CreateBool(lua_toboolean(L, idx)));
    break;
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, idx) == NULL) {
      attach(L, parent, key, cJSON_CreateNull());
      break;
    }
    /* fall through */
  default:
    if (lua_type(L, idx) == LUA_TTABLE) {
      build_table(L, idx, parent, key, depth, path);
      break;
    }
    luaL_error(L, "%s: a %s cannot be sent as JSON", path, luaL_typename(L, idx));
  }
}

/* Pushes the JSON text of the value at idx (a table); `what` names it in errors. */
void atl_push_json_text(lua_State *L, int idx, const char *what) {
  void **tree_box, **text_box;
  cJSON *holder;
  char *text;
  idx = atl_absindex(L, idx);
  if (!lua_istable(L, idx)) luaL_error(L, "%s: expected a table, got %s", what, luaL_typename(L, idx));
  tree_box = atl_push_box(L, release_tree);
  holder = cJSON_CreateArray(); /* the value becomes its only child */
  if (!holder) nomem(L);
  *tree_box = holder;
  build(L, idx, holder, NULL, 0, what);
  text_box = atl_push_box(L, release_text);
  text = cJSON_PrintUnformatted(holder->child);
  if (!text) nomem(L);
  *text_box = text;
  lua_pushstring(L, text);
  cJSON_free(text);
  *text_box = NULL;
  cJSON_Delete(holder);
  *tree_box = NULL;
  lua_replace(L, -3);
  lua_pop(L, 1);
}

/* atladmin.array(t): marks t (default a new table) to be sent as a JSON array; returns it. */
int atl_mark_array(lua_State *L) {
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  luaL_newmetatable(L, ATL_ARRAY_MT);
  lua_setmetatable(L, 1);
  return 1;
}
