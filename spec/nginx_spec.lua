-- atladmin inside nginx's LuaJIT (Debian nginx-light + libnginx-mod-http-lua): starts nginx on
-- a loopback port with examples/nginx.conf (paths and port rewritten), lists and revokes
-- tokens through it against the fake Admin API, checks the HTTP answers, stops nginx; once
-- for each way of installing atladmin (in-tree build, make install, LuaRocks tree); then the
-- same with examples/nginx-resty.conf, where atladmin.resty makes the calls on cosockets.
-- Runs in the luajit pass of spec/run only (it needs the LuaJIT build, build/luajit).
local sh = require "spec.support.shell"
local layouts = require "spec.support.layouts"

if os.getenv("ATLADMIN_LUA_VERSION") ~= "luajit" then return end

local Fake = require "spec.support.fake"
local cjson = require "cjson"
local http = require "socket.http"
local ltn12 = require "ltn12"
local socket = require "socket"

local NGINX = "/usr/sbin/nginx"
local MODULES = "/usr/lib/nginx/modules/"
local KEY = "nginx-spec-key-51e0"
local ALICE = "557057:4f9acfd2-6155-419b-8de5-5b5cf27a59a0"
local TOP = os.getenv("ATLADMIN_TOP") or "."

local function state()
  return { accounts = {
    [ALICE] = { tokens = {
      { id = "asp_keep", label = "CI deploy", createdAt = "2024-01-01T00:00:00.000Z",
        lastAccess = "2024-02-01T00:00:00.000Z" },
      { id = "asp_gone", label = "old laptop", createdAt = "2023-01-01T00:00:00.000Z" },
    } },
  } }
end

local function available()
  return sh.read(NGINX) and sh.read(MODULES .. "ngx_http_lua_module.so")
    and sh.read(MODULES .. "ndk_http_module.so")
end

local function request(method, url)
  local chunks = {}
  http.TIMEOUT = 20
  local ok, status, headers = http.request {
    url = url, method = method, sink = ltn12.sink.table(chunks),
    headers = { ["content-length"] = method == "POST" and "0" or nil },
  }
  assert(ok, status)
  return status, table.concat(chunks), headers
end

-- nginx with prefix dir, config dir/nginx.conf and error log errlog (a path): output, exit code
local function run_nginx(dir, errlog, prefix, args)
  return sh.run(("%s %s -p %s/ -c %s/nginx.conf -e %s %s"):format(prefix or "", NGINX,
    sh.quote(dir), sh.quote(dir), sh.quote(errlog), args or ""))
end

-- After the master has forked: waits (up to 15 s) until a worker accepts on 127.0.0.1:port.
-- errlog() gives nginx's error log for the failure message.
local function await_listening(port, errlog)
  if not sh.wait_port(port, 15) then assert(false, "nginx is not listening: " .. errlog()) end
end

-- Waits (up to 10 s) until process pid has gone.
local function await_exit(pid)
  local deadline = socket.gettime() + 10
  while sh.read("/proc/" .. pid .. "/stat") and socket.gettime() < deadline do socket.sleep(0.05) end
end

