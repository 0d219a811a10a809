-- The client against a running fake Admin API: listing, revoking, errors, retries, headers,
-- path encoding, options and lifetime.
local atladmin = require "atladmin"
local Fake = require "spec.support.fake"
local cjson = require "cjson"

local KEY = "spec-admin-key-7f3a91"
local ALICE = "557057:4f9acfd2-6155-419b-8de5-5b5cf27a59a0"
local BOB = "5e5f6a63157ed50cd2b9eaca"
local EMPTY = "557057:00000000-0000-0000-0000-000000000000"

local function state()
  return {
    accounts = {
      [ALICE] = { tokens = {
        { id = "asp_A0T8NbvnwgyVkw3K", label = "My Addon", createdAt = "2015-04-12T23:20:50.522Z",
          lastAccess = "2015-05-12T20:20:50.521Z" },
        { id = "asp_never", label = "never used", createdAt = "2024-01-01T00:00:00.000Z" },
        { id = "asp_nulls", label = "nulls", createdAt = "2024-01-01T00:00:00.000Z",
          lastAccess = cjson.null, expiry = cjson.null },
        { id = "asp_extra", label = "extra", createdAt = "2024-01-01T00:00:00.000Z",
          expiry = "2025-03-19T00:00:00.000Z", scopes = { "read", "write" }, uses = 42 },
      } },
      [BOB] = { tokens = { { id = "asp_bob", label = "bob", createdAt = "2023-01-01T00:00:00.000Z" } } },
      [EMPTY] = { tokens = {} },
      ["a/b"] = { tokens = { { id = "x/y", label = "slashy", createdAt = "2023-01-01T00:00:00.000Z" } } },
      ["?x"] = { tokens = {} },
      ["%2F"] = { tokens = {} },
      ["émile"] = { tokens = {} },
    },
  }
end

