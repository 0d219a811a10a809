-- bench/bench.lua: atladmin's speed, measured side by side with a reference in the same run and
-- reported as ratios (absolute times on a shared machine are noise). Run by bench/run.sh
-- (`make bench`); `--smoke` runs every case briefly (CI checks that the bench still runs).
local atladmin = require "atladmin"
local cjson = require "cjson"
local socket = require "socket"

local SMOKE = arg[1] == "--smoke"
local TOP = os.getenv("ATLADMIN_TOP") or "."
package.path = TOP .. "/?.lua;" .. package.path
local shell = require "spec.support.shell" -- plain Lua, no busted
local WORK = TOP .. "/build/bench"
local CURL_LOOP = WORK .. "/curl_loop"
local FAKE = TOP .. "/build/atladmin-fake"
local KEY = "bench-key"

local N_SEQ = SMOKE and 500 or 5000         -- sequential calls per side and round (http)
local N_TLS = SMOKE and 300 or 4000         -- sequential calls per side and round (https)
local ROUNDS = SMOKE and 1 or 9             -- alternating rounds; the best of each side counts
local N_SEC = SMOKE and 20 or 300           -- luasec calls (a TLS handshake each)
local N_DECODE = SMOKE and 5 or 100         -- decodes of the 10,000-token body per side
local N_ACCOUNTS = SMOKE and 200 or 1000    -- each_tokens accounts
local N_RSS = SMOKE and 5000 or 100000      -- calls for the RSS growth
local N_STARTUP = SMOKE and 5 or 30         -- fresh interpreters timed for require + new
local LATENCY_MS, CONCURRENCY = 20, 32

local now = socket.gettime

local sh, free_port = shell.execute, shell.free_port

-- Sends SIGTERM to the process whose pid the file holds, if it holds one.
local function kill_pidfile(path)
  local f = io.open(path)
  if f then
    local pid = f:read("*n")
    f:close()
    if pid then sh("kill " .. pid) end
  end
end

local function capture(cmd)
  local p = assert(io.popen(cmd))
  local s = p:read("*a")
  p:close()
  return s
end

