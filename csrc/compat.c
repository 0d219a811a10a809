/* compat.c: the Lua 5.1 versions of helpers that 5.2+ and LuaJIT 2.1 already have
 * (see compat.h, which picks one or the other under atl_ names). */
#include "compat.h"

#if LUA_VERSION_NUM < 502 && !defined(LUA_JITLIBNAME)
void atl_setfuncs_51(lua_State *L, const luaL_Reg *l, int nup) {
  int i;
  for (; l->name; l++) {
    for (i = 0; i < nup; i++) lua_pushvalue(L, -nup);
    lua_pushcclosure(L, l->func, nup);
    lua_setfield(L, -(nup + 2), l->name);
  }
  lua_pop(L, nup);
}

void *atl_testudata_51(lua_State *L, int i, const char *tname) {
  void *p = lua_touserdata(L, i);
  int same;
  if (!p || !lua_getmetatable(L, i)) return NULL;
  luaL_getmetatable(L, tname);
  same = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return same ? p : NULL;
}
#endif

/* keeps the translation unit non-empty where the block above compiles to nothing */
typedef int atl_compat_unused;