describe("atladmin in nginx (ngx_lua, LuaJIT)", function()
  if not available() then
    it("needs nginx with the Lua module", function()
      pending("nginx or its Lua module is not installed (Debian: nginx-light libnginx-mod-http-lua)")
    end)
    return
  end

  local fake = Fake.fixture { key = KEY, state = state, lazy = true, reset = false }
  local tmp = sh.tmpdir("nginx")

  lazy_teardown(function()
    sh.rmdir(tmp)
  end)

  for i, layout in ipairs(layouts.for_abi("luajit", tmp)) do
    describe("loading atladmin from the " .. layout.name, function()
      local dir, port, base

      local function nginx_cmd(prefix, args) return run_nginx(dir, dir .. "/error.log", prefix, args) end
      local function nginx(args) return nginx_cmd(nil, args) end
      local function errlog() return sh.read(dir .. "/error.log") or "" end

      lazy_setup(function()
        layout.prepare()
        fake:set_state(state())
        fake:clear_requests()
        dir = tmp .. "/nginx-" .. i
        assert(sh.run("mkdir -p " .. sh.quote(dir)))
        port = sh.free_port()
        base = "http://127.0.0.1:" .. port

        local conf = assert(sh.read(TOP .. "/examples/nginx.conf"))
        local n1, n2, n3
        conf, n1 = conf:gsub("127%.0%.0%.1:8080", "127.0.0.1:" .. port)
        conf, n2 = conf:gsub("/usr/local/share/lua/5%.1/", layout.luadir .. "/")
        conf, n3 = conf:gsub("/usr/local/lib/lua/5%.1/", layout.libdir .. "/")
        assert(n1 >= 1 and n2 == 2 and n3 == 1 and conf:find("listen 127.0.0.1:" .. port .. ";", 1, true),
          "examples/nginx.conf changed shape: update this spec")
        assert(conf:find("lua_package_path \"[^\"]*;;\""), "lua_package_path must end with ;;")
        assert(conf:find("lua_package_cpath \"[^\"]*;;\""), "lua_package_cpath must end with ;;")
        -- where the worker found atladmin (this location is the spec's, not the example's)
        conf = conf:gsub("default_type application/json;\n", "%0" .. [[
        location = /_where {
            content_by_lua_block {
                require "atladmin"
                ngx.say(package.searchpath("atladmin", package.path))
                ngx.say(package.searchpath("atladmin.core", package.cpath))
            }
        }
]], 1)
        -- as root, workers would run as nobody and could not read a checkout under /root
        if sh.run("id -u"):match("^0%s") then conf = "user root;\n" .. conf end
        sh.write(dir .. "/nginx.conf", conf)

        local out, code = nginx_cmd(("env ATLASSIAN_ADMIN_TOKEN=%s ATLADMIN_BASE_URL=%s"):format(KEY, fake.url))
        assert(code == 0, "nginx did not start: " .. out .. errlog())
        await_listening(port, errlog)
      end)

      lazy_teardown(function()
        local pid = dir and tonumber(sh.read(dir .. "/nginx.pid") or "")
        if pid then
          nginx("-s stop")
          await_exit(pid)
        end
      end)

      it("loads atladmin from there", function()
        local status, body = request("GET", base .. "/_where")
        assert.equal(200, status, body .. errlog())
        local lua_file, so_file = body:match("^([^\n]+)\n([^\n]+)\n$")
        assert.equal(layout.luadir .. "/", lua_file:sub(1, #layout.luadir + 1))
        assert.equal(layout.libdir .. "/atladmin/core.so", so_file)
      end)

      it("lists an account's tokens as JSON", function()
        local status, body, headers = request("GET", base .. "/tokens?account=" .. ALICE)
        assert.equal(200, status, body .. errlog())
        assert.matches("application/json", headers["content-type"], 1, true)
        local tokens = cjson.decode(body)
        assert.equal(2, #tokens)
        assert.same({ "asp_keep", "CI deploy", "2024-02-01T00:00:00.000Z" },
          { tokens[1].id, tokens[1].label, tokens[1].lastAccess })
        assert.equal("asp_gone", tokens[2].id)
        assert.is_nil(tokens[2].lastAccess)
        -- the worker really went to the Admin API, with the key from the environment
        local reqs = fake:requests { method = "GET" }
        assert.equal("/users/" .. ALICE .. "/manage/api-tokens", reqs[#reqs].path)
        assert.equal("Bearer " .. KEY, reqs[#reqs].headers.authorization)
      end)

      it("revokes a token and the next listing no longer has it", function()
        local status, body = request("POST", base .. "/revoke?account=" .. ALICE .. "&token=asp_gone")
        assert.equal(200, status, body .. errlog())
        assert.same({ revoked = "asp_gone", status = 204 }, cjson.decode(body))
        assert.equal(1, #fake:requests { method = "DELETE",
          path = "/users/" .. ALICE .. "/manage/api-tokens/asp_gone" })
        status, body = request("GET", base .. "/tokens?account=" .. ALICE)
        assert.equal(200, status)
        local tokens = cjson.decode(body)
        assert.equal(1, #tokens)
        assert.equal("asp_keep", tokens[1].id)
      end)

      it("passes the Admin API's 404 on as a JSON error", function()
        local status, body = request("POST", base .. "/revoke?account=" .. ALICE .. "&token=asp_nope")
        assert.equal(404, status, body)
        local err = cjson.decode(body).error
        assert.equal("http", err.kind)
        assert.equal(404, err.status)
        assert.not_matches(KEY, body, 1, true)
      end)

      it("refuses GET on /revoke and a missing account", function()
        assert.equal(405, (request("GET", base .. "/revoke?account=" .. ALICE .. "&token=asp_keep")))
        assert.equal(400, (request("GET", base .. "/tokens")))
        assert.equal(1, #fake:state().accounts[ALICE].tokens)
      end)

      it("stops cleanly", function()
        local pid = assert(tonumber(sh.read(dir .. "/nginx.pid") or ""), "no pid file")
        local out, code = nginx("-s stop")
        assert.equal(0, code, out)
        await_exit(pid)
        assert.is_nil(sh.read("/proc/" .. pid .. "/stat"), "nginx master still running")
        assert.not_matches("%[emerg%]", errlog())
      end)

      -- examples/nginx-resty.conf: the same layout through atladmin.resty on nginx's cosockets
      describe("with examples/nginx-resty.conf (atladmin.resty)", function()
        local rdir, rbase

        local function rnginx(prefix, args) return run_nginx(rdir, rdir .. "/logs/error.log", prefix, args) end
        local function rerrlog() return sh.read(rdir .. "/logs/error.log") or "" end

        lazy_setup(function()
          layout.prepare()
          fake:set_state(state())
          rdir = tmp .. "/nginx-resty-" .. i
          assert(sh.run("mkdir -p " .. sh.quote(rdir .. "/logs")))
          local rport = sh.free_port()
          rbase = "http://127.0.0.1:" .. rport
          local conf = assert(sh.read(TOP .. "/examples/nginx-resty.conf"))
          local n1, n2, n3, n4
          conf, n1 = conf:gsub("listen 127%.0%.0%.1:8089;", "listen 127.0.0.1:" .. rport .. ";")
          conf, n2 = conf:gsub("/opt/atladmin/lua/", layout.luadir .. "/")
          conf, n3 = conf:gsub("/opt/atladmin/build/luajit/", layout.libdir .. "/")
          -- nginx puts itself in the background, so the spec can stop it by its pid file
          conf, n4 = conf:gsub("\ndaemon off;", "\ndaemon on;")
          assert(n1 == 1 and n2 == 2 and n3 == 1 and n4 == 1,
            "examples/nginx-resty.conf changed shape: update this spec")
          if sh.run("id -u"):match("^0%s") then conf = "user root;\n" .. conf end
          sh.write(rdir .. "/nginx.conf", conf)
          local out, code = rnginx(("env ATLASSIAN_ADMIN_TOKEN=%s ATLADMIN_BASE_URL=%s"):format(KEY, fake.url))
          assert(code == 0, "nginx did not start: " .. out .. rerrlog())
          await_listening(rport, rerrlog)
        end)

        lazy_teardown(function()
          local pid = rdir and tonumber(sh.read(rdir .. "/logs/nginx.pid") or "")
          if pid then
            rnginx(nil, "-s stop")
            await_exit(pid)
          end
        end)

        it("lists an account's tokens through atladmin.resty", function()
          fake:clear_requests()
          local status, body = request("GET", rbase .. "/tokens?account=" .. ALICE)
          assert.equal(200, status, body .. rerrlog())
          assert.equal("asp_keep\tCI deploy\t2024-02-01T00:00:00.000Z\nasp_gone\told laptop\tnever used\n", body)
          local reqs = fake:requests { method = "GET" }
          assert.equal(1, #reqs)
          assert.equal("/users/" .. ALICE .. "/manage/api-tokens", reqs[1].path)
          assert.equal("Bearer " .. KEY, reqs[1].headers.authorization)
        end)

        it("passes the Admin API's 404 on, without the key", function()
          local status, body = request("GET", rbase .. "/tokens?account=557057:not-managed")
          assert.equal(404, status, body)
          assert.matches("404", body)
          assert.not_matches(KEY, body, 1, true)
        end)

        it("stops cleanly", function()
          local pid = assert(tonumber(sh.read(rdir .. "/logs/nginx.pid") or ""), "no pid file")
          local out, code = rnginx(nil, "-s stop")
          assert.equal(0, code, out)
          await_exit(pid)
          assert.is_nil(sh.read("/proc/" .. pid .. "/stat"), "nginx master still running")
          assert.not_matches("%[emerg%]", rerrlog())
          assert.not_matches("%[error%]", rerrlog())
        end)
      end)
    end)
  end
end)
