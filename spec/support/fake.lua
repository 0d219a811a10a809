-- Starts build/atladmin-fake for a spec and drives its /_fake/ control API (Lua 5.1-5.4, LuaJIT).
--
--   local Fake = require "spec.support.fake"
--   local fake = Fake.start { state = {...} or "path.json", key = "k", latency_ms = 0,
--                             page_size = 100, sample = nil, tls_cert = nil, tls_key = nil }
--   fake.url, fake.port, fake.key
--   fake:requests([filter]), fake:clear_requests(), fake:fault{...}, fake:clear_faults(),
--   fake:set_state(t), fake:state(), fake:reset(t), fake:log(), fake:stop()
--
--   local fake = Fake.fixture { key = "k", state = function() return {...} end, page_size = 2 }
--   the busted hooks most specs repeat: setup starts the server, teardown stops it, and
--   before_each resets it (fake:reset) to a fresh state(). `fake` stands in for the server.
--   lazy = true: lazy_setup/lazy_teardown; reset = false: no before_each.
--
-- The server runs with --exit-on-stdin-eof on a pipe this process holds, so it also ends when
-- the Lua process does, even if a spec never calls stop().
local http = require "socket.http"
local ltn12 = require "ltn12"
local socket = require "socket"
local cjson = require "cjson"
local shell = require "spec.support.shell"

local Fake = {}
Fake.__index = Fake

local START_TIMEOUT = 10 -- seconds to wait for the server to answer /_fake/health
local CONTROL_TIMEOUT = 10

local OPTIONS = {
  state = true, key = true, latency_ms = true, page_size = true, sample = true,
  tls_cert = true, tls_key = true, host = true, quiet = true, env = true, args = true,
}

local running = {} -- every server started and not yet stopped

local quote, read_file, write_file, run = shell.quote, shell.read, shell.write, shell.execute

local function alive(pid)
  local stat = read_file("/proc/" .. pid .. "/stat")
  if stat then
    -- "pid (name) S ...": a zombie has exited already, it only waits to be reaped
    return stat:match("%) (%a)") ~= "Z"
  end
  return run("kill -0 " .. pid .. " 2>/dev/null")
end

local function sleep(s)
  socket.sleep(s)
end

