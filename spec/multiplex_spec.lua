-- Queue connections against a real nginx over HTTPS: with HTTP/2 every request of a batch is a
-- stream on one shared connection; with HTTP/1.1 the batch opens at most `concurrency`
-- connections and reuses them. nginx answers each request with its connection number.
local atladmin = require "atladmin"
local shell = require "spec.support.shell"

local sh = shell.execute

local read, free_port = shell.read, shell.free_port

describe("queue connections", function()
  local dir, h1, h2

  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(sh("mkdir -p '" .. dir .. "/logs'"))
    assert(sh("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 " ..
       "-addext subjectAltName=IP:127.0.0.1 -keyout '" .. dir .. "/key.pem' -out '" .. dir ..
       "/cert.pem' >/dev/null 2>&1"))
    h1, h2 = free_port(), free_port()
    local conf = ([[
daemon off;
master_process off;
worker_processes 1;
pid D/nginx.pid;
error_log D/logs/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path D/body;
  proxy_temp_path D/proxy;
  fastcgi_temp_path D/fastcgi;
  uwsgi_temp_path D/uwsgi;
  scgi_temp_path D/scgi;
  ssl_certificate D/cert.pem;
  ssl_certificate_key D/key.pem;
  default_type application/json;
  server {
    listen 127.0.0.1:H1 ssl;
    listen 127.0.0.1:H2 ssl http2;
    location / { return 200 '[{"id":"conn-$connection","label":"$server_protocol","createdAt":"x"}]'; }
  }
}
]]):gsub("D/", dir .. "/"):gsub("H1", tostring(h1)):gsub("H2", tostring(h2))
    local f = assert(io.open(dir .. "/nginx.conf", "w"))
    f:write(conf)
    f:close()
    sh("nginx -p '" .. dir .. "' -c '" .. dir .. "/nginx.conf' -e '" .. dir .. "/logs/error.log' >/dev/null 2>&1 &")
    shell.wait_port(h2, 4)
  end)

  teardown(function()
    local pid = read(dir .. "/nginx.pid")
    if pid then sh("kill " .. pid:match("%d+")) end
    sh("rm -rf '" .. dir .. "'")
  end)

  -- Runs n token calls on one queue; returns the set of connections used and the protocols.
  local function batch(port, n, concurrency)
    local client = atladmin.new { token = "k", base_url = "https://127.0.0.1:" .. port, ca_file = dir .. "/cert.pem" }
    local q = client:queue { concurrency = concurrency }
    for i = 1, n do q:tokens("557057:acct-" .. i) end
    local conns, nconns, protocols, done = {}, 0, {}, 0
    while q:pending() > 0 do
      for _, d in ipairs(q:step(5)) do
        assert.is_nil(d.err)
        done = done + 1
        local t = d.value[1]
        if not conns[t.id] then
          conns[t.id] = true
          nconns = nconns + 1
        end
        protocols[t.label] = true
      end
    end
    q:close()
    client:close()
    return nconns, protocols, done
  end

  it("multiplexes a batch on one HTTP/2 connection", function()
    local nconns, protocols, done = batch(h2, 40, 8)
    assert.equal(40, done)
    assert.same({ ["HTTP/2.0"] = true }, protocols)
    assert.equal(1, nconns)
  end)

  it("opens at most `concurrency` HTTP/1.1 connections and reuses them", function()
    local nconns, protocols, done = batch(h1, 40, 4)
    assert.equal(40, done)
    assert.same({ ["HTTP/1.1"] = true }, protocols)
    assert.truthy(nconns >= 1 and nconns <= 4, nconns .. " connections")
  end)
end)
