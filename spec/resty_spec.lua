-- atladmin.resty inside a real nginx (one worker, no master) against the fake: the same
-- results and errors as the libcurl client, and the worker stays free while a call waits.
local atladmin = require "atladmin"
local Fake = require "spec.support.fake"
local socket = require "socket"
local http = require "socket.http"
local cjson = require "cjson"
local shape = require "spec.support.result_shape"
local shell = require "spec.support.shell"

local KEY = "spec-resty-key"
local TOP = os.getenv("ATLADMIN_TOP") or "."
local ALICE = "557057:4f9acfd2-6155-419b-8de5-5b5cf27a59a0"
local BOB = "5e5f6a63157ed50cd2b9eaca"

local function state()
  local accounts = {
    [ALICE] = { tokens = {
      { id = "asp_1", label = "one", createdAt = "2024-01-01T00:00:00.000Z", lastAccess = "2024-02-01T00:00:00.000Z" },
      { id = "asp_2", label = "two", createdAt = "2024-01-02T00:00:00.000Z", extra = { 1, 2 } } },
      profile = { name = "Alice" } },
    [BOB] = { tokens = {} },
  }
  for i = 1, 12 do accounts["557057:each-" .. i] = { tokens = { { id = "t" .. i, label = "l", createdAt = "c" } } } end
  return { accounts = accounts }
end

local sh = shell.execute

local read, free_port = shell.read, shell.free_port

local function escape(s)
  return (s:gsub("[^%w%-_.~]", function(c) return string.format("%%%02X", c:byte()) end))
end

local Nginx = {}

-- A certificate for 127.0.0.1 that nginx trusts (lua_ssl_trusted_certificate) and libcurl too.
local function make_cert(dir)
  return sh("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 " ..
            "-addext subjectAltName=IP:127.0.0.1 -keyout '" .. dir .. "/key.pem' -out '" .. dir ..
            "/cert.pem' >/dev/null 2>&1")
end

function Nginx.start(fake_url, tls_url, dir)
  local port = free_port()
  local conf = ([[
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
daemon off;
master_process off;
worker_processes 1;
pid DIR/nginx.pid;
error_log DIR/logs/error.log warn;
events { worker_connections 64; }
env ATLADMIN_SPEC_KEY;
http {
  access_log off;
  client_body_temp_path DIR/body;
  proxy_temp_path DIR/proxy;
  fastcgi_temp_path DIR/fastcgi;
  uwsgi_temp_path DIR/uwsgi;
  scgi_temp_path DIR/scgi;
  lua_package_path "TOP/lua/?.lua;TOP/lua/?/init.lua;TOP/?.lua;;";
  lua_package_cpath "TOP/build/luajit/?.so;;";
  lua_ssl_trusted_certificate DIR/cert.pem;
  server {
    listen 127.0.0.1:PORT;
    set $fake_url FAKE;
    set $fake_tls_url TLSURL;
    location /call { content_by_lua_block { require("spec.support.resty_app").call() } }
    location /each { content_by_lua_block { require("spec.support.resty_app").each() } }
    location /fast { content_by_lua_block { require("spec.support.resty_app").fast() } }
    location /stall { content_by_lua_block { require("spec.support.resty_app").stall() } }
    location /down { content_by_lua_block { require("spec.support.resty_app").down() } }
  }
}
]]):gsub("DIR", dir):gsub("TOP", TOP):gsub("PORT", tostring(port)):gsub("FAKE", fake_url)
     :gsub("TLSURL", tls_url)
  local f = assert(io.open(dir .. "/nginx.conf", "wb"))
  f:write(conf)
  f:close()
  assert(sh("ATLADMIN_SPEC_KEY=" .. KEY .. " nginx -p '" .. dir .. "' -c '" .. dir ..
            "/nginx.conf' -e '" .. dir .. "/logs/error.log' >/dev/null 2>&1 &"))
  local self = setmetatable({ dir = dir, url = "http://127.0.0.1:" .. port }, { __index = Nginx })
  for _ = 1, 200 do
    local body = http.request(self.url .. "/fast")
    if body and body:match("^fast") then return self end
    socket.sleep(0.025)
  end
  error("nginx did not start: " .. tostring(read(dir .. "/logs/error.log")))
end

function Nginx:stop()
  local pid = read(self.dir .. "/nginx.pid")
  if pid then sh("kill " .. pid:match("%d+") .. " 2>/dev/null") end
  if not os.getenv("ATLADMIN_KEEP") then sh("rm -rf '" .. self.dir .. "'") end
