-- permissions, profile, update_profile, disable and enable against the fake: success, every
-- documented error, and the request bodies as the server received them.
local atladmin = require "atladmin"
local Fake = require "spec.support.fake"
local cjson = require "cjson"

local KEY = "users-spec-key-55e1"
local ALICE = "557057:4f9acfd2-6155-419b-8de5-5b5cf27a59a0"
local BOB = "5e5f6a63157ed50cd2b9eaca"          -- denied everything but reading
local CAROL = "557057:cccccccc-0000-4000-8000-000000000003" -- deactivated
local DAN = "557057:dddddddd-0000-4000-8000-000000000004"   -- domain not verified

local function state()
  local function profile(id, name, status)
    return { account_id = id, name = name, nickname = name:lower(), email = name:lower() .. "@example.com",
             account_type = "atlassian", account_status = status, zoneinfo = "Europe/Berlin", locale = "en-US",
             extended_profile = { job_title = "Engineer", department = "R&D" } }
  end
  return { accounts = {
    [ALICE] = { tokens = {}, profile = profile(ALICE, "Alice", "active"), status = "active" },
    [BOB] = { tokens = {}, profile = profile(BOB, "Bob", "active"), status = "active",
              deny = { "profile.read", "profile.write", "lifecycle.enablement", "apiToken.delete" } },
    [CAROL] = { tokens = {}, profile = profile(CAROL, "Carol", "inactive"), status = "inactive" },
    [DAN] = { tokens = {}, profile = profile(DAN, "Dan", "active"), status = "active", unverified = true },
  } }
end

