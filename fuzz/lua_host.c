/* lua_host.c: a minimal `lua SCRIPT ARGS...` (or `lua -e CODE`) linked with the sanitizers, so
 * that an ASan/UBSan build of the module runs without LD_PRELOAD (children the specs start,
 * such as sh or openssl, stay uninstrumented). At the end it collects garbage, so every __gc
 * runs, then exits without lua_close: LeakSanitizer then sees the module still loaded and
 * anything malloc'ed and lost along the way as a leak, with symbolized stacks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

static int report(lua_State *L, int st) {
  if (st != LUA_OK) {
    fprintf(stderr, "lua_host: %s\n", lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "error");
    return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  lua_State *L = luaL_newstate();
  int i, st, first = 1;
  if (!L) return 1;
  luaL_openlibs(L);
  if (argc > 2 && strcmp(argv[1], "-e") == 0) {
    st = luaL_dostring(L, argv[2]);
    return report(L, st);
  }
  if (argc < 2) {
    fprintf(stderr, "usage: lua_host SCRIPT [ARGS...] | -e CODE\n");
    return 2;
  }
  lua_createtable(L, argc, 1);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - first);
  }
  lua_setglobal(L, "arg");
  st = luaL_loadfile(L, argv[1]);
  if (st == LUA_OK) {
    for (i = 2; i < argc; i++) lua_pushstring(L, argv[i]);
    st = lua_pcall(L, argc - 2, 0, 0);
  }
  if (report(L, st)) return 1;
  lua_gc(L, LUA_GCCOLLECT, 0);
  lua_gc(L, LUA_GCCOLLECT, 0);
  fflush(NULL);
  _exit(0);
}
