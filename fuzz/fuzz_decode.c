/* fuzz_decode.c: libFuzzer target over what a hostile server controls: the JSON-to-Lua
 * conversion of a reply body (for every result shape), the error-body reader, the error object
 * with its redaction, and re-encoding what was decoded. Built with the core's sources:
 * `make fuzz` (ASan + UBSan). Input: byte 0 picks the operation and the status, the rest is
 * the body. The admin key must never come out in any error field, nor in err.body read as
 * JSON (the key echoed JSON-escaped): that aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include "../csrc/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int luaopen_atladmin_core(lua_State *L);

#define SECRET "fuzz-secret-KEY"

static lua_State *L;

static const atl_op *const ops[] = {&atl_op_tokens, &atl_op_revoke, &atl_op_profile,
                                    &atl_op_permissions, &atl_op_org_users};
static const long statuses[] = {200, 201, 204, 302, 400, 401, 403, 404, 409, 429, 500, 503};

/* Aborts when any string in the table at idx (one level down too) holds the secret. */
static void check_no_secret(lua_State *S, int idx) {
  lua_pushnil(S);
  while (lua_next(S, idx)) {
    if (lua_type(S, -1) == LUA_TSTRING && strstr(lua_tostring(S, -1), SECRET)) abort();
    lua_pop(S, 1);
  }
}

/* Aborts when a string (or member name) of the JSON text s holds the secret once unescaped:
 * the key echoed as \u0066uzz-... or with \/ must be hidden in err.body too. */
static void check_json_no_secret(const cJSON *item) {
  for (; item; item = item->next) {
    if (item->string && strstr(item->string, SECRET)) abort();
    if (cJSON_IsString(item) && strstr(item->valuestring, SECRET)) abort();
    check_json_no_secret(item->child);
  }
}

static int run(lua_State *S) {
  const uint8_t *data = lua_touserdata(S, 1);
  size_t size = (size_t)lua_tointeger(S, 2);
  atl_reply r;
  char key[128], msg[512];
  int n;
  memset(&r, 0, sizeof r);
  r.op = ops[(data[0] & 0x0f) % (sizeof ops / sizeof ops[0])];
  r.method = r.op->method;
  r.url = "https://api.example/users/x/manage/api-tokens";
  r.status = statuses[(data[0] >> 4) % (sizeof statuses / sizeof statuses[0])];
  r.body = (const char *)data + 1;
  r.body_len = size - 1;
  r.attempts = 1 + (data[0] & 1);
  r.retry_after = (data[0] & 0x20) ? 3 : -1;
  r.maybe_delivered = data[0] & 0x40;
  r.body_overflow = data[0] & 0x80;
  r.location = r.status == 302 ? "https://elsewhere.example/" SECRET : NULL;
  r.secret = SECRET;
  r.secret_len = sizeof SECRET - 1;

  atl_error_details(r.body, r.body_len, key, sizeof key, msg, sizeof msg);
  n = atl_push_reply(S, &r);
  if (lua_isnil(S, -n)) {
    int err = lua_gettop(S);
    check_no_secret(S, err);
    lua_getfield(S, err, "body");
    if (lua_type(S, -1) == LUA_TSTRING) {
      size_t blen;
      const char *b = lua_tolstring(S, -1, &blen);
      cJSON *tree = cJSON_ParseWithLength(b, blen);
      check_json_no_secret(tree);
      cJSON_Delete(tree);
    }
    lua_pop(S, 1);
    luaL_tolstring(S, err, NULL);
    if (strstr(lua_tostring(S, -1), SECRET)) abort();
  } else if (n == 2 && lua_istable(S, -2)) {
    /* what came in must go out again as JSON, or raise a clear error */
    lua_pushvalue(S, -2);
    atl_push_json_text(S, lua_gettop(S), "decoded");
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static unsigned long calls;
  if (size < 1) return 0;
  if (!L) {
    L = luaL_newstate();
    luaL_openlibs(L);
    luaL_requiref(L, "atladmin.core", luaopen_atladmin_core, 0);
    lua_pop(L, 1);
  }
  lua_pushcfunction(L, run);
  lua_pushlightuserdata(L, (void *)data);
  lua_pushinteger(L, (lua_Integer)size);
  lua_pcall(L, 2, 0, 0); /* a raised error (encoding a decoded value) is an allowed outcome */
  lua_settop(L, 0);
  if (++calls % 1000 == 0) lua_gc(L, LUA_GCCOLLECT, 0);
  return 0;
}
