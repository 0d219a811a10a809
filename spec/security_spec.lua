-- Security defaults, each tried against a real server on loopback: which base URLs and keys are
-- refused, TLS verification that nothing turns off, ca_file adding trust, redirects never
-- followed, the key absent from every error and log, bounded bodies, no proxy for clear text.
local atladmin = require "atladmin"
local Fake = require "spec.support.fake"
local TLS = require "spec.support.tls"
local Child = require "spec.support.child"

local KEY = "sec-KEY-6c1d0e9b4a7f2e85"
local ALICE = "557057:4f9acfd2-6155-419b-8de5-5b5cf27a59a0"
local TOKENS_PATH = "/users/" .. ALICE .. "/manage/api-tokens"

local function state()
  return { accounts = { [ALICE] = { tokens = {
    { id = "asp_1", label = "one", createdAt = "2024-01-01T00:00:00.000Z" },
    { id = "asp_2", label = "two", createdAt = "2024-01-01T00:00:00.000Z" },
  } } } }
end

local function has_key(s)
  return tostring(s):find(KEY, 1, true) ~= nil
end

-- Every string reachable from an error object, so that no field can hide the key.
local function all_text(err)
  local parts = { tostring(err) }
  for k, v in pairs(err) do parts[#parts + 1] = tostring(k) .. "=" .. tostring(v) end
  return table.concat(parts, "\n")
end

-- The module path settings a child interpreter needs to load this build.
local function child_prelude()
  return ("package.path = %q .. ';' .. package.path\npackage.cpath = %q .. ';' .. package.cpath\n")
    :format(package.path, package.cpath)
end

describe("security", function()
  local fake = Fake.fixture { key = KEY, state = state }

  local function new(opts)
    local o = { token = KEY, base_url = fake.url, retries = 0, timeout = 5 }
    for k, v in pairs(opts or {}) do o[k] = v end
    return atladmin.new(o)
  end

  describe("base_url", function()
    local refused = {
      { "http://example.com", "not loopback" },
      { "http://10.0.0.1:8080", "not loopback" },
      { "http://127.0.0.1.example.com", "not loopback" },
      { "http://localhost.example.com", "not loopback" },
      { "http://[::2]", "not loopback" },
      { "HTTP://EXAMPLE.COM", "not loopback" },
      { "file:///etc/passwd", "must use https" },
      { "ftp://127.0.0.1/", "must use https" },
      { "gopher://127.0.0.1:70/", "must use https" },
      { "ldap://127.0.0.1/", "must use https" },
      { "dict://127.0.0.1/", "must use https" },
      { "scp://127.0.0.1/x", "must use https" },
      { "telnet://127.0.0.1/", "must use https" },
      { "api.atlassian.com", "absolute URL" },
      { "https://user:pass@api.atlassian.com", "user name or password" },
      { "https://api.atlassian.com/?x=1", "query or fragment" },
      { "https://api.atlassian.com/#frag", "query or fragment" },
      { "", "absolute URL" },
    }
    for _, c in ipairs(refused) do
      it("refuses " .. ("%q"):format(c[1]), function()
        local ok, err = pcall(atladmin.new, { token = KEY, base_url = c[1] })
        assert.is_false(ok)
        assert.matches("base_url", err, 1, true)
        assert.matches(c[2], err, 1, true)
        assert.is_false(has_key(err))
      end)
    end

    local allowed = { "http://127.0.0.1:1", "http://127.9.8.7", "http://localhost:8080", "http://LOCALHOST",
                      "http://[::1]:9", "https://api.atlassian.com", "https://example.com/prefix/" }
    for _, u in ipairs(allowed) do
      it("accepts " .. u, function()
        local c = atladmin.new { token = KEY, base_url = u }
        assert.matches("^https?://", c:base_url())
        c:close()
      end)
    end

    it("refuses a base_url with an embedded NUL instead of cutting it", function()
      local ok, err = pcall(atladmin.new, { token = KEY, base_url = "http://127.0.0.1\0.example.com" })
      assert.is_false(ok)
      assert.matches("NUL", err)
    end)
  end)

  describe("the key", function()
    for _, bad in ipairs({ "abc\r\nX-Evil: 1", "abc\ndef", "abc\rdef", "tab\there", "del\127" }) do
      local shown = bad:gsub("%c", function(ch) return ("\\%d"):format(ch:byte()) end)
      it("is refused with a control character: " .. shown, function()
        local ok, err = pcall(atladmin.new, { token = bad, base_url = fake.url })
        assert.is_false(ok)
        assert.matches("control character", err)
        assert.is_nil(err:find(bad, 1, true))
      end)
    end

    it("is refused with an embedded NUL rather than sent cut short", function()
      local ok, err = pcall(atladmin.new, { token = "good\0rest", base_url = fake.url })
      assert.is_false(ok)
      assert.matches("NUL", err)
    end)

    it("is sent only as the bearer Authorization header", function()
      local c = new()
      assert(c:tokens(ALICE))
      c:close()
      local reqs = fake:requests()
      assert.equal(1, #reqs)
      assert.equal("Bearer " .. KEY, reqs[1].headers.authorization)
      for name, v in pairs(reqs[1].headers) do
        if name ~= "authorization" then assert.is_false(has_key(v), name) end
      end
      assert.is_false(has_key(reqs[1].path))
    end)

    it("never shows in tostring(client), open or closed", function()
      local c = new()
      assert.is_false(has_key(tostring(c)))
      c:close()
      assert.is_false(has_key(tostring(c)))
    end)

    it("is redacted from every field of an error whose body, message and Location echo it", function()
      local c = new()
      fake:fault { path = TOKENS_PATH, type = "status", status = 401,
                   body = '{"key":"' .. KEY .. '","message":"bad key ' .. KEY .. '"}' }
      local v, err = c:tokens(ALICE)
      assert.is_nil(v)
      assert.equal(401, err.status)
      assert.is_false(has_key(all_text(err)))
      assert.matches("***", err.body, 1, true)
      assert.matches("***", err.message, 1, true)

      fake:fault { path = TOKENS_PATH, type = "status", status = 302,
                   headers = { Location = "https://elsewhere.example/?k=" .. KEY } }
      v, err = c:tokens(ALICE)
      assert.is_nil(v)
      assert.is_false(has_key(all_text(err)))
      assert.matches("Location: https://elsewhere.example/?k=***", err.message, 1, true)
      c:close()
    end)

    it("leaves no prefix of itself where err.body is cut at 4 KiB", function()
      local c = new()
      for shift = 1, #KEY - 1 do
        -- the key straddles byte 4096 of the body by `shift` bytes
        local body = ("x"):rep(4096 - shift) .. KEY .. ("y"):rep(100)
        fake:fault { path = TOKENS_PATH, type = "status", status = 500, body = body }
        local _, err = c:tokens(ALICE)
        assert.is_false(has_key(err.body))
        assert.is_nil(err.body:find(KEY:sub(1, shift), 4096 - shift, true), "shift " .. shift)
        assert.matches("x***", err.body, 1, true)
      end
      c:close()
    end)

    it("leaves no prefix of itself where a long message or Location is cut", function()
      local c = new()
      for shift = 1, #KEY - 1, 3 do
        local msg = ("m"):rep(511 - shift) .. KEY .. "tail"
        fake:fault { path = TOKENS_PATH, type = "status", status = 400,
                     body = '{"key":"bad","message":"' .. msg .. '"}' }
        local _, err = c:tokens(ALICE)
        assert.is_nil(err.message:find(KEY:sub(1, shift), 511 - shift - 1, true), "message shift " .. shift)
        local loc = "https://elsewhere.example/" .. ("l"):rep(511 - 26 - shift) .. KEY
        fake:fault { path = TOKENS_PATH, type = "status", status = 302, headers = { Location = loc } }
        _, err = c:tokens(ALICE)
        assert.is_nil(err.location:find(KEY:sub(1, shift), 27, true), "location shift " .. shift)
        assert.is_nil(err.message:find(KEY:sub(1, shift), 60, true), "3xx message shift " .. shift)
        assert.is_false(has_key(all_text(err)))
      end
      c:close()
    end)

    it("leaves no prefix of itself where the body stops at max_body", function()
      local c = new { max_body = 1024 }
      local body = '["' .. ("z"):rep(1024 - 2 - 5) .. KEY .. ("w"):rep(2000) .. '"]'
      fake:fault { path = TOKENS_PATH, type = "truncate_chunked", body = body }
      local _, err = c:tokens(ALICE)
      assert.equal("transport", err.kind)
      assert.is_nil((err.body or ""):find(KEY:sub(1, 5), 1, true))
      c:close()
    end)

    describe("echoed in an escaped spelling", function()
      -- a key holding '/' and '+' (as base64 keys do); the server echoes it JSON-escaped
      local SLASHKEY = "sec/KEY+6c1d/0e9b=4a7f"
      local function json_u(s) -- every byte as \u00XX
        return (s:gsub(".", function(ch) return ("\\u%04x"):format(ch:byte()) end))
      end
      local function json_slash(s) return (s:gsub("/", "\\/")) end
      local function pct(s) return (s:gsub("[^%w]", function(ch) return ("%%%02X"):format(ch:byte()) end)) end
      local function err_for(key, status, body, headers)
        local c = new { token = key }
        fake:fault { path = TOKENS_PATH, type = "status", status = status, body = body, headers = headers }
        local v, err = c:tokens(ALICE)
        c:close()
        assert.is_nil(v)
        return err
      end
      local function shows(err, spelling)
        return all_text(err):find(spelling, 1, true) ~= nil
      end

      local spellings = {
        { "with / as \\/", json_slash },
        { "as \\u00XX escapes", json_u },
        { "as \\u00XX escapes with upper-case hex", function(s) return json_u(s):upper():gsub("\\U", "\\u") end },
        { "with some bytes escaped", function(s)
          return s:sub(1, 4) .. json_u(s:sub(5, 9)) .. json_slash(s:sub(10))
        end },
      }
      for _, sp in ipairs(spellings) do
        it("is hidden in err.body and err.message " .. sp[1], function()
          local echoed = sp[2](SLASHKEY)
          assert.is_nil(echoed:find(SLASHKEY, 1, true)) -- the spelling is not the plain key
          local body = '{"key":"unauthorized","message":"bad key ' .. echoed .. ' (' .. echoed .. ')"}'
          local err = err_for(SLASHKEY, 401, body)
          assert.is_false(shows(err, SLASHKEY))
          assert.is_false(shows(err, echoed))
          assert.equal('{"key":"unauthorized","message":"bad key *** (***)"}', err.body)
          assert.equal("bad key *** (***)", err.message)
        end)
      end

      it("is hidden percent-encoded in a Location", function()
        local loc = "https://elsewhere.example/?k=" .. pct(SLASHKEY) .. "&x=1"
        local err = err_for(SLASHKEY, 302, nil, { Location = loc })
        assert.is_false(shows(err, pct(SLASHKEY)))
        assert.equal("https://elsewhere.example/?k=***&x=1", err.location)
      end)

      it("is hidden with a non-ASCII key echoed as \\u escapes, surrogate pairs too", function()
        local key = "k\195\169y-\240\159\148\145-end" -- k, e acute, y, a key emoji
        local echoed = "k\\u00e9y-\\ud83d\\udd11-end"
        local err = err_for(key, 400, '{"message":"' .. echoed .. '"}')
        assert.equal('{"message":"***"}', err.body)
        assert.equal("***", err.message)
      end)

      it("leaves no escaped prefix of itself where a long Location is cut", function()
        local echoed = pct(SLASHKEY)
        for shift = 1, #echoed - 1, 2 do -- some cuts fall inside a %XX, some between two
          local head = "https://elsewhere.example/" .. ("l"):rep(511 - 26 - shift)
          local err = err_for(SLASHKEY, 302, nil, { Location = head .. echoed })
          assert.equal(head .. "***", err.location, "shift " .. shift)
          assert.is_nil(err.message:find(head .. echoed:sub(1, shift), 1, true), "shift " .. shift)
        end
      end)

      it("does not hide text that only looks like a part of the key", function()
        local err = err_for(SLASHKEY, 400, '{"message":"sec\\/KEY+6c1d\\/0e9b=4a7X and %2F \\\\u"}')
        assert.equal("sec/KEY+6c1d/0e9b=4a7X and %2F \\u", err.message)
        assert.matches("sec\\/KEY", err.body, 1, true)
      end)
    end)

    it("does not appear in the fake server's log", function()
      local c = new()
      assert(c:tokens(ALICE))
      c:tokens("nobody")
      c:close()
      local log = fake:log()
      assert.is_false(has_key(log))
    end)
  end)

  describe("redirects", function()
    local other

    setup(function()
      other = Fake.start { key = KEY, state = state() }
    end)

    teardown(function()
      if other then other:stop() end
    end)

    for _, status in ipairs({ 301, 302, 303, 307, 308 }) do
      it("are not followed: " .. status .. " is an http error naming the Location", function()
        local target = other.url .. TOKENS_PATH
        other:clear_requests()
        fake:fault { type = "status", status = status, headers = { Location = target }, count = 2 }
        local c = new()
        local v, err = c:tokens(ALICE)
        assert.is_nil(v)
        assert.equal("http", err.kind)
        assert.equal(status, err.status)
        assert.matches("redirect not followed (Location: " .. target .. ")", err.message, 1, true)
        assert.matches(target, tostring(err), 1, true)
        local ok, rerr = c:revoke(ALICE, "asp_1")
        assert.is_nil(ok)
        assert.equal(status, rerr.status)
        c:close()
        assert.equal(0, #other:requests(), "the other host received a request")
      end)
    end
  end)

  describe("response size", function()
    it("stops a body above max_body (8 MiB by default) with a transport error", function()
      local c = new()
      fake:fault { path = TOKENS_PATH, type = "big", bytes = 10 * 1024 * 1024 }
      local v, err = c:tokens(ALICE)
      assert.is_nil(v)
      assert.equal("transport", err.kind)
      assert.matches("larger than max_body", err.message)
      assert.equal(1, err.attempts)
      c:close()
    end)

    it("bounds a chunked body without a length in the same way", function()
      local c = new { max_body = 4096 }
      local body = '[' .. ('{"id":"a","label":"b","createdAt":"c"},'):rep(300) .. '{"id":"z"}]'
      fake:fault { path = TOKENS_PATH, type = "truncate_chunked", body = body }
      local v, err = c:tokens(ALICE)
      assert.is_nil(v)
      assert.equal("transport", err.kind)
      assert.matches("larger than max_body", err.message)
      assert.is_true(#(err.body or "") <= 4096 + 3)
      c:close()
    end)

    it("takes a body of exactly max_body", function()
      local c = new { max_body = 1024 }
      local item = '{"id":"i","label":"l","createdAt":"c"}'
      local body = "[" .. item
      while #body + #item + 2 <= 1024 do body = body .. "," .. item end
      body = body .. "]" .. (" "):rep(1024 - #body - 1)
      assert.equal(1024, #body)
      fake:fault { path = TOKENS_PATH, type = "status", status = 200, body = body }
      local v = assert(c:tokens(ALICE))
      assert.is_true(#v > 10)
      c:close()
    end)
  end)

  describe("proxies", function()
    it("are never used for clear-text http to loopback, even when the environment sets one", function()
      local proxy = Fake.start { key = KEY, state = state() }
      local code = child_prelude() .. ([[
        local atladmin = require "atladmin"
        local c = atladmin.new { token = %q, base_url = %q, retries = 0, timeout = 5 }
        local v, err = c:tokens(%q)
        print(v and ("tokens " .. #v) or tostring(err))
      ]]):format(KEY, fake.url, ALICE)
      local env = ("env http_proxy=%s HTTP_PROXY=%s all_proxy=%s no_proxy= NO_PROXY="):format(
        proxy.url, proxy.url, proxy.url)
      local out, ok = Child.run(code, env)
      local via_proxy = #proxy:requests()
      proxy:stop()
      assert.is_true(ok, out)
      assert.matches("tokens 2", out)
      assert.equal(0, via_proxy)
      assert.equal(1, #fake:requests())
    end)
  end)

  describe("TLS", function()
    local dir, a, b, wrong, tls_fake

    setup(function()
      if not TLS.available() then return end
      dir = TLS.tmpdir()
      a = TLS.make(dir, "a")
      b = TLS.make(dir, "b")
      wrong = TLS.make(dir, "wrong", "DNS:wrong.example")
      tls_fake = Fake.start { key = KEY, state = state(), tls_cert = a.cert, tls_key = a.key }
    end)

    teardown(function()
      if tls_fake then tls_fake:stop() end
      TLS.rmdir(dir)
    end)

    it("refuses a server whose CA is not trusted", function()
      assert.truthy(tls_fake, "openssl is needed")
      local c = atladmin.new { token = KEY, base_url = tls_fake.url, retries = 0, timeout = 5 }
      local v, err = c:tokens(ALICE)
      assert.is_nil(v)
      assert.equal("transport", err.kind)
      assert.equal(60, err.code) -- CURLE_PEER_FAILED_VERIFICATION
      assert.is_false(has_key(all_text(err)))
      c:close()
      assert.equal(0, #tls_fake:requests())
    end)

    it("trusts a server signed by a CA from ca_file", function()
      local c = atladmin.new { token = KEY, base_url = tls_fake.url, retries = 0, timeout = 5, ca_file = a.ca }
      local v = assert(c:tokens(ALICE))
      assert.equal(2, #v)
      c:close()
    end)

    it("still refuses when ca_file holds another CA", function()
      local c = atladmin.new { token = KEY, base_url = tls_fake.url, retries = 0, timeout = 5, ca_file = b.ca }
      local v, err = c:tokens(ALICE)
      assert.is_nil(v)
      assert.equal(60, err.code)
      c:close()
    end)

    it("checks the host name even for a trusted CA", function()
      local f = Fake.start { key = KEY, state = state(), tls_cert = wrong.cert, tls_key = wrong.key }
      local c = atladmin.new { token = KEY, base_url = f.url, retries = 0, timeout = 5, ca_file = wrong.ca }
      local v, err = c:tokens(ALICE)
      local seen = #f:requests()
      f:stop()
      c:close()
      assert.is_nil(v)
      assert.equal("transport", err.kind)
      assert.equal(60, err.code)
      assert.equal(0, seen)
    end)

    it("refuses a ca_file that is missing, empty or not PEM, at new()", function()
      local empty = dir .. "/empty.pem"
      local junk = dir .. "/junk.pem"
      io.open(empty, "w"):close()
      local f = io.open(junk, "w")
      f:write("-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n")
      f:close()
      for _, path in ipairs({ dir .. "/missing.pem", empty, junk, a.key }) do
        local ok, err = pcall(atladmin.new, { token = KEY, base_url = tls_fake.url, ca_file = path })
        assert.is_false(ok, path)
        assert.matches("ca_file", err)
      end
    end)

    it("adds ca_file to the system store instead of replacing it", function()
      -- The child sees a system store (/etc/ssl/certs) holding only CA "b", through a private
      -- mount namespace; the parent's file system is untouched.
      if not Child.works("unshare -rm") then
        pending("unshare -rm (user and mount namespaces) is not available here")
        return
      end
      local sys = dir .. "/system-certs"
      assert(os.execute("mkdir -p '" .. sys .. "' && cp '" .. b.ca .. "' '" .. sys .. "/ca-certificates.crt'"))
      local fake_b = Fake.start { key = KEY, state = state(), tls_cert = b.cert, tls_key = b.key }
      local code = child_prelude() .. ([[
        local atladmin = require "atladmin"
        local function try(url, ca)
          local c = atladmin.new { token = %q, base_url = url, retries = 0, timeout = 5, ca_file = ca }
          local v, err = c:tokens(%q)
          c:close()
          return v and "ok" or ("fail " .. tostring(err.code))
        end
        print("system-only", try(%q, nil), try(%q, nil))
        print("with-ca-file", try(%q, %q), try(%q, %q))
      ]]):format(KEY, ALICE, fake_b.url, tls_fake.url, fake_b.url, a.ca, tls_fake.url, a.ca)
      local prefix = ("unshare -rm sh -c %s sh"):format(Child.quote(
        "mount --bind " .. Child.quote(sys) .. " /etc/ssl/certs && exec \"$@\""))
      local out, ok = Child.run(code, prefix)
      fake_b:stop()
      assert.is_true(ok, out)
      assert.matches("system%-only\tok\tfail 60", out)   -- the system store alone: b yes, a no
      assert.matches("with%-ca%-file\tok\tok", out)      -- ca_file a added: both
    end)
  end)
end)