-- One HTTP exchange with the control API. Returns status, body.
function Fake:_call(method, path, body)
  local chunks = {}
  local req = {
    url = self.url .. path,
    method = method,
    sink = ltn12.sink.table(chunks),
    headers = { accept = "application/json" },
  }
  if body then
    req.source = ltn12.source.string(body)
    req.headers["content-type"] = "application/json"
    req.headers["content-length"] = tostring(#body)
  end
  local ok, status
  if self.tls then
    local https = require "ssl.https"
    req.verify = "none"
    ok, status = https.request(req)
  else
    local saved = http.TIMEOUT
    http.TIMEOUT = CONTROL_TIMEOUT
    ok, status = http.request(req)
    http.TIMEOUT = saved
  end
  if not ok then return nil, status end
  return status, table.concat(chunks)
end

function Fake:_expect(want, method, path, body)
  local status, out = self:_call(method, path, body)
  if status ~= want then
    error(("atladmin-fake %s %s: expected %d, got %s: %s"):format(method, path, want,
      tostring(status), tostring(out)), 3)
  end
  return out
end

local function state_key(state)
  if type(state) == "table" then
    return type(state.key) == "string" and state.key or nil
  end
  local text = type(state) == "string" and read_file(state)
  if text then
    local ok, doc = pcall(cjson.decode, text)
    if ok and type(doc) == "table" and type(doc.key) == "string" then return doc.key end
  end
  return nil
end

function Fake.start(opts)
  opts = opts or {}
  for k in pairs(opts) do
    if not OPTIONS[k] then error("Fake.start: unknown option '" .. tostring(k) .. "'", 2) end
  end
  local bin = os.getenv("ATLADMIN_FAKE") or "build/atladmin-fake"
  if not read_file(bin) then
    error("Fake.start: " .. bin .. " not found (run `make fake`, or set ATLADMIN_FAKE)", 2)
  end

  local base = os.tmpname()
  local self = setmetatable({
    files = { base = base, port = base .. ".port", log = base .. ".log", out = base .. ".out",
              pid = base .. ".pid", state = base .. ".state.json" },
    tls = opts.tls_cert ~= nil,
  }, Fake)

  local args = { quote(bin), "--port 0", "--port-file", quote(self.files.port), "--exit-on-stdin-eof" }
  local function add(flag, value)
    if value ~= nil then
      args[#args + 1] = flag
      args[#args + 1] = quote(value)
    end
  end
  if type(opts.state) == "table" then
    write_file(self.files.state, cjson.encode(opts.state))
    add("--state", self.files.state)
  else
    add("--state", opts.state)
  end
  add("--key", opts.key)
  add("--latency-ms", opts.latency_ms)
  add("--page-size", opts.page_size)
  add("--sample", opts.sample)
  add("--tls-cert", opts.tls_cert)
  add("--tls-key", opts.tls_key)
  add("--host", opts.host)
  if opts.quiet then args[#args + 1] = "--quiet" end
  for _, a in ipairs(opts.args or {}) do args[#args + 1] = quote(a) end

  -- the environment's key must not leak in unless a spec asks for it
  local env = { "ATLADMIN_FAKE_KEY=" .. quote((opts.env or {}).ATLADMIN_FAKE_KEY or "") }
  for k, v in pairs(opts.env or {}) do
    if k ~= "ATLADMIN_FAKE_KEY" then env[#env + 1] = k .. "=" .. quote(v) end
  end

  -- $$ is the shell that execs into the server, so the pid file holds the server's pid
  local cmd = ("echo $$ > %s; exec env %s %s > %s 2> %s"):format(quote(self.files.pid),
    table.concat(env, " "), table.concat(args, " "), quote(self.files.out), quote(self.files.log))
  self.pipe = assert(io.popen(cmd, "w"))
  self.key = opts.key or (opts.env or {}).ATLADMIN_FAKE_KEY or state_key(opts.state) or "test-admin-key"
  running[self] = true

  local deadline = socket.gettime() + START_TIMEOUT
  while true do
    local pid = tonumber(read_file(self.files.pid) or "")
    if pid then self.pid = pid end
    local port = (read_file(self.files.port) or ""):match("^(%d+)\n")
    if port and not self.port then
      self.port = tonumber(port)
      local host = opts.host == "::1" and "[::1]" or "127.0.0.1"
      self.url = (self.tls and "https" or "http") .. "://" .. host .. ":" .. self.port
    end
    if self.url and self:_call("GET", "/_fake/health") == 200 then break end
    if (self.pid and not alive(self.pid)) or socket.gettime() > deadline then
      local log = read_file(self.files.log) or ""
      self:stop()
      error("Fake.start: atladmin-fake did not come up: " .. log, 2)
    end
    sleep(0.02)
  end
  return self
end

-- Recorded API requests (decoded), optionally only those whose fields equal `filter`'s.
function Fake:requests(filter)
  local all = cjson.decode(self:_expect(200, "GET", "/_fake/requests"))
  if not filter then return all end
  local out = {}
  for _, r in ipairs(all) do
    local keep = true
    for k, v in pairs(filter) do
      if r[k] ~= v then keep = false end
    end
    if keep then out[#out + 1] = r end
  end
  return out
end

function Fake:clear_requests()
  self:_expect(204, "DELETE", "/_fake/requests")
end

function Fake:fault(spec)
  self:_expect(201, "POST", "/_fake/faults", cjson.encode(spec))
end

function Fake:faults()
  return cjson.decode(self:_expect(200, "GET", "/_fake/faults"))
end

function Fake:clear_faults()
  self:_expect(204, "DELETE", "/_fake/faults")
end

function Fake:set_state(t)
  self:_expect(200, "PUT", "/_fake/state", type(t) == "string" and t or cjson.encode(t))
end

-- A clean slate for the next test: state t, no faults armed, an empty request log.
function Fake:reset(t)
  self:set_state(t)
  self:clear_faults()
  self:clear_requests()
end

function Fake:state()
  return cjson.decode(self:_expect(200, "GET", "/_fake/state"))
end

-- What the server wrote to stderr so far.
function Fake:log()
  return read_file(self.files.log) or self.final_log or ""
end

function Fake:stop()
  if self.stopped then return end
  self.stopped = true
  running[self] = nil
  local pid = self.pid or tonumber(read_file(self.files.pid) or "")
  if pid and alive(pid) then
    run("kill -TERM " .. pid .. " 2>/dev/null")
    local deadline = socket.gettime() + 5
    while alive(pid) and socket.gettime() < deadline do sleep(0.02) end
    if alive(pid) then run("kill -KILL " .. pid .. " 2>/dev/null") end
  end
  if self.pipe then
    -- closing reaps the process; 5.2+ also tell how it ended (5.1 and LuaJIT do not)
    local _, _, code = self.pipe:close()
    self.exit_code = code
    self.pipe = nil
  end
  self.final_log = read_file(self.files.log)
  for _, f in pairs(self.files) do os.remove(f) end
end

-- Fake.fixture(opts): registers busted hooks in the describe block it is called from. setup
-- starts a server with opts (Fake.start's options; a function opts.state is called for a fresh
-- state each time); teardown stops the server; before_each resets it to a fresh opts.state()
-- (state set, faults and requests cleared). Two more options: lazy = true registers
-- lazy_setup/lazy_teardown instead (the server starts only if a test of the block runs);
-- reset = false registers no before_each. Returns a stand-in usable before setup has run:
-- indexing it reads the running server's fields, and its methods act on that server.
local FIXTURE_ONLY = { lazy = true, reset = true }

function Fake.fixture(opts)
  if type(opts) ~= "table" then error("Fake.fixture: opts must be a table", 2) end
  local reset = opts.reset ~= false
  if reset and type(opts.state) ~= "function" then
    error("Fake.fixture: opts.state must be a function returning a state table (or reset = false)", 2)
  end
  local function state()
    if type(opts.state) == "function" then return opts.state() end
    return opts.state
  end
  local busted = require "busted"
  local setup, teardown = busted.setup, busted.teardown
  if opts.lazy then setup, teardown = busted.lazy_setup, busted.lazy_teardown end
  local server, stand_in
  local function current()
    if not server then error("Fake.fixture: the server is not running (used outside the tests?)", 3) end
    return server
  end
  stand_in = setmetatable({}, {
    __index = function(_, k)
      local v = current()[k]
      if type(v) ~= "function" then return v end
      return function(self, ...)
        if self == stand_in then self = server end
        return v(self, ...)
      end
    end,
    __newindex = function(_, k, v) current()[k] = v end,
  })
  setup(function()
    local start = {}
    for k, v in pairs(opts) do
      if not FIXTURE_ONLY[k] then start[k] = v end
    end
    start.state = state()
    server = Fake.start(start)
  end)
  teardown(function()
    if server then server:stop() end
  end)
  if reset then
    busted.before_each(function()
      server:reset(state())
    end)
  end
  return stand_in
end

-- Stops every server this process started and has not stopped yet.
function Fake.stop_all()
  for f in pairs(running) do f:stop() end
end

return Fake
