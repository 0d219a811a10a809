/* atladmin.c: luaopen_atladmin_core, the module table (new, _VERSION, null) and one-time
 * library set-up. The only exported symbol of the module. */
#include <string.h>
#include "internal.h"

/* Registers the named metatable mt (also its __name) with its metamethods, and the methods
 * table as its __index. */
void atl_register_type(lua_State *L, const char *mt, const luaL_Reg *meta, const luaL_Reg *methods) {
  luaL_newmetatable(L, mt);
  atl_setfuncs(L, meta, 0);
  lua_newtable(L);
  atl_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pushstring(L, mt);
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);
}

static int curl_ready = 0;

static int mod_curl_version(lua_State *L) {
  lua_pushstring(L, curl_version_info(CURLVERSION_NOW)->version);
  return 1;
}

__attribute__((visibility("default"))) int luaopen_atladmin_core(lua_State *L);

int luaopen_atladmin_core(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"new", atl_client_new},
      {"curl_version", mod_curl_version},
      {"array", atl_mark_array},
      {NULL, NULL}};
  if (!curl_ready) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return luaL_error(L, "atladmin: curl_global_init failed");
    curl_ready = 1;
  }
  atl_register_error(L);
  atl_register_client(L);
  atl_register_queue(L);
  lua_createtable(L, 0, 8);
  atl_setfuncs(L, funcs, 0);
  lua_pushliteral(L, ATLADMIN_VERSION);
  lua_setfield(L, -2, "_VERSION");
  atl_push_null(L);
  lua_setfield(L, -2, "null");
  atl_register_protocol(L);
  luaL_getmetatable(L, ATL_CLIENT_MT);
  lua_getfield(L, -1, "__index");
  lua_pushcfunction(L, atl_queue_new);
  lua_setfield(L, -2, "queue");
  lua_setfield(L, -3, "Client");
  lua_pop(L, 1);
  luaL_getmetatable(L, ATL_ERROR_MT);
  lua_setfield(L, -2, "Error");
  return 1;
}
