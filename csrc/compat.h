/* compat.h: the one place that knows the differences between Lua 5.1/LuaJIT, 5.2, 5.3 and 5.4.
 * Only atl_-prefixed names are defined here, so nothing shadows a lua_/luaL_ symbol
 * that the host interpreter (LuaJIT 2.1 exports luaL_setfuncs) already provides. */
#ifndef ATLADMIN_COMPAT_H
#define ATLADMIN_COMPAT_H

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h> /* LuaJIT names itself here (LUA_JITLIBNAME) */

#if LUA_VERSION_NUM >= 504
#define atl_newuserdata(L, sz) lua_newuserdatauv((L), (sz), 1)
#else
#define atl_newuserdata(L, sz) lua_newuserdata((L), (sz))
#endif

#if LUA_VERSION_NUM >= 502
#define atl_rawlen(L, i) lua_rawlen((L), (i))
#else
#define atl_rawlen(L, i) lua_objlen((L), (i))
#endif

#if LUA_VERSION_NUM >= 503
#define ATL_HAS_INTEGERS 1
#define atl_isinteger(L, i) lua_isinteger((L), (i))
#else
#define ATL_HAS_INTEGERS 0
#define atl_isinteger(L, i) 0
#endif

/* Push a whole number: an integer where the language has them, a float elsewhere. */
#if ATL_HAS_INTEGERS
#define atl_pushwhole(L, n) lua_pushinteger((L), (lua_Integer)(n))
#else
#define atl_pushwhole(L, n) lua_pushnumber((L), (lua_Number)(n))
#endif

/* luaL_setfuncs exists in 5.2+ and in LuaJIT 2.1, but not in PUC 5.1. */
#if LUA_VERSION_NUM >= 502 || defined(LUA_JITLIBNAME)
#define atl_setfuncs(L, l, nup) luaL_setfuncs((L), (l), (nup))
#else
void atl_setfuncs_51(lua_State *L, const luaL_Reg *l, int nup);
#define atl_setfuncs(L, l, nup) atl_setfuncs_51((L), (l), (nup))
#endif

/* luaL_testudata: 5.2+ and LuaJIT; a local version elsewhere. */
#if LUA_VERSION_NUM >= 502 || defined(LUA_JITLIBNAME)
#define atl_testudata(L, i, t) luaL_testudata((L), (i), (t))
#else
void *atl_testudata_51(lua_State *L, int i, const char *tname);
#define atl_testudata(L, i, t) atl_testudata_51((L), (i), (t))
#endif

#if LUA_VERSION_NUM >= 502
#define atl_absindex(L, i) lua_absindex((L), (i))
#else
#define atl_absindex(L, i) (((i) > 0 || (i) <= LUA_REGISTRYINDEX) ? (i) : lua_gettop(L) + (i) + 1)
#endif

#endif
