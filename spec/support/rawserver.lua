-- A one-shot TCP server in a child interpreter (luasocket) for what no HTTP server library will
-- send: it reads each request's head, writes the given bytes verbatim, then closes, with an RST
-- (SO_LINGER 0) when asked. Serves `count` connections, or gives up after 10 s.
--   local srv = RawServer.start { file = "reply.bin", reset = true, count = 1 }
--   srv.url ... srv:finish() -> number of requests it read
local RawServer = {}
RawServer.__index = RawServer

local CHILD = [=[
local socket = require "socket"
local file, reset, count = arg[1], arg[2] == "1", tonumber(arg[3])
local f = assert(io.open(file, "rb"))
local bytes = f:read("*a")
f:close()
local l = assert(socket.bind("127.0.0.1", 0))
local _, port = l:getsockname()
io.stdout:write(port, "\n")
io.stdout:flush()
l:settimeout(10)
local served = 0
for _ = 1, count do
  local c = l:accept()
  if not c then break end
  c:settimeout(5)
  repeat local line = c:receive("*l") until not line or line == ""
  served = served + 1
  c:send(bytes)
  if reset then c:setoption("linger", { on = true, timeout = 0 }) end
  c:close()
end
io.stdout:write("served ", served, "\n")
]=]

function RawServer.start(opts)
  local lua = os.getenv("ATLADMIN_LUA") or "lua5.4"
  local script = os.tmpname()
  local f = assert(io.open(script, "w"))
  f:write(CHILD)
  f:close()
  local file = opts.file
  if opts.bytes then
    file = os.tmpname()
    f = assert(io.open(file, "wb"))
    f:write(opts.bytes)
    f:close()
  end
  local cmd = ("%s %s %s %s %d"):format(lua, script, file, opts.reset and "1" or "0", opts.count or 1)
  local pipe = assert(io.popen(cmd, "r"))
  local port = assert(tonumber(pipe:read("*l")), "raw server did not start")
  return setmetatable({ pipe = pipe, port = port, url = "http://127.0.0.1:" .. port,
                        script = script, tmp = opts.bytes and file }, RawServer)
end

function RawServer:finish()
  local rest = self.pipe:read("*a")
  self.pipe:close()
  os.remove(self.script)
  if self.tmp then os.remove(self.tmp) end
  return tonumber((rest or ""):match("served (%d+)")) or 0
end

return RawServer
