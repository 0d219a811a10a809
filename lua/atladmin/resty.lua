-- atladmin.resty: the atladmin client for OpenResty / nginx + ngx_lua, on nginx's non-blocking
-- cosockets (ngx.socket.tcp, TLS with certificate verification, a keepalive pool), so a call
-- never blocks the worker. Requests are built, retries decided and replies decoded by the C
-- core's protocol layer (atladmin.protocol), so results and errors are those of the libcurl
-- client. Usable in rewrite/access/content/timer contexts (where cosockets are allowed).
--
--   local atladmin = require "atladmin.resty"
--   local client = atladmin.new { token = ..., base_url = ... }   -- same options as atladmin.new
--   local tokens, res = client:tokens(account_id)
local core = require "atladmin.core"
local protocol = core.protocol

local ngx = ngx -- luacheck: ignore
local tcp = ngx.socket.tcp
local unpack = unpack or table.unpack -- luacheck: ignore

local M = { _VERSION = core._VERSION, null = core.null, array = core.array, Error = core.Error }

local Client = {}
Client.__index = Client
M.Client = Client

local OPTIONS = {
  token = "string", base_url = "string", user_agent = "string", timeout = "number",
  connect_timeout = "number", retries = "number", backoff_base = "number", backoff_max = "number",
  max_retry_wait = "number", max_body = "number", stall_timeout = "number", ssl_verify = "boolean",
  pool_size = "number", keepalive_timeout = "number",
}

