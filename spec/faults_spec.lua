-- Hostile and broken servers, for both tokens() and revoke(): every fault must give a clear
-- `nil, err` (or, for revoke, the server's own verdict), never a crash, a hang or a lost result.
local atladmin = require "atladmin"
local Fake = require "spec.support.fake"
local Child = require "spec.support.child"
local RawServer = require "spec.support.rawserver"
local socket = require "socket"

local KEY = "faults-key-0b5e"
local ALICE = "557057:4f9acfd2-6155-419b-8de5-5b5cf27a59a0"
local TOKENS_PATH = "/users/" .. ALICE .. "/manage/api-tokens"
local REVOKE_PATH = TOKENS_PATH .. "/asp_1"

-- CURLcode numbers the errors carry
local COULDNT_RESOLVE, COULDNT_CONNECT, PARTIAL_FILE, TIMEDOUT = 6, 7, 18, 28
local GOT_NOTHING, RECV_ERROR = 52, 56

local function state()
  return { accounts = { [ALICE] = { tokens = {
    { id = "asp_1", label = "one", createdAt = "2024-01-01T00:00:00.000Z" },
    { id = "asp_2", label = "two", createdAt = "2024-01-01T00:00:00.000Z" },
  } } } }
end

local function child_prelude()
  return ("package.path = %q .. ';' .. package.path\npackage.cpath = %q .. ';' .. package.cpath\n")
    :format(package.path, package.cpath)
end

-- The two calls under test, with the path their faults aim at.
local CALLS = {
  { name = "tokens", method = "GET", path = TOKENS_PATH,
    run = function(c) return c:tokens(ALICE) end },
  { name = "revoke", method = "DELETE", path = REVOKE_PATH,
    run = function(c) return c:revoke(ALICE, "asp_1") end },
}

local function is_error(v, err, kind)
  assert.is_nil(v)
  assert.equal("table", type(err))
  assert.equal(kind, err.kind, tostring(err))
  assert.equal("string", type(err.message))
  assert.is_true(#err.message > 0)
  assert.matches("^atladmin: ", tostring(err))
  assert.is_number(err.attempts)
  assert.is_number(err.elapsed)
  return err
end

describe("faults", function()
  local fake = Fake.fixture { key = KEY, state = state }

  local function new(opts)
    local o = { token = KEY, base_url = fake.url, retries = 0, timeout = 5, backoff_base = 0.01 }
    for k, v in pairs(opts or {}) do o[k] = v end
    return atladmin.new(o)
  end

  local function still_listed(id)
    local c = new()
    local list = assert(c:tokens(ALICE))
    c:close()
    for _, t in ipairs(list) do if t.id == id then return true end end
    return false
  end

  for _, call in ipairs(CALLS) do
    describe(call.name .. "()", function()
      local function fault(spec)
        spec.method = call.method
        spec.path = call.path
        fake:fault(spec)
      end

      it("connection refused: transport error code 7, retried", function()
        local s = socket.bind("127.0.0.1", 0)
        local _, port = s:getsockname()
        s:close()
        local c = atladmin.new { token = KEY, base_url = "http://127.0.0.1:" .. port, retries = 2,
                                 backoff_base = 0.01 }
        local err = is_error(nil, select(2, call.run(c)), "transport")
        assert.equal(COULDNT_CONNECT, err.code)
        assert.equal(3, err.attempts)
        assert.is_nil(err.status)
        c:close()
      end)

      it("DNS failure: transport error code 6 (.invalid name, in a network namespace with no route out)",
        function()
          if not Child.works("unshare -rn") then
            pending("unshare -rn is not available: the lookup would leave the machine")
            return
          end
          local code = child_prelude() .. ([[
            local atladmin = require "atladmin"
            local c = atladmin.new { token = "k", base_url = "https://atladmin-spec.invalid", retries = 0 }
            local v, err = c:%s(%q%s)
            print(v and "ok" or (err.kind .. " " .. tostring(err.code) .. " " .. err.message))
          ]]):format(call.name, ALICE, call.name == "revoke" and ', "asp_1"' or "")
          -- a proxy from the environment would be asked instead of the resolver: none here
          local out, ok = Child.run(code, "env -u http_proxy -u https_proxy -u HTTPS_PROXY -u all_proxy " ..
                                          "-u ALL_PROXY unshare -rn")
          assert.is_true(ok, out)
          assert.matches("transport " .. COULDNT_RESOLVE .. " ", out)
        end)

      it("connect timeout: a listener whose backlog is full never completes the handshake", function()
        local l = assert(socket.tcp())
        assert(l:bind("127.0.0.1", 0))
        assert(l:listen(0))
        local _, port = l:getsockname()
        local filler = socket.tcp()
        filler:settimeout(1)
        assert(filler:connect("127.0.0.1", port)) -- takes the only slot; never accepted
        local c = atladmin.new { token = KEY, base_url = "http://127.0.0.1:" .. port, retries = 0,
                                 connect_timeout = 0.3, timeout = 5 }
        local err = is_error(nil, select(2, call.run(c)), "transport")
        c:close()
        filler:close()
        l:close()
        assert.equal(TIMEDOUT, err.code)
        assert.matches("[Cc]onnect", err.message)
      end)

      it("a server that accepts and never answers: timeout, then one retry", function()
        fault { type = "hang", ms = 3000, count = 2 }
        local c = new { timeout = 0.3, retries = 1 }
        local err = is_error(nil, select(2, call.run(c)), "transport")
        c:close()
        assert.equal(TIMEDOUT, err.code)
        assert.equal(2, err.attempts)
      end)

      it("a body that stalls mid-way: stopped by stall_timeout", function()
        fault { type = "stall", ms = 5000, body = '[{"id":"asp_s","label":"stalled","createdAt":"x"}]' }
        local c = new { stall_timeout = 1, timeout = 30 }
        local err = is_error(nil, select(2, call.run(c)), "transport")
        c:close()
        assert.equal(TIMEDOUT, err.code)
        assert.matches("stalled", err.message)
      end)

      it("a reset before any response: transport error, retried", function()
        fault { type = "reset", count = 5 }
        local c = new { retries = 1 }
        local err = is_error(nil, select(2, call.run(c)), "transport")
        c:close()
        assert.is_true(err.code == RECV_ERROR or err.code == GOT_NOTHING, tostring(err.code))
        assert.equal(2, err.attempts)
      end)

      it("a connection closed mid-body: partial file", function()
        fault { type = "truncate", body = '[{"id":"asp_t","label":"truncated","createdAt":"x"}]' }
        local err = is_error(nil, select(2, call.run(new())), "transport")
        assert.equal(PARTIAL_FILE, err.code)
      end)

      it("a reset (RST) mid-body", function()
        local srv = RawServer.start { reset = true, bytes = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" ..
          "Content-Length: 5000\r\n\r\n" .. '[{"id":"asp_r","label":"' .. ("r"):rep(1000) }
        local c = atladmin.new { token = KEY, base_url = srv.url, retries = 0, timeout = 5 }
        local err = is_error(nil, select(2, call.run(c)), "transport")
        c:close()
        assert.equal(1, srv:finish())
        assert.is_true(err.code == RECV_ERROR or err.code == PARTIAL_FILE, tostring(err.code))
      end)

      it("a gzip bomb: the decompressed body is bounded by max_body", function()
        local gz = os.tmpname()
        assert(os.execute("head -c 50000000 /dev/zero | gzip -9 > " .. gz))
        local f = assert(io.open(gz, "rb"))
        local zipped = f:read("*a")
        f:close()
        os.remove(gz)
        assert.is_true(#zipped < 100000)
        local srv = RawServer.start { bytes = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" ..
          "Content-Encoding: gzip\r\nContent-Length: " .. #zipped .. "\r\n\r\n" .. zipped }
        local c = atladmin.new { token = KEY, base_url = srv.url, retries = 0, timeout = 10 }
        local err = is_error(nil, select(2, call.run(c)), "transport")
        c:close()
        srv:finish()
        assert.matches("larger than max_body", err.message)
      end)

      it("a truncated chunked body", function()
        fault { type = "truncate_chunked", body = '[{"id":"asp_t","label":"truncated","createdAt":"x"}]' }
        local err = is_error(nil, select(2, call.run(new())), "transport")
        assert.is_true(err.code == PARTIAL_FILE or err.code == RECV_ERROR, tostring(err.code))
      end)

      it("a Content-Length larger than the body", function()
        fault { type = "raw", bytes = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" ..
                                      "Content-Length: 100\r\n\r\n[]" }
        local err = is_error(nil, select(2, call.run(new())), "transport")
        assert.equal(PARTIAL_FILE, err.code)
      end)

      it("a 5xx with an HTML body: http error with the status, no key, the body kept", function()
        local html = "<html><body><h1>502 Bad Gateway</h1></body></html>"
        fault { type = "status", status = 502, body = html, content_type = "text/html" }
        local err = is_error(nil, select(2, call.run(new())), "http")
        assert.equal(502, err.status)
        assert.is_nil(err.key)
        assert.equal("Bad Gateway", err.message)
        assert.equal(html, err.body)
      end)

      it("a 503 storm with HTML: retried, then the last status", function()
        fault { type = "status", status = 503, body = "<html>down</html>", content_type = "text/html", count = -1 }
        local err = is_error(nil, select(2, call.run(new { retries = 2 })), "http")
        assert.equal(503, err.status)
        assert.equal(3, err.attempts)
      end)

      it("a 429 storm: gives up after `retries`, with the total wait bounded and reported", function()
        fault { type = "status", status = 429, body = '{"code":429,"message":"Rate limit exceeded"}', count = -1 }
        local c = new { retries = 3, backoff_base = 0.02, backoff_max = 0.05 }
        local err = is_error(nil, select(2, call.run(c)), "http")
        c:close()
        assert.equal(429, err.status)
        assert.equal(4, err.attempts)
        assert.is_number(err.waited)
        -- each wait is at most backoff_max x1.3 here: the total is bounded by retries of them
        assert.is_true(err.waited > 0 and err.waited <= 3 * 0.05 * 1.3 + 1e-9, tostring(err.waited))
        assert.equal(4, #fake:requests())
      end)

      it("an absurd Retry-After: not waited for (max_retry_wait), reported", function()
        fault { type = "status", status = 429, headers = { ["Retry-After"] = "999999999" }, count = -1 }
        local err = is_error(nil, select(2, call.run(new { retries = 4 })), "http")
        assert.equal(1, err.attempts)
        assert.equal(999999999, err.retry_after)
        assert.is_nil(err.waited)
        assert.matches("retry after 999999999 s", err.message)
      end)

      it("a Retry-After HTTP date far ahead: not waited for either", function()
        fault { type = "status", status = 503, headers = { ["Retry-After"] = "Fri, 31 Dec 2100 23:59:59 GMT" },
                count = -1 }
        local err = is_error(nil, select(2, call.run(new { retries = 4 })), "http")
        assert.equal(1, err.attempts)
        assert.is_true(err.retry_after > 86400)
      end)

      it("max_retry_wait is configurable", function()
        fault { type = "status", status = 429, headers = { ["Retry-After"] = "2" }, count = -1 }
        local err = is_error(nil, select(2, call.run(new { retries = 4, max_retry_wait = 1 })), "http")
        assert.equal(1, err.attempts)
        assert.equal(2, err.retry_after)
      end)

      it("an error body that is deeply nested JSON: the status still gives a clear error", function()
        fault { type = "status", status = 500, body = ("["):rep(100000) }
        local err = is_error(nil, select(2, call.run(new())), "http")
        assert.equal(500, err.status)
        assert.is_nil(err.key)
      end)
    end)
  end

  describe("tokens() with bodies of the wrong kind", function()
    local function body_fault(body, status)
      fake:fault { path = TOKENS_PATH, type = "status", status = status or 200, body = body }
    end

    local cases = {
      { "invalid JSON", '[{"id":"asp_1",', "not valid JSON" },
      { "an object instead of an array", '{"id":"asp_1","label":"x","createdAt":"y"}', "array of tokens" },
      { "an id that is a number", '[{"id":5,"label":"x","createdAt":"y"}]', "'id'" },
      { "an array of strings", '["asp_1","asp_2"]', "not a JSON object" },
      { "a label that is an object", '[{"id":"a","label":{},"createdAt":"y"}]', "not a string" },
      { "a bare string", '"tokens"', "array of tokens" },
      { "trailing garbage", '[] []', "not valid JSON" },
      { "NaN", '[NaN]', "not valid JSON" },
      { "a lone surrogate and a NUL escape", '[{"id":"\\ud800\\u0000","label":"x","createdAt":"y"}]', nil },
    }
    for _, case in ipairs(cases) do
      it(case[1] .. ": decode error", function()
        body_fault(case[2])
        local c = new()
        local v, err = c:tokens(ALICE)
        c:close()
        if case[3] == nil then
          -- accepted or refused, but never a crash: an id is a non-empty string either way
          if v then assert.is_string(v[1].id) else assert.equal("decode", err.kind) end
          return
        end
        is_error(v, err, "decode")
        assert.matches(case[3], err.message, 1, true)
        assert.equal(200, err.status)
      end)
    end

    it("100k levels of nesting, unclosed and closed: decode error, no stack overflow", function()
      for _, closed in ipairs({ false, true }) do
        fake:fault { path = TOKENS_PATH, type = "nested", depth = 100000, closed = closed }
        local c = new()
        local v, err = c:tokens(ALICE)
        c:close()
        is_error(v, err, "decode")
        assert.matches("nest", err.message)
      end
    end)

    it("nesting just past the decoder's depth limit inside a valid token list: decode error", function()
      local deep = ("["):rep(250) .. ("]"):rep(250)
      body_fault('[{"id":"a","label":"x","createdAt":"y","extra":' .. deep .. '}]')
      local c = new()
      local v, err = c:tokens(ALICE)
      c:close()
      is_error(v, err, "decode")
      assert.matches("nests too deeply", err.message)
    end)

    it("a 10 MB body: transport error, nothing kept past max_body", function()
      fake:fault { path = TOKENS_PATH, type = "big", bytes = 10 * 1000 * 1000 }
      local c = new()
      local v, err = c:tokens(ALICE)
      c:close()
      is_error(v, err, "transport")
      assert.matches("max_body", err.message)
    end)

    it("a 204 with a body: decode error (a listing needs a body)", function()
      body_fault('[{"id":"asp_1","label":"x","createdAt":"y"}]', 204)
      local c = new()
      local v, err = c:tokens(ALICE)
      c:close()
      is_error(v, err, "decode")
      assert.equal(204, err.status)
    end)

    it("a 200 with an empty body: decode error", function()
      fake:fault { path = TOKENS_PATH, type = "status", status = 200 }
      local c = new()
      local v, err = c:tokens(ALICE)
      c:close()
      is_error(v, err, "decode")
      assert.matches("empty response body", err.message)
    end)

    it("a Content-Length shorter than the body: only the announced bytes count", function()
      fake:fault { path = TOKENS_PATH, type = "raw",
                   bytes = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n" ..
                           '[{"id":"asp_1","label":"x","createdAt":"y"}]' }
      local c = new()
      local v, err = c:tokens(ALICE)
      c:close()
      is_error(v, err, "decode")
    end)
  end)

  describe("revoke() answers", function()
    it("a 204 with a body is still the server's success", function()
      fake:fault { path = REVOKE_PATH, method = "DELETE", type = "status", status = 204, body = "{\"ignored\":1}" }
      local c = new()
      local res = assert(c:revoke(ALICE, "asp_1"))
      c:close()
      assert.is_true(res.ok)
      assert.equal(204, res.status)
    end)

    it("a 200 with an empty, invalid or oddly shaped body is a success: the status decides", function()
      for _, body in ipairs({ "", "{not json", '["x"]', ("["):rep(100000) }) do
        fake:fault { path = REVOKE_PATH, method = "DELETE", type = "status", status = 200, body = body }
        local c = new()
        local res, err = c:revoke(ALICE, "asp_1")
        c:close()
        assert.is_table(res, tostring(err))
        assert.equal(200, res.status)
      end
    end)

    it("a first-attempt 404 notFound stays an error", function()
      local c = new { retries = 3 }
      local v, err = c:revoke(ALICE, "asp_unknown")
      c:close()
      is_error(v, err, "http")
      assert.equal(404, err.status)
      assert.equal("notFound", err.key)
      assert.equal(1, err.attempts)
    end)

    it("a reset after the DELETE was carried out, then 404 notFound on the retry: already_revoked", function()
      fake:fault { path = REVOKE_PATH, method = "DELETE", type = "reset", apply = true }
      local c = new { retries = 2 }
      local res, err = c:revoke(ALICE, "asp_1")
      c:close()
      assert.is_table(res, tostring(err))
      assert.is_true(res.ok)
      assert.is_true(res.already_revoked)
      assert.equal(404, res.status)
      assert.equal(2, res.attempts)
      assert.is_false(still_listed("asp_1"))
      assert.is_true(still_listed("asp_2"))
    end)

    it("the same when libcurl itself resends on a reused connection that died", function()
      local c = new { retries = 0 }
      assert(c:tokens(ALICE)) -- leaves a kept-alive connection for the DELETE to reuse
      fake:fault { path = REVOKE_PATH, method = "DELETE", type = "reset", apply = true }
      local res, err = c:revoke(ALICE, "asp_1")
      c:close()
      assert.is_table(res, tostring(err))
      assert.is_true(res.already_revoked)
      assert.is_false(still_listed("asp_1"))
    end)

    it("a 404 accountNotFound after an ambiguous failure stays an error", function()
      fake:fault { path = REVOKE_PATH, method = "DELETE", type = "reset", count = 1 }
      fake:fault { path = REVOKE_PATH, method = "DELETE", type = "status", status = 404,
                   body = '{"key":"accountNotFound"}' }
      local c = new { retries = 2 }
      local v, err = c:revoke(ALICE, "asp_1")
      c:close()
      is_error(v, err, "http")
      assert.equal("accountNotFound", err.key)
    end)

    it("a retry after a 503 that then sees 404 notFound stays an error (the 503 did nothing)", function()
      fake:fault { path = REVOKE_PATH, method = "DELETE", type = "status", status = 503 }
      fake:fault { path = REVOKE_PATH, method = "DELETE", type = "status", status = 404, body = '{"key":"notFound"}' }
      local c = new { retries = 2 }
      local v, err = c:revoke(ALICE, "asp_1")
      c:close()
      is_error(v, err, "http")
      assert.equal(2, err.attempts)
    end)
  end)

  describe("lifetime under garbage collection", function()
    it("survives clients dropped without close, mid-use, in a loop", function()
      for i = 1, 60 do
        local c = new()
        if i % 3 == 0 then fake:fault { path = TOKENS_PATH, type = "status", status = 500, body = "x" } end
        local v, err = c:tokens(ALICE)
        assert.is_true(v ~= nil or err.kind == "http")
        if i % 10 == 0 then collectgarbage() end
      end
      collectgarbage()
      collectgarbage()
    end)

    it("keeps results and errors usable after their client is collected", function()
      local results = {}
      for _ = 1, 20 do
        local c = new()
        results[#results + 1] = { c:tokens(ALICE) }
        results[#results + 1] = { c:tokens("nobody") }
      end
      collectgarbage()
      collectgarbage()
      for i, r in ipairs(results) do
        if i % 2 == 1 then assert.equal("asp_1", r[1][1].id) else assert.equal(404, r[2].status) end
      end
    end)
  end)
end)