describe("user management calls", function()
  local fake = Fake.fixture { key = KEY, state = state }
  local client

  before_each(function()
    client = atladmin.new { token = KEY, base_url = fake.url, retries = 0, timeout = 5 }
  end)

  after_each(function() client:close() end)

  local function only_request()
    local reqs = fake:requests()
    assert.equal(1, #reqs)
    return reqs[1]
  end

  local function assert_http_error(err, status, key)
    assert.is_table(err)
    assert.equal("http", err.kind)
    assert.equal(status, err.status)
    assert.equal(key, err.key)
    assert.is_string(err.message)
    assert.equal(atladmin.Error, getmetatable(err))
  end

  -- the errors every call shares: unknown account, unverified domain, wrong key
  local calls = {
    permissions = function(c, id) return c:permissions(id) end,
    profile = function(c, id) return c:profile(id) end,
    update_profile = function(c, id) return c:update_profile(id, { nickname = "x" }) end,
    disable = function(c, id) return c:disable(id) end,
    enable = function(c, id) return c:enable(id) end,
  }
  for name, call in pairs(calls) do
    describe(name .. "() common errors", function()
      it("404 accountNotFound for an unknown account", function()
        local ok, err = call(client, "557057:unknown")
        assert.is_nil(ok)
        assert_http_error(err, 404, "accountNotFound")
      end)

      it("403 forbidden.targetUnverified for an account of an unverified domain", function()
        local ok, err = call(client, DAN)
        assert.is_nil(ok)
        assert_http_error(err, 403, "forbidden.targetUnverified")
      end)

      it("401 unauthorized with a wrong key, without retrying", function()
        local other = atladmin.new { token = "wrong", base_url = fake.url, retries = 2, backoff_base = 0.01 }
        local ok, err = call(other, ALICE)
        other:close()
        assert.is_nil(ok)
        assert_http_error(err, 401, "unauthorized")
        assert.equal(1, err.attempts)
      end)
    end)
  end

  describe("permissions()", function()
    it("gives every privilege with allowed and reason", function()
      local perms, res = client:permissions(ALICE)
      assert.equal(200, res.status)
      for _, p in ipairs({ "apiToken.read", "apiToken.delete", "lifecycle.enablement", "email.set", "profile.read" }) do
        assert.is_true(perms[p].allowed, p)
        assert.is_string(perms[p].reason.key)
      end
      assert.is_true(perms.profile.name.allowed) -- profile is a map of per-field permissions
      local r = only_request()
      assert.equal("GET", r.method)
      assert.equal("/users/" .. ALICE .. "/manage", r.path)
      assert.equal("", r.query)
    end)

    it("asks for the given privileges as a repeated query parameter", function()
      local perms = assert(client:permissions(BOB, { "apiToken.read", "apiToken.delete" }))
      assert.is_true(perms["apiToken.read"].allowed)
      assert.is_false(perms["apiToken.delete"].allowed)
      assert.equal("denied", perms["apiToken.delete"].reason.key)
      assert.is_nil(perms["lifecycle.enablement"])
      local q = only_request().query
      assert.truthy(q:find("privileges=apiToken.read", 1, true), q)
      assert.truthy(q:find("privileges=apiToken.delete", 1, true), q)
    end)

    it("raises on a bad privilege list before any request", function()
      assert.has_error(function() client:permissions(ALICE, "apiToken.read") end)
      assert.has_error(function() client:permissions(ALICE, { 1 }) end)
      assert.has_error(function() client:permissions(ALICE, { "" }) end)
      assert.equal(0, #fake:requests())
    end)
  end)

  describe("profile()", function()
    it("gives the account object", function()
      local acc, res = client:profile(ALICE)
      assert.equal(200, res.status)
      assert.equal(ALICE, acc.account_id)
      assert.equal("Alice", acc.name)
      assert.equal("active", acc.account_status)
      assert.equal("Engineer", acc.extended_profile.job_title)
      local r = only_request()
      assert.equal("GET", r.method)
      assert.equal("/users/" .. ALICE .. "/manage/profile", r.path)
    end)

    it("403 forbidden.action with the reason when profile.read is not granted", function()
      local acc, err = client:profile(BOB)
      assert.is_nil(acc)
      assert_http_error(err, 403, "forbidden.action")
      local body = cjson.decode(err.body)
      assert.is_false(body.context.allowed)
      assert.equal("denied", body.context.reason.key)
    end)
  end)

  describe("update_profile()", function()
    it("PATCHes the fields as JSON and gives the updated account", function()
      local fields = { nickname = 'Al "the" \\ ünïcode\n\t', zoneinfo = "America/New_York",
                       extended_profile = { job_title = "Boss", department = atladmin.null } }
      local acc, res = client:update_profile(ALICE, fields)
      assert.equal(200, res.status)
      assert.equal('Al "the" \\ ünïcode\n\t', acc.nickname)
      assert.equal("America/New_York", acc.zoneinfo)
      assert.equal("Boss", acc.extended_profile.job_title)
      assert.is_nil(acc.extended_profile.department)
      local r = only_request()
      assert.equal("PATCH", r.method)
      assert.equal("/users/" .. ALICE .. "/manage/profile", r.path)
      assert.equal("application/json", r.headers["content-type"]:match("^[^;]+"))
      local sent = cjson.decode(r.body)
      assert.equal('Al "the" \\ ünïcode\n\t', sent.nickname)
      assert.equal("America/New_York", sent.zoneinfo)
      assert.equal("Boss", sent.extended_profile.job_title)
      assert.equal(cjson.null, sent.extended_profile.department)
      assert.same(acc, (assert(client:profile(ALICE)))) -- the change stuck
    end)

    it("sends an empty table as {} and atladmin.array as []", function()
      client:update_profile(ALICE, {})
      assert.equal("{}", only_request().body)
      fake:clear_requests()
      local acc, err = client:update_profile(ALICE, { extended_profile = atladmin.array {} })
      assert.is_nil(acc)
      assert_http_error(err, 400, "fieldConstraintsViolated")
      assert.equal('{"extended_profile":[]}', only_request().body)
    end)

    it("400 fieldConstraintsViolated with the field violations", function()
      local acc, err = client:update_profile(ALICE, { name = "", unknown_field = "x" })
      assert.is_nil(acc)
      assert_http_error(err, 400, "fieldConstraintsViolated")
      local body = cjson.decode(err.body)
      local fields = {}
      for _, v in ipairs(body.context.fieldViolations) do fields[v.field] = v.message end
      assert.is_string(fields.name)
      assert.is_string(fields.unknown_field)
    end)

    it("403 forbidden.action when profile.write is not granted", function()
      local acc, err = client:update_profile(BOB, { nickname = "b" })
      assert.is_nil(acc)
      assert_http_error(err, 403, "forbidden.action")
    end)

    it("raises on fields JSON cannot carry, before any request", function()
      assert.has_error(function() client:update_profile(ALICE, "name=x") end)
      assert.has_error(function() client:update_profile(ALICE, { name = function() end }) end)
      assert.has_error(function() client:update_profile(ALICE, { nested = { co = coroutine.create(print) } }) end)
      assert.has_error(function() client:update_profile(ALICE, { [{}] = "table key" }) end)
      local loop = {}
      loop.self = loop
      assert.has_error(function() client:update_profile(ALICE, { loop = loop }) end)
      assert.equal(0, #fake:requests())
    end)
  end)

  describe("disable()", function()
    it("POSTs the message and the account becomes inactive (204)", function()
      local res = assert(client:disable(ALICE, 'Left the company; "see" HR'))
      assert.equal(204, res.status)
      assert.is_true(res.ok)
      local r = only_request()
      assert.equal("POST", r.method)
      assert.equal("/users/" .. ALICE .. "/manage/lifecycle/disable", r.path)
      assert.same({ message = 'Left the company; "see" HR' }, cjson.decode(r.body))
      assert.equal("inactive", (assert(client:profile(ALICE))).account_status)
    end)

    it("sends no body without a message", function()
      assert(client:disable(ALICE))
      local r = only_request()
      assert.equal("", r.body)
      assert.is_nil(r.headers["content-type"])
    end)

    it("409 conflict.lifecycleErrors when the account is already inactive", function()
      local res, err = client:disable(CAROL)
      assert.is_nil(res)
      assert_http_error(err, 409, "conflict.lifecycleErrors")
      assert.equal("alreadyDisabled", cjson.decode(err.body).context.errors[1].key)
    end)

    it("403 forbidden.action when lifecycle.enablement is not granted", function()
      local res, err = client:disable(BOB, "bye")
      assert.is_nil(res)
      assert_http_error(err, 403, "forbidden.action")
      assert.equal("denied", cjson.decode(err.body).context.reason.key)
      assert.equal("active", fake:state().accounts[BOB].status)
    end)

    it("raises on a non-string message before any request", function()
      assert.has_error(function() client:disable(ALICE, 42) end)
      assert.has_error(function() client:disable(ALICE, { message = "x" }) end)
      assert.equal(0, #fake:requests())
    end)
  end)

  describe("enable()", function()
    it("POSTs to lifecycle/enable and the account becomes active (204)", function()
      local res = assert(client:enable(CAROL))
      assert.equal(204, res.status)
      local r = only_request()
      assert.equal("POST", r.method)
      assert.equal("/users/" .. CAROL .. "/manage/lifecycle/enable", r.path)
      assert.equal("", r.body)
      assert.equal("active", fake:state().accounts[CAROL].status)
    end)

    it("409 conflict.lifecycleErrors when the account is already active", function()
      local res, err = client:enable(ALICE)
      assert.is_nil(res)
      assert_http_error(err, 409, "conflict.lifecycleErrors")
      assert.equal("alreadyEnabled", cjson.decode(err.body).context.errors[1].key)
    end)

    it("403 forbidden.action when lifecycle.enablement is not granted", function()
      local res, err = client:enable(BOB)
      assert.is_nil(res)
      assert_http_error(err, 403, "forbidden.action")
    end)
  end)

  describe("rate limits", function()
    it("retries a 429 on a lifecycle call and then succeeds", function()
      local c = atladmin.new { token = KEY, base_url = fake.url, retries = 2, backoff_base = 0.01 }
      fake:fault { path = "/users/" .. CAROL .. "/manage/lifecycle/enable", type = "status", status = 429,
                   body = '{"code":429,"message":"Too many requests"}' }
      local res = assert(c:enable(CAROL))
      c:close()
      assert.equal(2, res.attempts)
      assert.equal(2, #fake:requests())
    end)
  end)
end)