local function median(t)
  table.sort(t)
  return t[math.ceil(#t / 2)]
end

local rows = {}
local function row(what, compared, value, target, ok, detail)
  rows[#rows + 1] = { what, compared, value, target, ok == nil and "-" or (ok and "met" or "MISSED"), detail }
  io.stderr:write(string.format("  %-58s %s  (%s)\n", what, value, detail or ""))
end

-- ---- a token array like the API sends ----
local function tokens_json(n)
  local t = {}
  for i = 1, n do
    t[i] = string.format('{"id":"asp_%08d","label":"token number %d","createdAt":"2024-01-%02dT10:00:00.000Z",' ..
                         '"lastAccess":"2024-06-%02dT12:30:00.000Z"}', i, i, i % 28 + 1, i % 28 + 1)
  end
  return "[" .. table.concat(t, ",") .. "]"
end

-- ---- nginx serving a static token list over http and https ----
local nginx = {}
function nginx.start()
  sh("mkdir -p '" .. WORK .. "/nginx/logs'")
  local cert, key = WORK .. "/cert.pem", WORK .. "/key.pem"
  if not io.open(cert) then
    assert(sh("openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=127.0.0.1 " ..
              "-addext subjectAltName=IP:127.0.0.1 -keyout '" .. key .. "' -out '" .. cert .. "' 2>/dev/null"),
           "openssl could not make a test certificate")
  end
  local body = tokens_json(3):gsub("'", "")
  local hp, sp = free_port(), free_port()
  local conf = ([[
daemon off;
master_process off;
worker_processes 1;
pid W/nginx/nginx.pid;
error_log W/nginx/logs/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path W/nginx/body;
  proxy_temp_path W/nginx/proxy;
  fastcgi_temp_path W/nginx/fastcgi;
  uwsgi_temp_path W/nginx/uwsgi;
  scgi_temp_path W/nginx/scgi;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:HP;
    listen 127.0.0.1:SP ssl;
    ssl_certificate W/cert.pem;
    ssl_certificate_key W/key.pem;
    default_type application/json;
    location / { return 200 'BODY'; }
  }
}
]]):gsub("W/", WORK .. "/"):gsub("HP", hp):gsub("SP", sp):gsub("BODY", body)
  local f = assert(io.open(WORK .. "/nginx/nginx.conf", "w"))
  f:write(conf)
  f:close()
  assert(sh("nginx -p '" .. WORK .. "/nginx' -c '" .. WORK .. "/nginx/nginx.conf' -e '" .. WORK ..
            "/nginx/logs/error.log' >/dev/null 2>&1 &"))
  nginx.http = "http://127.0.0.1:" .. hp
  nginx.https = "https://127.0.0.1:" .. sp
  nginx.cert = cert
  if not shell.wait_port(sp, 4) then error("nginx did not start") end
end

function nginx.stop()
  kill_pidfile(WORK .. "/nginx/nginx.pid")
end

local ACCOUNT = "557057:4f9acfd2-6155-419b-8de5-5b5cf27a59a0"

local function c_loop(base, n, ca)
  local url = base .. "/users/" .. ACCOUNT .. "/manage/api-tokens"
  local out = capture("'" .. CURL_LOOP .. "' '" .. url .. "' " .. n .. (ca and (" '" .. ca .. "'") or ""))
  return (assert(tonumber(out), "curl_loop failed"))
end

local function atl_loop(client, n)
  local t0 = now()
  for _ = 1, n do
    local tokens, err = client:tokens(ACCOUNT)
    if not tokens then error(tostring(err)) end
  end
  return now() - t0
end

-- best of alternating runs on each side, so that a burst of load elsewhere hits both alike
local function side_by_side(a, b)
  local ta, tb = math.huge, math.huge
  for _ = 1, ROUNDS do
    ta = math.min(ta, a())
    tb = math.min(tb, b())
  end
  return ta, tb
end

local function bench_sequential()
  local client = atladmin.new { token = KEY, base_url = nginx.http }
  atl_loop(client, 200)
  local tc, ta = side_by_side(function() return c_loop(nginx.http, N_SEQ) end,
                              function() return atl_loop(client, N_SEQ) end)
  local r = tc / ta
  row("sequential tokens() over HTTP, throughput", "C loop on libcurl", string.format("%.2f of the C loop", r),
      ">= 0.90", r >= 0.90, string.format("%d calls: C %.0f/s, atladmin %.0f/s", N_SEQ, N_SEQ / tc, N_SEQ / ta))
  client:close()

  client = atladmin.new { token = KEY, base_url = nginx.https, ca_file = nginx.cert }
  atl_loop(client, 100)
  tc, ta = side_by_side(function() return c_loop(nginx.https, N_TLS, nginx.cert) end,
                        function() return atl_loop(client, N_TLS) end)
  r = tc / ta
  row("sequential tokens() over HTTPS (verified), throughput", "C loop on libcurl, HTTPS",
      string.format("%.2f of the C loop", r), ">= 0.90", r >= 0.90,
      string.format("%d calls: C %.0f/s, atladmin %.0f/s", N_TLS, N_TLS / tc, N_TLS / ta))

  local https = require "ssl.https"
  local ltn12 = require "ltn12"
  local url = nginx.https .. "/users/" .. ACCOUNT .. "/manage/api-tokens"
  local function by_hand()
    local chunks = {}
    local _, code = https.request {
      url = url, sink = ltn12.sink.table(chunks), cafile = nginx.cert, verify = "peer",
      protocol = "any", options = { "all", "no_sslv2", "no_sslv3" },
      headers = { authorization = "Bearer " .. KEY, accept = "application/json" },
    }
    assert(code == 200, "luasec request failed: " .. tostring(code))
    return cjson.decode(table.concat(chunks))
  end
  by_hand()
  local t0 = now()
  for _ = 1, N_SEC do by_hand() end
  local per_sec = (now() - t0) / N_SEC
  t0 = now()
  for _ = 1, N_SEC do assert(client:tokens(ACCOUNT)) end
  local per_atl = (now() - t0) / N_SEC
  r = per_sec / per_atl
  row("sequential tokens() over HTTPS, speed-up", "luasocket+luasec https.request + cjson",
      string.format("%.1fx faster", r), ">= 10x", r >= 10,
      string.format("%d calls: luasec %.2f ms/call, atladmin %.3f ms/call", N_SEC, per_sec * 1e3, per_atl * 1e3))
  client:close()
end

local function bench_decode()
  local body = tokens_json(10000)
  local reply = { url = "http://127.0.0.1/x", status = 200, body = body, content_type = "application/json" }
  local decode = atladmin.protocol.reply
  local v = decode("tokens", reply)
  assert(#v == 10000 and v[10000].id == "asp_00010000")
  assert(#cjson.decode(body) == 10000)
  local ta, tc = side_by_side(function()
    local t0 = now()
    for _ = 1, N_DECODE do decode("tokens", reply) end
    return now() - t0
  end, function()
    local t0 = now()
    for _ = 1, N_DECODE do cjson.decode(body) end
    return now() - t0
  end)
  local r = ta / tc
  row("decoding a 10,000-token response into Lua tables", "cjson.decode of the same bytes",
      string.format("%.2fx its time", r), "<= 1.5x", r <= 1.5,
      string.format("%d KiB: atladmin %.1f ms, cjson %.1f ms", math.floor(#body / 1024),
                    ta / N_DECODE * 1e3, tc / N_DECODE * 1e3))
end

local function start_fake()
  local portfile = WORK .. "/fake.port"
  os.remove(portfile)
  assert(sh("'" .. FAKE .. "' --port 0 --port-file '" .. portfile .. "' --key " .. KEY .. " --sample " .. N_ACCOUNTS ..
            " --latency-ms " .. LATENCY_MS .. " --page-size 1000 --quiet > '" .. WORK ..
            "/fake.out' 2>&1 & echo $! > '" .. WORK .. "/fake.pid'"))
  for _ = 1, 250 do
    local f = io.open(portfile)
    if f then
      local port = f:read("*n")
      f:close()
      if port then return "http://127.0.0.1:" .. port end
    end
    socket.sleep(0.02)
  end
  error("atladmin-fake did not start")
end

local function bench_concurrent()
  local url = start_fake()
  local client = atladmin.new { token = KEY, base_url = url, timeout = 30 }
  local ids = {}
  local page = assert(client:org_users_page("sample-org"))
  for _, u in ipairs(page.data) do ids[#ids + 1] = u.account_id end
  assert(#ids == N_ACCOUNTS, "expected " .. N_ACCOUNTS .. " accounts, got " .. #ids)
  local t0 = now()
  local n, failed = 0, 0
  for _, _, err in client:each_tokens(ids, { concurrency = CONCURRENCY }) do
    n = n + 1
    if err then failed = failed + 1 end
  end
  local t = now() - t0
  assert(n == N_ACCOUNTS and failed == 0, "each_tokens: " .. failed .. " failures")
  local ideal = N_ACCOUNTS * LATENCY_MS / 1000 / CONCURRENCY
  local r = t / ideal
  row(string.format("each_tokens over %d accounts, latency %d ms, concurrency %d", N_ACCOUNTS, LATENCY_MS,
                    CONCURRENCY), "ideal N x latency / concurrency", string.format("%.2fx ideal", r), "<= 1.25x",
      r <= 1.25, string.format("%.3f s, ideal %.3f s; sequential would be %.1f s", t, ideal,
                               N_ACCOUNTS * LATENCY_MS / 1000))
  client:close()
  kill_pidfile(WORK .. "/fake.pid")
end

local function rss_kib()
  local f = io.open("/proc/self/status")
  local s = f:read("*a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)"))
end

local function bench_rss()
  local client = atladmin.new { token = KEY, base_url = nginx.http }
  for _ = 1, 2000 do assert(client:tokens(ACCOUNT)) end
  collectgarbage()
  collectgarbage()
  local before = rss_kib()
  for i = 1, N_RSS do
    local tokens = client:tokens(ACCOUNT)
    if not tokens then error("call " .. i .. " failed") end
  end
  collectgarbage()
  collectgarbage()
  local growth = (rss_kib() - before) / 1024
  row(string.format("RSS growth over %d sequential calls", N_RSS), "-", string.format("%.2f MiB", growth),
      "< 2 MiB", growth < 2, "after 2,000 warm-up calls and a full GC on both ends")
  client:close()
end

-- each_tokens pulls ids from an iterator as slots free up: memory stays flat however many accounts
local function bench_stream_rss()
  local client = atladmin.new { token = KEY, base_url = nginx.http }
  local function ids(n)
    local i = 0
    return function()
      i = i + 1
      if i <= n then return string.format("557057:%08d", i) end
    end
  end
  for _ in client:each_tokens(ids(2000), { concurrency = CONCURRENCY }) do end
  collectgarbage()
  collectgarbage()
  local before, peak, n = rss_kib(), 0, 0
  local t0 = now()
  for _, tokens in client:each_tokens(ids(N_RSS), { concurrency = CONCURRENCY }) do
    n = n + 1
    if not tokens then error("each_tokens: account " .. n .. " failed") end
    if n % 10000 == 0 then
      local r = rss_kib()
      if r > peak then peak = r end
    end
  end
  local t = now() - t0
  collectgarbage()
  collectgarbage()
  local growth = (math.max(peak, rss_kib()) - before) / 1024
  row(string.format("RSS growth during each_tokens over %d accounts", N_RSS), "-", string.format("%.2f MiB", growth),
      "< 2 MiB", growth < 2, string.format("peak sampled every 10,000 results; %.0f accounts/s at concurrency %d",
                                         N_RSS / t, CONCURRENCY))
  client:close()
end

local function bench_startup()
  local lua = os.getenv("ATLADMIN_LUA") or "lua5.4"
  local script = WORK .. "/startup.lua"
  local f = assert(io.open(script, "w"))
  f:write([[
local socket = require "socket"
local t0 = socket.gettime()
local atladmin = require "atladmin"
local c = atladmin.new { token = "k" }
io.write(string.format("%.6f", socket.gettime() - t0))
c:close()
]])
  f:close()
  local floor = WORK .. "/startup-libcurl.lua"
  f = assert(io.open(floor, "w"))
  f:write([[
local socket = require "socket"
local t0 = socket.gettime()
assert(package.loadlib("libcurl.so.4", "*"))
io.write(string.format("%.6f", socket.gettime() - t0))
]])
  f:close()
  local times, libcurl = {}, {}
  for i = 1, N_STARTUP do
    times[i] = assert(tonumber(capture(lua .. " '" .. script .. "'")))
    libcurl[i] = assert(tonumber(capture(lua .. " '" .. floor .. "'")))
  end
  local t = median(times) * 1000
  row('require "atladmin" + new{}', "-", string.format("%.2f ms", t), "< 5 ms", t < 5,
      string.format("median of %d fresh %s processes; loading libcurl.so.4 and its libraries alone takes %.2f ms",
                    N_STARTUP, lua, median(libcurl) * 1000))
end

local function machine()
  local cpu = capture("grep -m1 'model name' /proc/cpuinfo"):match(":%s*(.-)%s*$") or "?"
  local cores = capture("nproc"):match("%d+") or "?"
  return string.format("%s, %s cores; %s; libcurl %s", cpu, cores,
                       capture("uname -sr"):gsub("%s+$", ""), atladmin.curl_version())
end

io.stderr:write("atladmin bench" .. (SMOKE and " (smoke: small counts, figures not meaningful)" or "") .. "\n")
sh("mkdir -p '" .. WORK .. "'")
nginx.start()
local ok, err = xpcall(function()
  bench_sequential()
  bench_decode()
  bench_rss()
  bench_stream_rss()
end, debug.traceback)
nginx.stop()
if not ok then error(err, 0) end
bench_concurrent()
bench_startup()

print("| what | compared with | result | target | |")
print("|---|---|---|---|---|")
for _, r in ipairs(rows) do
  print(string.format("| %s | %s | %s | %s | %s |", r[1], r[2], r[3], r[4], r[5]))
end
print("")
print("details:")
for _, r in ipairs(rows) do print("- " .. r[1] .. ": " .. (r[6] or "")) end
print("")
print("machine: " .. machine())
print("command: " .. (SMOKE and "make bench-smoke" or "make bench") .. " (" .. _VERSION .. ")")
