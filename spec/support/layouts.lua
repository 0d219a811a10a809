-- The three ways atladmin gets onto a Lua's search path, built on demand for one ABI, so host
-- specs can load it each way: the in-tree build, `make install`, and a LuaRocks tree.
--   local layouts = require("spec.support.layouts").for_abi("luajit", tmpdir)
--   for _, l in ipairs(layouts) do l.name, l.luadir, l.libdir, l.prepare() end
-- prepare() builds/installs that layout (once) and raises with the tool's output on failure.
local sh = require "spec.support.shell"

local M = {}

local TOP = os.getenv("ATLADMIN_TOP") or "."

-- build: "luajit" or "5.1" (make's LUA), abi: the Lua version LuaRocks and install paths use
function M.for_abi(build, tmp)
  local abi = build == "luajit" and "5.1" or build
  local rocks_tree = tmp .. "/rocks-tree"
  local dest = tmp .. "/destdir"
  local done = {}
  local function once(name, fn)
    return function()
      if not done[name] then fn(); done[name] = true end
    end
  end
  return {
    { name = "in-tree build", luadir = TOP .. "/lua", libdir = TOP .. "/build/" .. build,
      prepare = function() end },
    { name = "make install", luadir = dest .. "/usr/local/share/lua/" .. abi,
      libdir = dest .. "/usr/local/lib/lua/" .. abi,
      prepare = once("install", function()
        local out, code = sh.run(("make --no-print-directory -C %s install LUA=%s PREFIX=/usr/local DESTDIR=%s")
          :format(sh.quote(TOP), build, sh.quote(dest)))
        assert(code == 0, "make install failed:\n" .. out)
      end) },
    { name = "LuaRocks tree", luadir = rocks_tree .. "/share/lua/" .. abi,
      libdir = rocks_tree .. "/lib/lua/" .. abi,
      prepare = once("rocks", function()
        -- on a copy, so LuaRocks' build leaves the checkout alone
        local src = tmp .. "/rock-src"
        local out, code = sh.run(("mkdir -p %s && cd %s && cp -R Makefile rockspec csrc lua %s/ && cd %s"
          .. " && env -u LUA_PATH -u LUA_CPATH luarocks --lua-version=%s --tree %s make %s")
          :format(sh.quote(src), sh.quote(TOP), sh.quote(src), sh.quote(src), abi,
            sh.quote(rocks_tree), "rockspec/atladmin-scm-1.rockspec"))
        assert(code == 0, "luarocks make failed:\n" .. out)
      end) },
  }
end

return M
