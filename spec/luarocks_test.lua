-- `luarocks test` entry point (rockspec test.type = "command"): builds atladmin.core for the
-- Lua running this script and runs the busted suite under that same Lua, offline.
-- Extra arguments go to busted (e.g. `luarocks test -- spec/client_spec.lua`).
local version
if type(jit) == "table" then
  version = "luajit"
else
  version = _VERSION:match("Lua (%d+%.%d+)")
end

local function run(cmd)
  io.stdout:write("+ ", cmd, "\n")
  io.stdout:flush()
  local a, _, c = os.execute(cmd)
  if type(a) == "number" then return a == 0 end
  return a == true and (c == nil or c == 0)
end

local function quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local args = {}
for i = 1, select("#", ...) do args[#args + 1] = quote((select(i, ...))) end
local extra = #args > 0 and (" -- " .. table.concat(args, " ")) or ""

-- the specs that drive LuaRocks itself are not run from inside LuaRocks
local ok = run("make --no-print-directory module fake LUA=" .. version)
  and run("ATLADMIN_INSIDE_LUAROCKS=1 sh spec/run " .. version .. extra)
os.exit(ok and 0 or 1)