describe("atladmin client", function()
  local fake = Fake.fixture { key = KEY, state = state }
  local client

  local function new(opts)
    opts = opts or {}
    local o = { token = KEY, base_url = fake.url, retries = 2, backoff_base = 0.01, timeout = 5 }
    for k, v in pairs(opts) do o[k] = v end
    return atladmin.new(o)
  end

  before_each(function()
    client = new()
  end)

  after_each(function()
    client:close()
  end)

  describe("tokens()", function()
    it("lists several tokens as Lua tables", function()
      local tokens, res = client:tokens(ALICE)
      assert.is_table(tokens)
      assert.equal(4, #tokens)
      assert.same({ id = "asp_A0T8NbvnwgyVkw3K", label = "My Addon", createdAt = "2015-04-12T23:20:50.522Z",
                    lastAccess = "2015-05-12T20:20:50.521Z" }, tokens[1])
      assert.equal(200, res.status)
      assert.equal("GET", res.method)
      assert.equal(fake.url .. "/users/" .. ALICE .. "/manage/api-tokens", res.endpoint)
      assert.equal(1, res.attempts)
      assert.is_number(res.elapsed)
      assert.is_true(res.ok)
    end)

    it("gives nil for absent or null optional fields and keeps unknown ones", function()
      local tokens = assert(client:tokens(ALICE))
      assert.is_nil(tokens[2].lastAccess)
      assert.is_nil(tokens[2].expiry)
      assert.is_nil(tokens[3].lastAccess)
      assert.is_nil(tokens[3].expiry)
      assert.equal("2025-03-19T00:00:00.000Z", tokens[4].expiry)
      assert.same({ "read", "write" }, tokens[4].scopes)
      assert.equal(42, tokens[4].uses)
      if math.type then assert.equal("integer", math.type(tokens[4].uses)) end
    end)

    it("gives an empty table for an account without tokens", function()
      local tokens, res = client:tokens(EMPTY)
      assert.same({}, tokens)
      assert.equal(200, res.status)
    end)

    it("reports the rate-limit headers when the server sends them", function()
      local _, res = assert(client:tokens(BOB))
      assert.is_table(res.rate_limit)
      assert.is_number(res.rate_limit.limit)
      assert.is_number(res.rate_limit.remaining)
      assert.is_string(res.rate_limit.reset)
    end)
  end)

  describe("revoke()", function()
    it("revokes a token, which then no longer lists", function()
      local res, err = client:revoke(ALICE, "asp_never")
      assert.is_nil(err)
      assert.same(true, res.ok)
      assert.equal(204, res.status)
      assert.equal("DELETE", res.method)
      assert.equal(fake.url .. "/users/" .. ALICE .. "/manage/api-tokens/asp_never", res.endpoint)
      local tokens = assert(client:tokens(ALICE))
      assert.equal(3, #tokens)
      for _, t in ipairs(tokens) do assert.not_equal("asp_never", t.id) end
    end)

    it("fails with 404 notFound for an unknown token", function()
      local res, err = client:revoke(ALICE, "asp_nope")
      assert.is_nil(res)
      assert.equal("http", err.kind)
      assert.equal(404, err.status)
      assert.equal("notFound", err.key)
      assert.is_nil(err.already_revoked)
      assert.matches("^atladmin: DELETE http://127%.0%.0%.1:%d+/users/.+/api%-tokens/asp_nope: 404 notFound",
                     tostring(err))
    end)

    it("fails with 404 accountNotFound for an unknown account", function()
      local _, err = client:revoke("nobody", "asp_x")
      assert.equal(404, err.status)
      assert.equal("accountNotFound", err.key)
    end)
  end)

  describe("errors", function()
    local cases = {
      { 400, '{"key":"bodyParseFailure","message":"bad body"}', "bodyParseFailure", "bad body" },
      { 401, '{"key":"unauthorized"}', "unauthorized" },
      { 403, '{"key":"forbidden.action","context":{"allowed":false,"reason":{"key":"denied"}}}',
        "forbidden.action", "reason: denied" },
      { 404, '{"key":"accountNotFound"}', "accountNotFound" },
      { 404, '{"key":"notFound"}', "notFound" },
      { 500, '{"code":500,"message":"boom"}', nil, "boom" },
      { 500, "<html><body>Bad things</body></html>", nil, "Internal Server Error" },
      { 502, "", nil, "Bad Gateway" },
    }
    for _, c in ipairs(cases) do
      local status, body, key, message = c[1], c[2], c[3], c[4]
      it(("turns %d %s into an http error"):format(status, body == "" and "(empty)" or body), function()
        fake:fault { type = "status", status = status, body = body,
                     content_type = body:sub(1, 1) == "<" and "text/html" or "application/json" }
        for _, call in ipairs { function() return client:tokens(ALICE) end,
                                function() return client:revoke(ALICE, "asp_never") end } do
          local r, err = call()
          assert.is_nil(r)
          assert.equal("http", err.kind)
          assert.equal(status, err.status)
          assert.equal(key, err.key)
          if message then assert.matches(message, err.message, 1, true) end
          assert.equal(1, err.attempts)
          assert.equal(body, err.body or "")
          assert.matches((": %d"):format(status), tostring(err))
          fake:fault { type = "status", status = status, body = body }
        end
      end)
    end

    it("gives 401 for a wrong key, without retrying", function()
      local other = new { token = "not-the-key" }
      local t, err = other:tokens(ALICE)
      other:close()
      assert.is_nil(t)
      assert.equal(401, err.status)
      assert.equal(1, err.attempts)
      assert.equal(1, #fake:requests())
    end)

    it("reports a body that is not JSON as a decode error", function()
      fake:fault { type = "malformed" }
      local t, err = client:tokens(ALICE)
      assert.is_nil(t)
      assert.equal("decode", err.kind)
      assert.equal(200, err.status)
      assert.matches("decode error", tostring(err))
    end)

    it("reports JSON of the wrong shape as a decode error", function()
      for _, body in ipairs { '{"id":"x"}', '[{"id":1,"label":"x","createdAt":"y"}]', '["a","b"]',
                              '[{"label":"no id"}]', '[{"id":"x","lastAccess":5}]' } do
        fake:fault { type = "status", status = 200, body = body }
        local t, err = client:tokens(ALICE)
        assert.is_nil(t, body)
        assert.equal("decode", err.kind, body)
      end
    end)

    it("reports an empty 200 body as a decode error", function()
      fake:fault { type = "status", status = 200, body = "" }
      local t, err = client:tokens(ALICE)
      assert.is_nil(t)
      assert.equal("decode", err.kind)
    end)

    it("gives a transport error for a closed port", function()
      local sock = require "socket"
      local s = assert(sock.bind("127.0.0.1", 0))
      local _, port = s:getsockname()
      s:close()
      local c = atladmin.new { token = KEY, base_url = "http://127.0.0.1:" .. port, retries = 0 }
      local t, err = c:tokens(ALICE)
      c:close()
      assert.is_nil(t)
      assert.equal("transport", err.kind)
      assert.is_nil(err.status)
      assert.is_number(err.code)
      assert.matches("transport error", tostring(err))
    end)

    it("gives a transport error when the server does not answer in time", function()
      fake:fault { type = "hang", ms = 3000 }
      local c = new { timeout = 0.3, retries = 0 }
      local t, err = c:tokens(ALICE)
      c:close()
      assert.is_nil(t)
      assert.equal("transport", err.kind)
      assert.equal(28, err.code) -- CURLE_OPERATION_TIMEDOUT
    end)
  end)

  describe("retries", function()
    it("waits Retry-After on 429 and then succeeds", function()
      fake:fault { type = "status", status = 429, headers = { ["Retry-After"] = "1" },
                   body = '{"code":429,"message":"Rate limit exceeded"}' }
      local tokens, res = client:tokens(BOB)
      assert.equal(1, #tokens)
      assert.equal(2, res.attempts)
      assert.is_true(res.waited >= 1)
      assert.equal(2, #fake:requests())
    end)

    it("backs off on 503 without Retry-After", function()
      fake:fault { type = "status", status = 503, count = 2 }
      local res = assert(client:revoke(BOB, "asp_bob"))
      assert.equal(3, res.attempts)
      assert.equal(204, res.status)
    end)

    it("gives up after `retries` extra attempts and says so", function()
      fake:fault { type = "status", status = 429, count = 10, headers = { ["Retry-After"] = "0" } }
      local t, err = client:tokens(BOB)
      assert.is_nil(t)
      assert.equal(429, err.status)
      assert.equal(3, err.attempts)
      assert.equal(0, err.retry_after)
      assert.equal(3, #fake:requests())
    end)

    it("does not retry with retries = 0", function()
      local c = new { retries = 0 }
      fake:fault { type = "status", status = 503, count = 10 }
      local _, err = c:tokens(BOB)
      c:close()
      assert.equal(1, err.attempts)
      assert.equal(1, #fake:requests())
    end)

    it("never retries a 4xx other than 429", function()
      for _, status in ipairs { 400, 403, 404, 409 } do
        fake:clear_requests()
        fake:fault { type = "status", status = status, count = 5 }
        local _, err = client:tokens(BOB)
        assert.equal(1, err.attempts)
        assert.equal(1, #fake:requests())
        fake:clear_faults()
      end
    end)

    it("does not wait when Retry-After exceeds max_retry_wait", function()
      local c = new { max_retry_wait = 2 }
      fake:fault { type = "status", status = 429, headers = { ["Retry-After"] = "3600" } }
      local _, err = c:tokens(BOB)
      c:close()
      assert.equal(429, err.status)
      assert.equal(1, err.attempts)
      assert.equal(3600, err.retry_after)
    end)

    it("retries a dropped connection", function()
      fake:fault { type = "drop" }
      local tokens, res = client:tokens(BOB)
      assert.equal(1, #tokens)
      assert.is_true(res.attempts >= 2)
    end)
  end)

  describe("requests", function()
    it("sends the bearer key, Accept and User-Agent, and no body headers on GET", function()
      assert(client:tokens(BOB))
      local req = fake:requests()[1]
      assert.equal("GET", req.method)
      assert.equal("Bearer " .. KEY, req.headers.authorization)
      assert.equal("application/json", req.headers.accept)
      assert.matches("^atladmin/" .. atladmin._VERSION:gsub("%.", "%%.") .. " libcurl/", req.headers["user-agent"])
      assert.is_nil(req.headers["content-type"])
    end)

    it("sends a custom User-Agent", function()
      local c = new { user_agent = "my-audit/2.0" }
      assert(c:tokens(BOB))
      c:close()
      assert.equal("my-audit/2.0", fake:requests()[1].headers["user-agent"])
    end)

    it("encodes each id as exactly one path segment", function()
      local cases = {
        { "a/b", "/users/a%2Fb/manage/api-tokens" },
        { "?x", "/users/%3Fx/manage/api-tokens" },
        { "%2F", "/users/%252F/manage/api-tokens" },
        { "émile", "/users/%C3%A9mile/manage/api-tokens" },
        { "a b#c", "/users/a%20b%23c/manage/api-tokens" },
        { ALICE, "/users/" .. ALICE .. "/manage/api-tokens" },
      }
      for _, c in ipairs(cases) do
        fake:clear_requests()
        client:tokens(c[1])
        assert.equal(c[2], fake:requests()[1].path)
        assert.equal("", fake:requests()[1].query)
      end
      local tokens = assert(client:tokens("a/b"))
      assert.equal("x/y", tokens[1].id)
      fake:clear_requests()
      assert(client:revoke("a/b", "x/y"))
      assert.equal("/users/a%2Fb/manage/api-tokens/x%2Fy", fake:requests()[1].path)
      fake:clear_requests()
      client:revoke(ALICE, "../../../admin")
      assert.equal("/users/" .. ALICE .. "/manage/api-tokens/..%2F..%2F..%2Fadmin", fake:requests()[1].path)
    end)

    it("reuses one connection across calls", function()
      for _ = 1, 5 do assert(client:tokens(BOB)) end
      local reqs = fake:requests()
      assert.equal(5, #reqs)
      assert.is_true(reqs[1].conn > 0)
      for i = 2, 5 do assert.equal(reqs[1].conn, reqs[i].conn) end
    end)
  end)

  describe("argument checks", function()
    local bad = {
      { 42, "account_id: expected a string, got number" },
      { nil, "account_id: expected a string, got nil" },
      { "", "account_id must not be empty" },
      { ".", "account_id must not be '.' or '..'" },
      { "..", "account_id must not be '.' or '..'" },
      { "a\0b", "control character" },
      { "a\nb", "control character" },
      { ("x"):rep(1025), "longer than 1024 bytes" },
    }
    for _, c in ipairs(bad) do
      it("raises for account_id " .. ("%q"):format(tostring(c[1])):sub(1, 30), function()
        local ok, msg = pcall(client.tokens, client, c[1])
        assert.is_false(ok)
        assert.matches(c[2], msg, 1, true)
        ok, msg = pcall(client.revoke, client, c[1], "asp_x")
        assert.is_false(ok)
        assert.matches(c[2], msg, 1, true)
      end)
    end

    it("names token_id when it is the bad one", function()
      local ok, msg = pcall(client.revoke, client, ALICE, "..")
      assert.is_false(ok)
      assert.matches("token_id must not be '.' or '..'", msg, 1, true)
      ok, msg = pcall(client.revoke, client, ALICE, {})
      assert.is_false(ok)
      assert.matches("token_id: expected a string, got table", msg, 1, true)
    end)

    it("accepts an id of exactly 1024 bytes", function()
      local _, err = client:tokens(("x"):rep(1024))
      assert.equal(404, err.status)
    end)

    it("sends nothing for a raised argument error", function()
      pcall(client.tokens, client, "..")
      assert.equal(0, #fake:requests())
    end)
  end)

  describe("options", function()
    it("rejects unknown keys", function()
      assert.has_error(function() atladmin.new { token = KEY, tiemout = 3 } end,
                       "atladmin.new: unknown option 'tiemout'")
    end)

    it("rejects wrong types and ranges, naming the option", function()
      for _, c in ipairs {
        { { timeout = "3" }, "option 'timeout' must be a number" },
        { { timeout = 0 }, "option 'timeout' must be between" },
        { { retries = 1.5 }, "option 'retries' must be a whole number" },
        { { retries = -1 }, "option 'retries' must be between" },
        { { base_url = 5 }, "option 'base_url' must be a string" },
        { { base_url = "ftp://x.example/" }, "option 'base_url' must use https" },
        { { base_url = "http://example.com" }, "option 'base_url' uses http to a host that is not loopback" },
        { { base_url = "not a url" }, "option 'base_url' is not a valid absolute URL" },
        { { user_agent = "a\r\nb" }, "option 'user_agent' contains a control character" },
      } do
        local o = { token = KEY }
        for k, v in pairs(c[1]) do o[k] = v end
        local ok, msg = pcall(atladmin.new, o)
        assert.is_false(ok)
        assert.matches(c[2], msg, 1, true)
      end
    end)

    it("requires a key, from token= or ATLASSIAN_ADMIN_TOKEN", function()
      if os.getenv("ATLASSIAN_ADMIN_TOKEN") then return end
      assert.has_error(function() atladmin.new {} end,
                       "atladmin.new: no admin key: pass token= or set ATLASSIAN_ADMIN_TOKEN")
    end)

    it("refuses a key with CR or LF and never repeats it", function()
      local ok, msg = pcall(atladmin.new, { token = "abc\r\nX-Evil: 1" })
      assert.is_false(ok)
      assert.not_matches("X-Evil", msg, 1, true)
    end)

    it("accepts fractional timeouts", function()
      local c = new { timeout = 2.5, connect_timeout = 0.5 }
      assert(c:tokens(BOB))
      c:close()
    end)
  end)

  describe("the key", function()
    it("never appears in tostring, errors or bodies", function()
      local s = tostring(client)
      assert.equal("atladmin.client (" .. fake.url .. ")", s)
      fake:fault { type = "status", status = 500, body = '{"message":"you sent Bearer ' .. KEY .. '"}' }
      local _, err = client:tokens(ALICE)
      for k, v in pairs(err) do
        assert.not_matches(KEY, tostring(v), 1, true)
        assert.not_matches(KEY, tostring(k), 1, true)
      end
      assert.not_matches(KEY, tostring(err), 1, true)
      assert.matches("***", err.body, 1, true)
      local stack = {}
      for _, f in ipairs { "status_404", "hang", "malformed" } do
        if f == "status_404" then fake:fault { type = "status", status = 404, body = KEY }
        elseif f == "hang" then fake:fault { type = "hang", ms = 2000 }
        else fake:fault { type = "malformed", body = KEY } end
        local c = new { timeout = 0.3, retries = 0 }
        local _, e = c:tokens(ALICE)
        c:close()
        stack[#stack + 1] = tostring(e) .. (e.body or "") .. (e.message or "")
      end
      assert.not_matches(KEY, table.concat(stack), 1, true)
    end)
  end)

  describe("lifetime", function()
    it("close is idempotent and later calls raise", function()
      local c = new()
      c:close()
      c:close()
      assert.equal("atladmin.client (closed)", tostring(c))
      assert.has_error(function() c:tokens(ALICE) end, "atladmin: tokens called on a closed client")
      assert.has_error(function() c:revoke(ALICE, "x") end, "atladmin: revoke called on a closed client")
    end)

    it("frees clients dropped without close", function()
      for _ = 1, 200 do
        local c = new()
        c:tokens(BOB)
      end
      collectgarbage()
      collectgarbage()
    end)

    it("closes at the end of a to-be-closed scope (Lua 5.4)", function()
      if _VERSION ~= "Lua 5.4" then return end
      local chunk = assert((loadstring or load)([[
        local atladmin, opts = ...
        local keep
        do
          local c <close> = atladmin.new(opts)
          keep = c
          assert(c:tokens("5e5f6a63157ed50cd2b9eaca"))
        end
        return tostring(keep)
      ]]))
      assert.equal("atladmin.client (closed)",
                   chunk(atladmin, { token = KEY, base_url = fake.url }))
    end)
  end)
end)
