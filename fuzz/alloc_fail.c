/* alloc_fail.c: runs the core's conversion and request paths with a Lua allocator that fails
 * from the Nth allocation on, for every N up to the number the paths make in all. Each run must
 * end in a Lua "not enough memory" error (or succeed once N is past the total), never a crash;
 * every byte Lua allocated must be back after lua_close, and (built with ASan) LeakSanitizer
 * checks the C side. Usage: alloc_fail [BASE_URL KEY]; with a running fake, the request path
 * talks to it (tokens, revoke, update_profile), otherwise to a closed port. `make alloc-check`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include "../csrc/internal.h"

int luaopen_atladmin_core(lua_State *L);

static long allocs, fail_at = -1, failed;
static long long live;

static void *failing_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  void *p;
  (void)ud;
  if (!ptr) osize = 0; /* Lua passes a type tag there for new blocks */
  if (nsize == 0) {
    live -= (long long)osize;
    free(ptr);
    return NULL;
  }
  if (!ptr || nsize > osize) {
    allocs++;
    if (fail_at >= 0 && allocs >= fail_at) {
      failed++;
      return NULL;
    }
  }
  p = realloc(ptr, nsize);
  if (p) live += (long long)nsize - (long long)osize;
  return p;
}

/* The conversion path: replies of every result shape and error bodies, straight into Lua. */
static int convert(lua_State *L) {
  static const char *const bodies[] = {
      "[{\"id\":\"asp_1\",\"label\":\"a\",\"createdAt\":\"2024\",\"x\":[1,2.5,true,null,{\"y\":\"z\"}]}]",
      "{\"account\":{\"account_id\":\"x\",\"name\":\"N\",\"extended_profile\":{\"a\":1}}}",
      "{\"key\":\"notFound\",\"message\":\"secret-key was not found\"}",
      "<html>502</html>"};
  const atl_op *const ops[] = {&atl_op_tokens, &atl_op_profile, &atl_op_revoke, &atl_op_tokens};
  const long statuses[] = {200, 200, 404, 502};
  int i;
  for (i = 0; i < 4; i++) {
    atl_reply r;
    memset(&r, 0, sizeof r);
    r.op = ops[i];
    r.method = r.op->method;
    r.url = "https://api.example/users/x/manage/api-tokens";
    r.status = statuses[i];
    r.body = bodies[i];
    r.body_len = strlen(bodies[i]);
    r.retry_after = -1;
    r.maybe_delivered = i == 2;
    r.secret = "secret-key";
    r.secret_len = 10;
    lua_settop(L, 0);
    atl_push_reply(L, &r);
    if (lua_isnil(L, 1)) {
      luaL_tolstring(L, 2, NULL);
    }
  }
  return 0;
}

static const char *request_code =
    "local core = ...\n"
    "local c = core.new { token = KEY, base_url = URL, retries = 1, backoff_base = 0, timeout = 5 }\n"
    "local t, err = c:tokens('557057:alloc')\n"
    "if err then local _ = tostring(err) end\n"
    "c:revoke('557057:alloc', 'asp_' .. N)\n"
    "c:update_profile('557057:alloc', { name = 'n', extended_profile = { job_title = 'x', list = core.array{1, 2} } })\n"
    "c:org_users_page('org', { cursor = 'abc', q = { 'a', 'b' } })\n"
    "c:close()\n"
    "local d = core.new { token = KEY, base_url = URL }\n"  /* dropped without close */
    "d = nil\n";

/* One whole run; returns the pcall status. */
static int run_once(const char *url, const char *key, long n, char *msg, size_t msgsz) {
  lua_State *L;
  int st;
  live = 0;
  L = lua_newstate(failing_alloc, NULL);
  if (!L) return -1;
  luaL_openlibs(L);
  lua_pushstring(L, url);
  lua_setglobal(L, "URL");
  lua_pushstring(L, key);
  lua_setglobal(L, "KEY");
  lua_pushinteger(L, n);
  lua_setglobal(L, "N");
  luaL_requiref(L, "atladmin.core", luaopen_atladmin_core, 0);
  lua_pop(L, 1);
  allocs = 0;
  fail_at = n;
  failed = 0;
  /* everything from here runs with the failing allocator */
  st = luaL_loadstring(L, "local core, convert, request = ...\n"
                          "convert()\n"
                          "request(core)\n");
  if (st == LUA_OK) {
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "loaded");
    lua_getfield(L, -1, "atladmin.core");
    lua_replace(L, -3);
    lua_pop(L, 1);
    lua_pushcfunction(L, convert);
    st = luaL_loadstring(L, request_code);
    if (st == LUA_OK) st = lua_pcall(L, 3, 0, 0);
  }
  msg[0] = '\0';
  if (st != LUA_OK) snprintf(msg, msgsz, "%s", lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?");
  fail_at = -1;
  lua_close(L);
  return st;
}

int main(int argc, char **argv) {
  const char *url = argc > 2 ? argv[1] : "http://127.0.0.1:9";
  const char *key = argc > 2 ? argv[2] : "alloc-key";
  char msg[256];
  long n, total = -1, errmem = 0, other = 0;
  int st;
  /* the whole run once without failures: how many allocations it makes */
  st = run_once(url, key, -1, msg, sizeof msg);
  if (st != LUA_OK) {
    fprintf(stderr, "alloc_fail: the run fails even without allocation failures: %s\n", msg);
    return 1;
  }
  for (n = 1;; n++) {
    st = run_once(url, key, n, msg, sizeof msg);
    if (live != 0) {
      fprintf(stderr, "alloc_fail: N=%ld: %lld bytes of Lua memory not freed by lua_close\n", n, live);
      return 1;
    }
    if (st == LUA_OK && failed == 0) {
      total = n - 1;
      break;
    }
    if (st == LUA_OK) {
      fprintf(stderr, "alloc_fail: N=%ld: an allocation failed but the run reported success\n", n);
      return 1;
    }
    if (strstr(msg, "not enough memory")) {
      errmem++;
    } else {
      other++;
      fprintf(stderr, "alloc_fail: N=%ld: error other than 'not enough memory': %s\n", n, msg);
    }
  }
  printf("alloc_fail: %ld allocations, failed at each: %ld 'not enough memory' errors, %ld others\n",
         total, errmem, other);
  return other == 0 ? 0 : 1;
}
