-- Small process helpers for specs that drive real programs (LuaRocks, nginx, Neovim, the fake):
-- run a shell command and get its output and exit code, quote, temp dirs, files.
-- Works the same on Lua 5.1-5.4 and LuaJIT (io.popen():close() gives no status on 5.1).
-- Plain Lua (luasocket only for free_port): bench/bench.lua uses it outside busted too.
local M = {}

function M.quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Runs cmd under /bin/sh with stderr folded into stdout; returns output, exit code.
function M.run(cmd)
  local p = assert(io.popen("( " .. cmd .. "\n) 2>&1; echo \"@@exit=$?\""))
  local out = p:read("*a")
  p:close()
  local body, code = out:match("^(.*)@@exit=(%d+)%s*$")
  if not body then return out, -1 end
  return body, tonumber(code)
end

-- Runs cmd with os.execute; true when it exited 0. os.execute returns a number on 5.1/LuaJIT
-- and true/nil plus how it ended on 5.2+.
function M.execute(cmd)
  local a, _, c = os.execute(cmd)
  if type(a) == "number" then return a == 0 end
  return a == true and (c == nil or c == 0)
end

-- True when a program is on PATH.
function M.have(prog)
  local _, code = M.run("command -v " .. M.quote(prog) .. " >/dev/null")
  return code == 0
end

function M.tmpdir(tag)
  local out, code = M.run("mktemp -d /tmp/atladmin-" .. (tag or "spec") .. ".XXXXXX")
  assert(code == 0, out)
  return (out:gsub("%s+$", ""))
end

function M.rmdir(dir)
  if dir and dir:match("^/tmp/atladmin%-") then M.run("rm -rf " .. M.quote(dir)) end
end

function M.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

function M.write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

-- A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it).
function M.free_port()
  local socket = require "socket"
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

-- Waits up to `seconds` until something accepts connections on 127.0.0.1:port; true if it did.
function M.wait_port(port, seconds)
  local socket = require "socket"
  local deadline = socket.gettime() + seconds
  while true do
    local c = socket.tcp()
    c:settimeout(1)
    local ok = c:connect("127.0.0.1", port)
    c:close()
    if ok then return true end
    if socket.gettime() >= deadline then return false end
    socket.sleep(0.02)
  end
end

-- "env -i PATH=... LUA_PATH=... LUA_CPATH=..." for Lua version v ("5.4", "5.1"; LuaJIT reads
-- the 5.1 names): an interpreter started behind it finds modules in luadir and libdir only.
function M.only_tree_env(v, luadir, libdir)
  local suffix = v == "5.1" and "" or "_" .. v:gsub("%.", "_")
  return ("env -i PATH=/usr/bin:/bin LUA_PATH%s=%s LUA_CPATH%s=%s"):format(suffix,
    M.quote(luadir .. "/?.lua;" .. luadir .. "/?/init.lua"), suffix, M.quote(libdir .. "/?.so"))
end

-- Runs spec/support/probe.lua (one call to url with key for account) under interpreter lua from
-- /, with only the install tree root (share/lua/v, lib/lua/v) on its paths; output, exit code.
function M.probe(lua, v, root, url, key, account)
  local top = os.getenv("ATLADMIN_TOP") or "."
  return M.run(("cd / && %s %s %s %s %s %s"):format(
    M.only_tree_env(v, root .. "/share/lua/" .. v, root .. "/lib/lua/" .. v), lua,
    M.quote(top .. "/spec/support/probe.lua"), M.quote(url), key, M.quote(account)))
end

return M