function M.new(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("atladmin.resty.new: options must be a table", 2) end
  for k, v in pairs(opts) do
    if not OPTIONS[k] then error("atladmin.resty.new: unknown option '" .. tostring(k) .. "'", 2) end
    if type(v) ~= OPTIONS[k] then
      error("atladmin.resty.new: option '" .. k .. "' must be a " .. OPTIONS[k] .. ", got " .. type(v), 2)
    end
  end
  local token = opts.token or os.getenv("ATLASSIAN_ADMIN_TOKEN")
  if not token or token == "" then
    error("atladmin.resty.new: no admin key: pass token= or set ATLASSIAN_ADMIN_TOKEN", 2)
  end
  if token:find("[%c]") then error("atladmin.resty.new: option 'token' contains a control character", 2) end
  local base = opts.base_url or "https://api.atlassian.com"
  -- the core checks the base URL (https, or http to loopback only) and normalises it
  local ok, e = pcall(protocol.request, "tokens", base, "x")
  if not ok then error("atladmin.resty.new: option 'base_url' " .. tostring(e):gsub("^.-base_url ", ""), 2) end
  local scheme, host, port = base:match("^(https?)://([^/:]+):?(%d*)")
  if not scheme then
    scheme, host, port = base:match("^(https?)://(%[[^%]]+%]):?(%d*)")
  end
  if not scheme then error("atladmin.resty.new: option 'base_url' is not supported by this transport", 2) end
  local self = setmetatable({
    token = token,
    base = base,
    scheme = scheme,
    host = host:gsub("^%[(.*)%]$", "%1"),
    host_header = host .. (port ~= "" and ":" .. port or ""),
    port = tonumber(port) or (scheme == "https" and 443 or 80),
    user_agent = opts.user_agent or ("atladmin/" .. core._VERSION .. " ngx_lua"),
    timeout = opts.timeout or 30,
    connect_timeout = opts.connect_timeout or 10,
    stall_timeout = opts.stall_timeout or 20,
    retry = { retries = opts.retries or 4, backoff_base = opts.backoff_base or 5,
              backoff_max = opts.backoff_max or 30, max_retry_wait = opts.max_retry_wait or 60 },
    max_body = opts.max_body or 8 * 1024 * 1024,
    ssl_verify = opts.ssl_verify ~= false,
    pool_size = opts.pool_size or 16,
    keepalive_timeout = opts.keepalive_timeout or 60,
    closed = false,
  }, Client)
  self.pool = scheme .. ":" .. self.host_header
  return self
end

function Client:base_url() return self.base end
function Client:close() self.closed = true end
function Client:__tostring()
  return self.closed and "atladmin.resty.client (closed)" or ("atladmin.resty.client (" .. self.base .. ")")
end

local function lower_headers(lines)
  local h = {}
  for i = 1, #lines do
    local k, v = lines[i]:match("^([^:]+):%s*(.-)%s*$")
    if k then
      k = k:lower()
      h[k] = h[k] and (h[k] .. ", " .. v) or v
    end
  end
  return h
end

-- Reads a chunked body; nil, message, kind on failure.
local function read_chunked(sock, limit)
  local parts, total = {}, 0
  while true do
    local line, err = sock:receive("*l")
    if not line then return nil, err, err == "timeout" and "timeout" or "recv" end
    local size = tonumber(line:match("^%x+"), 16)
    if not size then return nil, "bad chunk size", "recv" end
    if size == 0 then
      repeat
        line, err = sock:receive("*l")
        if not line then return nil, err, "recv" end
      until line == ""
      return table.concat(parts)
    end
    total = total + size
    if total > limit then return nil, "response body is larger than max_body", "too_large" end
    local data
    data, err = sock:receive(size)
    if not data then return nil, err, err == "timeout" and "timeout" or "recv" end
    parts[#parts + 1] = data
    sock:receive("*l")
  end
end

-- One HTTP/1.1 exchange. Returns {status, headers, body}, reused or nil, message, kind, reused.
function Client:_exchange(method, url, headers, body)
  local sock = tcp()
  -- cosocket timeouts bound each send and each read: a body that pauses longer than
  -- stall_timeout (or timeout, if shorter) fails as a timeout, like the libcurl client's watch
  local ms = self.timeout * 1000
  sock:settimeouts(self.connect_timeout * 1000, ms, math.min(ms, self.stall_timeout * 1000))
  local ok, err = sock:connect(self.host, self.port, { pool = self.pool })
  if not ok then return nil, err, "connect", false end
  local reused = (sock:getreusedtimes() or 0) > 0
  if self.scheme == "https" and not reused then
    ok, err = sock:sslhandshake(nil, self.host, self.ssl_verify)
    if not ok then
      sock:close()
      return nil, "TLS: " .. tostring(err), "tls", false
    end
  end
  local path = url:match("^%a+://[^/]+(/.*)$") or "/"
  local req = { method, " ", path, " HTTP/1.1\r\nHost: ", self.host_header,
                "\r\nAuthorization: Bearer ", self.token, "\r\nUser-Agent: ", self.user_agent, "\r\n" }
  for k, v in pairs(headers) do req[#req + 1] = k .. ": " .. v .. "\r\n" end
  if body then req[#req + 1] = "Content-Length: " .. #body .. "\r\n" end
  req[#req + 1] = "\r\n"
  if body then req[#req + 1] = body end
  ok, err = sock:send(req)
  if not ok then
    sock:close()
    return nil, err, err == "timeout" and "timeout" or "send", reused
  end
  local line
  line, err = sock:receive("*l")
  if not line then
    sock:close()
    return nil, err, err == "timeout" and "timeout" or "recv", reused
  end
  local status = tonumber(line:match("^HTTP/1%.%d (%d%d%d)"))
  if not status then
    sock:close()
    return nil, "malformed status line", "recv", false
  end
  local lines = {}
  while true do
    line, err = sock:receive("*l")
    if not line then
      sock:close()
      return nil, err, err == "timeout" and "timeout" or "recv", false
    end
    if line == "" then break end
    lines[#lines + 1] = line
  end
  local h = lower_headers(lines)
  local data, kind
  local len = tonumber(h["content-length"] or "")
  if method == "HEAD" or status == 204 or status == 304 then
    data = ""
  elseif h["transfer-encoding"] and h["transfer-encoding"]:lower():find("chunked", 1, true) then
    data, err, kind = read_chunked(sock, self.max_body)
  elseif len then
    if len > self.max_body then
      data, err, kind = nil, "response body is larger than max_body", "too_large"
    elseif len == 0 then
      data = ""
    else
      data, err = sock:receive(len)
      if not data then kind = err == "timeout" and "timeout" or "recv" end
    end
  else
    data, err = sock:receive("*a")
    h.connection = "close"
    if data and #data > self.max_body then
      data, err, kind = nil, "response body is larger than max_body", "too_large"
    end
  end
  if not data then
    sock:close()
    return nil, err, kind, false
  end
  if (h.connection or ""):lower():find("close", 1, true) then
    sock:close()
  else
    sock:setkeepalive(self.keepalive_timeout * 1000, self.pool_size)
  end
  return { status = status, headers = h, body = data }
end

local function retry_after(h)
  local v = h["retry-after"]
  if not v then return nil end
  local n = tonumber(v)
  if n then return n >= 0 and math.floor(n) or 0 end
  local t = ngx.parse_http_time(v)
  if t then
    local d = t - ngx.time()
    return d > 0 and d or 0
  end
  return nil
end

-- One call: build, send with retries, decode: the returns of the libcurl client's call.
function Client:_call(op, ...)
  if self.closed then error("atladmin: " .. op .. " called on a closed client", 3) end
  local method, url, headers, body = protocol.request(op, self.base, ...)
  ngx.update_time()
  local start = ngx.now()
  local attempt, waited, maybe_delivered = 0, 0, false
  while true do
    attempt = attempt + 1
    local resp, err, kind, reused = self:_exchange(method, url, headers, body)
    if not resp and reused then
      -- a kept-alive connection the server had closed: send again once on a fresh one
      resp, err, kind = self:_exchange(method, url, headers, body)
    end
    local r = { url = url, attempts = attempt, secret = self.token }
    if resp then
      local h = resp.headers
      r.status, r.body = resp.status, resp.body
      r.content_type = h["content-type"]
      r.retry_after = retry_after(h)
      r.location = h.location
      if h["x-ratelimit-limit"] then
        r.rate_limit = { limit = tonumber(h["x-ratelimit-limit"]),
                         remaining = tonumber(h["x-ratelimit-remaining"] or ""),
                         reset = h["x-ratelimit-reset"] }
      end
    else
      r.error, r.transport = tostring(err), kind
    end
    local wait, delivered = protocol.retry_wait(self.retry, attempt, r)
    if not wait then
      ngx.update_time()
      r.elapsed = ngx.now() - start
      r.waited = waited
      r.maybe_delivered = maybe_delivered
      return protocol.reply(op, r)
    end
    maybe_delivered = maybe_delivered or delivered
    ngx.sleep(wait)
    waited = waited + wait
  end
end

for _, op in ipairs { "tokens", "revoke", "permissions", "profile", "update_profile", "disable",
                      "enable", "org_users_page", "org_tokens_page" } do
  Client[op] = function(self, ...) return self:_call(op, ...) end
end

-- for account_id, tokens, err, res in client:each_tokens(accounts [, {concurrency = 8}]):
-- up to `concurrency` light threads in this request, results in completion order.
function Client:each_tokens(accounts, opts)
  local concurrency = opts and opts.concurrency or 8
  local nextid
  if type(accounts) == "function" then
    nextid = accounts
  else
    local i = 0
    nextid = function() i = i + 1 return accounts[i] end
  end
  local threads, exhausted = {}, false
  local ready = {}
  local function worker(id)
    local tokens, r = self:tokens(id)
    return coroutine.running(), id, tokens, r
  end
  return function()
    while #ready == 0 do
      while not exhausted and #threads < concurrency do
        local id = nextid()
        if id == nil then exhausted = true else threads[#threads + 1] = ngx.thread.spawn(worker, id) end
      end
      if #threads == 0 then return nil end
      local ok, co, id, tokens, r = ngx.thread.wait(unpack(threads))
      if not ok then error(co, 2) end
      for i = #threads, 1, -1 do
        if threads[i] == co then table.remove(threads, i) end
      end
      ready[#ready + 1] = { id, tokens, r }
    end
    local d = table.remove(ready, 1)
    if d[2] then return d[1], d[2], nil, d[3] end
    return d[1], nil, d[3]
  end
end

return M
