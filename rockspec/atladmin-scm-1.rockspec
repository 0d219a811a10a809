-- LuaRocks package for atladmin: `luarocks make rockspec/atladmin-scm-1.rockspec`
-- (add --lua-version=5.1 for LuaJIT, Neovim and OpenResty; --tree DIR for a private tree).
rockspec_format = "3.0"
package = "atladmin"
version = "scm-1"

source = {
   url = "git+https://github.com/OWNER/atladmin.git",
}

description = {
   summary = "List and revoke Atlassian Cloud users' API tokens through the Admin API",
   detailed = [[
atladmin is a Lua module with a C core (libcurl for HTTP, cJSON for JSON) that speaks
Atlassian's Admin API with an organization admin key: client:tokens(account) returns plain
Lua tables, client:revoke(account, id) revokes one token. Ships a fake Admin API server
(atladmin-fake) to test scripts against.]],
   homepage = "https://github.com/OWNER/atladmin",
   license = "MIT",
   labels = { "atlassian", "admin", "http", "curl" },
}

dependencies = {
   "lua >= 5.1, < 5.5",
}

-- Debian: libcurl4-openssl-dev libcjson-dev libssl-dev libmicrohttpd-dev pkg-config
external_dependencies = {
   -- by library: curl/curl.h sits in a multiarch folder LuaRocks does not search;
   -- the Makefile takes the include flags from pkg-config
   CURL = { library = "curl" },
   CJSON = { header = "cjson/cJSON.h" },
   MICROHTTPD = { header = "microhttpd.h" },
}

build = {
   type = "make",
   -- `make rock` builds atladmin.core for this Lua (its LUA_INCDIR) and the fake server
   build_target = "rock",
   build_variables = {
      CFLAGS = "$(CFLAGS)",
      LUA_INCDIR = "$(LUA_INCDIR)",
   },
   install_pass = false,
   install = {
      lua = {
         ["atladmin"] = "lua/atladmin/init.lua",
         ["atladmin.audit"] = "lua/atladmin/audit.lua",
         ["atladmin.batch"] = "lua/atladmin/batch.lua",
         ["atladmin.cli"] = "lua/atladmin/cli.lua",
         ["atladmin.org"] = "lua/atladmin/org.lua",
         ["atladmin.report"] = "lua/atladmin/report.lua",
         ["atladmin.resty"] = "lua/atladmin/resty.lua",
      },
      lib = {
         ["atladmin.core"] = "build/rock/atladmin/core.so",
      },
      bin = {
         ["atladmin"] = "lua/bin/atladmin",
         ["atladmin-fake"] = "build/atladmin-fake",
      },
   },
   copy_directories = {},
}

test = {
   type = "command",
   -- builds the module for the Lua running it and runs the busted suite under that Lua
   script = "spec/luarocks_test.lua",
}