end

describe("atladmin.resty in nginx", function()
  local fake, tls_fake, nginx, client, dir

  local function via_nginx(op, a, b)
    local url = nginx.url .. "/call?op=" .. op .. "&a=" .. escape(a) .. (b and "&b=" .. escape(b) or "")
    local body, code = http.request(url)
    assert.equal(200, code)
    return cjson.decode(body)
  end

  local function via_curl(op, a, b)
    local v, r
    if b then v, r = client[op](client, a, b) else v, r = client[op](client, a) end
    -- the same JSON round trip as nginx's answer, so both sides compare alike
    return cjson.decode(cjson.encode(shape(op, v, r)))
  end

  setup(function()
    assert(sh("make -s -C '" .. TOP .. "' LUA=luajit module >/dev/null"))
    fake = Fake.start { key = KEY, state = state() }
    dir = os.tmpname()
    os.remove(dir)
    assert(sh("mkdir -p '" .. dir .. "/logs'"))
    assert(make_cert(dir), "openssl could not make a test certificate")
    tls_fake = Fake.start { key = KEY, state = state(), tls_cert = dir .. "/cert.pem", tls_key = dir .. "/key.pem" }
    nginx = Nginx.start(fake.url, tls_fake.url, dir)
    client = atladmin.new { token = KEY, base_url = fake.url, retries = 2, backoff_base = 0.01, timeout = 10 }
  end)

  teardown(function()
    if nginx then nginx:stop() end
    if client then client:close() end
    if fake then fake:stop() end
    if tls_fake then tls_fake:stop() end
  end)

  before_each(function()
    fake:clear_faults()
    fake:set_state(state())
  end)

  it("lists tokens exactly like the libcurl client", function()
    local got = via_nginx("tokens", ALICE)
    assert.same(via_curl("tokens", ALICE), got)
    assert.equal("asp_2", got.value[2].id)
    assert.same(via_curl("tokens", BOB), via_nginx("tokens", BOB))
    assert.same(via_curl("profile", ALICE), via_nginx("profile", ALICE))
  end)

  it("returns the same errors", function()
    local got = via_nginx("tokens", "557057:nobody")
    assert.equal("accountNotFound", got.r.key)
    assert.same(via_curl("tokens", "557057:nobody"), got)
    assert.same(via_curl("revoke", ALICE, "asp_missing"), via_nginx("revoke", ALICE, "asp_missing"))
    fake:fault { method = "GET", path_prefix = "/users/", type = "status", status = 403, count = 2,
                 body = '{"key":"forbidden.action","message":"not allowed"}' }
    local a = via_nginx("tokens", ALICE)
    local b = via_curl("tokens", ALICE)
    assert.equal("forbidden.action", a.r.key)
    assert.same(b, a)
    fake:fault { method = "GET", path_prefix = "/users/", type = "malformed", count = 2 }
    a = via_nginx("tokens", ALICE)
    b = via_curl("tokens", ALICE)
    assert.equal("decode", a.r.kind)
    assert.same(b, a)
  end)

  it("speaks HTTPS with the certificate verified, like the libcurl client", function()
    local body = http.request(nginx.url .. "/call?tls=1&op=tokens&a=" .. escape(ALICE))
    local got = cjson.decode(body)
    local c = atladmin.new { token = KEY, base_url = tls_fake.url, ca_file = dir .. "/cert.pem" }
    local v, r = c:tokens(ALICE)
    c:close()
    local want = cjson.decode(cjson.encode(shape("tokens", v, r)))
    assert.equal(2, #got.value)
    assert.matches("^https://", got.r.endpoint)
    assert.same(want, got)
  end)

  it("revokes", function()
    local got = via_nginx("revoke", ALICE, "asp_1")
    assert.is_true(got.r.ok)
    assert.equal(204, got.r.status)
    assert.equal(1, #assert(client:tokens(ALICE)))
  end)

  it("retries 429 and 503 like the libcurl client, honouring Retry-After", function()
    fake:fault { method = "GET", path_prefix = "/users/", type = "status", status = 429,
                 headers = { ["Retry-After"] = "1" }, body = '{"code":429,"message":"slow down"}' }
    fake:fault { method = "GET", path_prefix = "/users/", type = "status", status = 503 }
    local got = via_nginx("tokens", ALICE)
    assert.equal(3, got.r.attempts)
    assert.equal(200, got.r.status)
    fake:fault { method = "GET", path_prefix = "/users/", type = "status", status = 503, count = 3 }
    got = via_nginx("tokens", ALICE)
    fake:fault { method = "GET", path_prefix = "/users/", type = "status", status = 503, count = 3 }
    assert.same(via_curl("tokens", ALICE), got)
    assert.equal(3, got.r.attempts)
    assert.equal(503, got.r.status)
  end)

  it("reports transport failures with the same kind and code", function()
    fake:fault { method = "GET", path_prefix = "/users/", type = "reset", count = -1 }
    local got = via_nginx("tokens", ALICE)
    local want = via_curl("tokens", ALICE)
    assert.equal("transport", got.r.kind)
    assert.equal(want.r.kind, got.r.kind)
    assert.equal(want.r.attempts, got.r.attempts)
    assert.equal(want.r.code, got.r.code)
    assert.is_nil(got.value)
  end)

  it("refuses a connection it cannot make, like the libcurl client", function()
    local port = free_port()
    local c = atladmin.new { token = KEY, base_url = "http://127.0.0.1:" .. port, retries = 1, backoff_base = 0.01 }
    local _, want = c:tokens(ALICE)
    c:close()
    local got = cjson.decode((http.request(nginx.url .. "/down?port=" .. port)))
    assert.equal("transport", got.kind)
    assert.equal(want.code, got.code)
    assert.equal(want.attempts, got.attempts)
  end)

  it("gives up on a stalled body like the libcurl client", function()
    local body = '[{"id":"asp_s","label":"stalled","createdAt":"x"}]'
    fake:fault { method = "GET", path_prefix = "/users/", type = "stall", ms = 6000, body = body }
    local got = cjson.decode((http.request(nginx.url .. "/stall?a=" .. escape(ALICE))))
    fake:fault { method = "GET", path_prefix = "/users/", type = "stall", ms = 6000, body = body }
    local c = atladmin.new { token = KEY, base_url = fake.url, retries = 0, stall_timeout = 1, timeout = 20 }
    local _, want = c:tokens(ALICE)
    c:close()
    assert.is_false(got.ok)
    assert.equal(want.kind, got.kind)
    assert.equal(want.code, got.code)
    assert.equal(1, got.attempts)
  end)

  it("runs each_tokens on light threads", function()
    local ids = {}
    for i = 1, 12 do ids[i] = "557057:each-" .. i end
    ids[#ids + 1] = "557057:nobody"
    local body = http.request(nginx.url .. "/each?concurrency=4&a=" .. escape(table.concat(ids, ",")))
    local out = cjson.decode(body)
    assert.equal(13, #out)
    local seen = {}
    for _, r in ipairs(out) do seen[r.account] = r end
    for i = 1, 12 do assert.equal(1, seen["557057:each-" .. i].count) end
    assert.equal("accountNotFound", seen["557057:nobody"].err)
  end)

  it("keeps the worker free while a call waits on a slow server", function()
    fake:clear_requests()
    fake:fault { method = "GET", path = "/users/" .. ALICE .. "/manage/api-tokens", type = "delay", ms = 2000 }
    local out = os.tmpname()
    os.remove(out)
    -- the slow call runs in the background; its answer lands in `out` when it is complete
    assert(sh("curl -s -o '" .. out .. ".part' '" .. nginx.url .. "/call?op=tokens&a=" .. escape(ALICE) ..
              "' && mv '" .. out .. ".part' '" .. out .. "' &"))
    -- wait until nginx's request is at the fake (the fake logs it before the delay)
    for _ = 1, 200 do
      if #fake:requests({ method = "GET" }) > 0 then break end
      socket.sleep(0.01)
    end
    assert.equal(1, #fake:requests({ method = "GET" }))
    -- the single worker answers another request while that call is still waiting: when the
    -- fast request runs, the slow call is still in flight (a blocked worker would only get to
    -- the fast request after finishing the slow call)
    local body = http.request(nginx.url .. "/fast")
    assert.equal("fast, in flight: 1\n", body)
    assert.is_nil(read(out), "the slow call finished before the fast one was answered")
    body = http.request(nginx.url .. "/call?op=tokens&a=" .. escape(BOB))
    assert.same(via_curl("tokens", BOB), cjson.decode(body))
    assert.is_nil(read(out))
    for _ = 1, 500 do
      if read(out) then break end
      socket.sleep(0.02)
    end
    local slow = cjson.decode(read(out) or "null")
    assert.equal(2, #slow.value)
    os.remove(out)
  end)
end)
