-- The fake Admin API server itself, spoken to over raw luasocket connections: API behaviour,
-- every fault type, raw path handling, recording, concurrency, TLS and log hygiene.
local Fake = require "spec.support.fake"
local socket = require "socket"
local cjson = require "cjson"

local KEY = "fake-spec-key-5c1e"
local ALICE = "557057:4f9acfd2-6155-419b-8de5-5b5cf27a59a0"
local BOB = "5e5f6a63157ed50cd2b9eaca"
local CAROL = "557057:0000cafe-0000-4000-8000-000000000003"
local DAVE = "557057:0000dave-0000-4000-8000-000000000004"
local ERIN = "557057:0000e5e5-0000-4000-8000-000000000005"

local function state()
  return {
    accounts = {
      [ALICE] = {
        tokens = {
          { id = "asp_1", label = "CI", createdAt = "2024-01-02T03:04:05.000Z",
            lastAccess = "2024-05-01T00:00:00.000Z", expiry = cjson.null, anyExtra = 1 },
          { id = "asp_2", label = "never used", createdAt = "2024-02-01T00:00:00.000Z" },
        },
        profile = { name = "Alice Example", nickname = "alice", email = "alice@example.com",
                    zoneinfo = "Europe/Berlin", locale = "en-US",
                    extended_profile = { job_title = "Engineer" } },
      },
      [BOB] = {
        tokens = { { id = "asp_bob", label = "bob", createdAt = "2023-01-01T00:00:00.000Z" } },
        deny = { "apiToken.delete", "lifecycle.enablement", "profile.write" },
        profile = { name = "Bob Example", email = "bob@example.com" },
      },
      [CAROL] = { tokens = {}, unverified = true },
      [DAVE] = { tokens = { { id = "asp_d", label = "d", createdAt = "2023-01-01T00:00:00.000Z" } },
                 deny = { "apiToken.read" }, status = "inactive", profile = { name = "Dave" } },
      [ERIN] = { tokens = { { id = "asp_e1", label = "e1", createdAt = "2023-01-01T00:00:00.000Z" },
                            { id = "asp_e2", label = "e2", createdAt = "2023-01-02T00:00:00.000Z",
                              expiry = "2030-01-01T00:00:00.000Z" } },
                 profile = { name = "Erin", email = "erin@example.com" } },
      ["a/b"] = { tokens = { { id = "x/y", label = "slashy", createdAt = "2023-01-01T00:00:00.000Z" } } },
    },
    orgs = {
      ["org-1"] = { users = { ALICE, BOB, DAVE, ERIN, CAROL } },
      ["org-closed"] = { users = { ALICE }, api_access = false },
    },
  }
end

-- ---- a minimal HTTP/1.1 client over luasocket, so every byte the fake sends is visible ----

local function connect(fake, timeout)
  local c = assert(socket.tcp())
  c:settimeout(timeout or 5)
  assert(c:connect("127.0.0.1", fake.port))
  return c
end

local function send_request(c, fake, method, path, opts)
  opts = opts or {}
  local lines = { ("%s %s HTTP/1.1"):format(method, path), "Host: 127.0.0.1:" .. fake.port }
  if opts.auth ~= false then
    lines[#lines + 1] = "Authorization: Bearer " .. (opts.key or fake.key)
  end
  for k, v in pairs(opts.headers or {}) do lines[#lines + 1] = k .. ": " .. v end
  if opts.body then
    lines[#lines + 1] = "Content-Type: application/json"
    lines[#lines + 1] = "Content-Length: " .. #opts.body
  end
  assert(c:send(table.concat(lines, "\r\n") .. "\r\n\r\n" .. (opts.body or "")))
end

-- Reads one response; res.err tells how a body ended early ("closed", "timeout", ...).
local function read_response(c)
  local line, err = c:receive("*l")
  if not line then return nil, err end
  local res = { status = tonumber(line:match("^HTTP/1%.%d (%d+)")), headers = {}, status_line = line }
  while true do
    local l, e = c:receive("*l")
    if not l then return nil, e end
    if l == "" then break end
    local k, v = l:match("^([^:]+):%s*(.-)%s*$")
    res.headers[k:lower()] = v
  end
  local cl = res.headers["content-length"]
  if res.status == 204 or res.status == 304 or cl == "0" then
    res.body = "" -- luasocket's receive(0) waits for data that never comes
  elseif cl then
    local body, e, partial = c:receive(tonumber(cl))
    res.body, res.err = body or partial, e
  elseif (res.headers["transfer-encoding"] or ""):lower():find("chunked", 1, true) then
    local parts = {}
    while true do
      local size_line, e = c:receive("*l")
      if not size_line then res.err = e; break end
      local size = tonumber(size_line:match("^%x+") or "", 16)
      if not size then res.err = "bad chunk"; break end
      if size == 0 then c:receive("*l"); break end
      local chunk, e2, partial = c:receive(size)
      if not chunk then parts[#parts + 1] = partial; res.err = e2; break end
      parts[#parts + 1] = chunk
      c:receive("*l")
    end
    res.body = table.concat(parts)
  else
    local body, _, partial = c:receive("*a")
    res.body = body or partial
  end
  return res
end

local function request(fake, method, path, opts)
  local c = connect(fake, opts and opts.timeout)
  send_request(c, fake, method, path, opts)
  local res, err = read_response(c)
  c:close()
  return res, err
end

-- Everything the server sends on one connection until it closes it.
local function raw_exchange(fake, method, path, opts)
  local c = connect(fake, opts and opts.timeout)
  send_request(c, fake, method, path, opts)
  local all, err, partial = c:receive("*a")
  c:close()
  return all or partial, err
end

local function json(res)
  return cjson.decode(res.body)
end

local function tokens_path(id) return "/users/" .. id .. "/manage/api-tokens" end

local function ids(list)
  local out = {}
  for i, t in ipairs(list) do out[i] = t.id end
  return out
end

local function count_keys(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

describe("atladmin-fake", function()
  local fake = Fake.fixture { key = KEY, state = state, page_size = 2 }

  describe("auth", function()
    it("answers 401 without a bearer key or with the wrong one", function()
      for _, opts in ipairs { { auth = false }, { key = "nope" },
                              { auth = false, headers = { Authorization = "Basic " .. KEY } } } do
        local res = request(fake, "GET", tokens_path(ALICE), opts)
        assert.equal(401, res.status)
        assert.equal("application/json", res.headers["content-type"])
        assert.equal("unauthorized", json(res).key)
        assert.is_string(json(res).message)
      end
    end)

    it("accepts the key and reports it started on", function()
      assert.equal(KEY, fake.key)
      assert.matches("^http://127%.0%.0%.1:%d+$", fake.url)
      assert.equal(200, request(fake, "GET", tokens_path(ALICE)).status)
    end)

    it("takes the key from the environment, then the state, then the default", function()
      local s = state()
      s.key = "key-from-state"
      local a = Fake.start { state = s }
      local b = Fake.start { state = s, env = { ATLADMIN_FAKE_KEY = "key-from-env" } }
      local c = Fake.start { state = s, env = { ATLADMIN_FAKE_KEY = "key-from-env" }, key = "cli" }
      local d = Fake.start {}
      local ok, err = pcall(function()
        for _, pair in ipairs { { a, "key-from-state" }, { b, "key-from-env" }, { c, "cli" },
                                { d, "test-admin-key" } } do
          local f, want = pair[1], pair[2]
          assert.equal(want, f.key)
          assert.equal(401, request(f, "GET", tokens_path(ALICE), { key = want .. "x" }).status)
          assert.are_not.equal(401, request(f, "GET", tokens_path(ALICE), { key = want }).status)
        end
      end)
      a:stop(); b:stop(); c:stop(); d:stop()
      assert(ok, err)
    end)
  end)

  describe("api tokens", function()
    it("lists tokens exactly as stored, nulls and extra fields included", function()
      local res = request(fake, "GET", tokens_path(ALICE))
      assert.equal(200, res.status)
      assert.equal("application/json", res.headers["content-type"])
      assert.matches('"expiry":null', res.body, 1, true)
      local list = json(res)
      assert.same({ "asp_1", "asp_2" }, ids(list))
      assert.equal(cjson.null, list[1].expiry)
      assert.equal(1, list[1].anyExtra)
      assert.equal("2024-05-01T00:00:00.000Z", list[1].lastAccess)
      assert.is_nil(list[2].lastAccess)
    end)

    it("revokes a token, which then disappears", function()
      local res = request(fake, "DELETE", tokens_path(ALICE) .. "/asp_1")
      assert.equal(204, res.status)
      assert.equal("", res.body)
      assert.same({ "asp_2" }, ids(json(request(fake, "GET", tokens_path(ALICE)))))
      res = request(fake, "DELETE", tokens_path(ALICE) .. "/asp_1")
      assert.equal(404, res.status)
      assert.equal("notFound", json(res).key)
    end)

    it("answers accountNotFound for an unknown account", function()
      for _, m in ipairs { { "GET", tokens_path("nobody") }, { "DELETE", tokens_path("nobody") .. "/asp_1" },
                           { "GET", "/users/nobody/manage" }, { "GET", "/users/nobody/manage/profile" },
                           { "POST", "/users/nobody/manage/lifecycle/disable" } } do
        local res = request(fake, m[1], m[2])
        assert.equal(404, res.status)
        assert.equal("accountNotFound", json(res).key)
      end
    end)

    it("answers notFound for unknown routes and 405 for a wrong method", function()
      for _, p in ipairs { "/", "/users", "/users/" .. ALICE, tokens_path(ALICE) .. "/asp_1/x",
                           "/users/" .. ALICE .. "/manage/nope", "/admin/v2/orgs/org-1/users" } do
        local res = request(fake, "GET", p)
        assert.equal(404, res.status, p)
        assert.equal("notFound", json(res).key, p)
      end
      local res = request(fake, "POST", tokens_path(ALICE))
      assert.equal(405, res.status)
      assert.equal("GET", res.headers.allow)
      res = request(fake, "GET", tokens_path(ALICE) .. "/asp_1")
      assert.equal(405, res.status)
      assert.equal("DELETE", res.headers.allow)
      res = request(fake, "PUT", "/users/" .. ALICE .. "/manage/profile")
      assert.equal(405, res.status)
    end)

    it("refuses denied privileges with forbidden.action", function()
      local res = request(fake, "DELETE", tokens_path(BOB) .. "/asp_bob")
      assert.equal(403, res.status)
      local body = json(res)
      assert.equal("forbidden.action", body.key)
      assert.same({ allowed = false, reason = { key = "denied" } }, body.context)
      res = request(fake, "GET", tokens_path(DAVE))
      assert.equal(403, res.status)
      assert.equal("forbidden.action", json(res).key)
      -- nothing was revoked
      assert.same({ "asp_bob" }, ids(json(request(fake, "GET", tokens_path(BOB)))))
    end)

    it("refuses every call on an unverified account", function()
      for _, m in ipairs { { "GET", tokens_path(CAROL) }, { "GET", "/users/" .. CAROL .. "/manage" },
                           { "GET", "/users/" .. CAROL .. "/manage/profile" } } do
        local res = request(fake, m[1], m[2])
        assert.equal(403, res.status)
        assert.equal("forbidden.targetUnverified", json(res).key)
      end
    end)

    it("sends rate limit headers on every API response", function()
      for _, p in ipairs { tokens_path(ALICE), tokens_path("nobody"), "/nope",
                           "/admin/api-access/v1/orgs/org-1/api-tokens" } do
        local res = request(fake, "GET", p)
        assert.matches("^%d+$", res.headers["x-ratelimit-limit"])
        assert.matches("^%d+$", res.headers["x-ratelimit-remaining"])
        assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$", res.headers["x-ratelimit-reset"])
      end
      assert.is_nil(request(fake, "GET", "/_fake/health").headers["x-ratelimit-limit"])
    end)
  end)

  describe("permissions, profile, lifecycle", function()
    it("reports every privilege, or only the ones asked for", function()
      local all = json(request(fake, "GET", "/users/" .. BOB .. "/manage"))
      for _, p in ipairs { "profile", "profile.write", "profile.read", "email.set",
                           "lifecycle.enablement", "apiToken.read", "apiToken.delete" } do
        assert.is_table(all[p], p)
      end
      assert.same({ allowed = false, reason = { key = "denied" } }, all["apiToken.delete"])
      assert.same({ allowed = true, reason = { key = "allowed" } }, all["apiToken.read"])
      assert.same({ allowed = false, reason = { key = "denied" } }, all["profile.write"].name)
      local some = json(request(fake, "GET",
        "/users/" .. BOB .. "/manage?privileges=apiToken.delete&privileges=apiToken.read"))
      assert.equal(2, count_keys(some))
      assert.is_false(some["apiToken.delete"].allowed)
      assert.is_true(some["apiToken.read"].allowed)
    end)

    it("reads and patches a profile", function()
      local res = request(fake, "GET", "/users/" .. ALICE .. "/manage/profile")
      assert.equal(200, res.status)
      local account = json(res).account
      assert.equal(ALICE, account.account_id)
      assert.equal("Alice Example", account.name)
      assert.equal("active", account.account_status)
      res = request(fake, "PATCH", "/users/" .. ALICE .. "/manage/profile",
        { body = '{"name":"Alice New","extended_profile":{"department":"Ops"}}' })
      assert.equal(200, res.status)
      account = json(res).account
      assert.equal("Alice New", account.name)
      assert.same({ job_title = "Engineer", department = "Ops" }, account.extended_profile)
      assert.equal("Alice New", json(request(fake, "GET", "/users/" .. ALICE .. "/manage/profile")).account.name)
    end)

    it("rejects a profile patch that is not JSON or has a wrong type", function()
      local p = "/users/" .. ALICE .. "/manage/profile"
      local res = request(fake, "PATCH", p, { body = "name=x" })
      assert.equal(400, res.status)
      assert.equal("bodyParseFailure", json(res).key)
      res = request(fake, "PATCH", p, { body = '{"name":5,"locale":"de-DE"}' })
      assert.equal(400, res.status)
      local body = json(res)
      assert.equal("fieldConstraintsViolated", body.key)
      assert.equal("name", body.context.fieldViolations[1].field)
      assert.equal(1, #body.context.fieldViolations)
      -- nothing was applied
      assert.equal("en-US", json(request(fake, "GET", p)).account.locale)
      res = request(fake, "PATCH", "/users/" .. BOB .. "/manage/profile", { body = '{"name":"x"}' })
      assert.equal(403, res.status)
    end)

    it("disables and enables an account, with 409 when it is already so", function()
      local base = "/users/" .. ALICE .. "/manage/lifecycle/"
      assert.equal(204, request(fake, "POST", base .. "disable", { body = '{"message":"bye"}' }).status)
      local profile = json(request(fake, "GET", "/users/" .. ALICE .. "/manage/profile"))
      assert.equal("inactive", profile.account.account_status)
      local res = request(fake, "POST", base .. "disable")
      assert.equal(409, res.status)
      assert.equal("conflict.lifecycleErrors", json(res).key)
      assert.equal(204, request(fake, "POST", base .. "enable").status)
      res = request(fake, "POST", base .. "enable")
      assert.equal(409, res.status)
      assert.equal("conflict.lifecycleErrors", json(res).key)
      assert.equal(400, request(fake, "POST", base .. "disable", { body = "{oops" }).status)
      res = request(fake, "POST", "/users/" .. BOB .. "/manage/lifecycle/disable")
      assert.equal(403, res.status)
      assert.equal("forbidden.action", json(res).key)
      assert.equal(204, request(fake, "POST", "/users/" .. DAVE .. "/manage/lifecycle/enable").status)
    end)
  end)

  describe("organizations", function()
    local function follow(first)
      local pages, items, url = 0, {}, fake.url .. first
      while url do
        assert.equal(fake.url, url:sub(1, #fake.url))
        local res = request(fake, "GET", url:sub(#fake.url + 1))
        assert.equal(200, res.status, url)
        local body = json(res)
        pages = pages + 1
        for _, d in ipairs(body.data) do items[#items + 1] = d end
        assert.is_string(body.links.self)
        url = body.links.next
        if pages > 20 then error("links.next never ends") end
      end
      return items, pages
    end

    it("pages through org users following links.next", function()
      local first = json(request(fake, "GET", "/admin/v1/orgs/org-1/users"))
      assert.equal(5, first.meta.total)
      assert.equal(2, #first.data)
      assert.matches("^http://127%.0%.0%.1:%d+/admin/v1/orgs/org%-1/users%?cursor=", first.links.next)
      local users, pages = follow("/admin/v1/orgs/org-1/users")
      assert.equal(3, pages)
      local got = {}
      for i, u in ipairs(users) do got[i] = u.account_id end
      assert.same({ ALICE, BOB, DAVE, ERIN, CAROL }, got)
      local alice = users[1]
      assert.equal("Alice Example", alice.name)
      assert.equal("alice@example.com", alice.email)
      assert.equal("atlassian", alice.account_type)
      assert.equal("active", alice.account_status)
      assert.equal("inactive", users[3].account_status)
      assert.is_string(alice.picture)
      assert.is_boolean(alice.access_billable)
      assert.is_table(alice.product_access)
      assert.equal("2024-05-01T00:00:00.000Z", alice.last_active)
    end)

    it("answers an unknown org and a bad cursor in the Organizations error shape", function()
      local res = request(fake, "GET", "/admin/v1/orgs/nope/users")
      assert.equal(404, res.status)
      local e = json(res).errors[1]
      assert.equal("404", e.status)
      assert.equal("ADMIN-404-2", e.code)
      assert.is_string(e.id)
      assert.is_string(e.title)
      assert.is_string(e.detail)
      res = request(fake, "GET", "/admin/v1/orgs/org-1/users?cursor=garbage")
      assert.equal(400, res.status)
      assert.equal("400", json(res).errors[1].status)
    end)

    it("pages through every token of the org", function()
      local tokens, pages = follow("/admin/api-access/v1/orgs/org-1/api-tokens")
      assert.equal(3, pages)
      assert.same({ "asp_1", "asp_2", "asp_bob", "asp_d", "asp_e1", "asp_e2" }, ids(tokens))
      local t = tokens[1]
      assert.equal("CI", t.label)
      assert.equal("ALLOWED", t.status)
      assert.equal("2024-01-02T03:04:05.000Z", t.createdAt)
      assert.equal("2024-05-01T00:00:00.000Z", t.lastActiveAt)
      assert.equal(cjson.null, t.expiresAt)
      assert.same({ id = ALICE, orgId = "org-1", name = "Alice Example", email = "alice@example.com" }, t.user)
      assert.equal("2030-01-01T00:00:00.000Z", tokens[6].expiresAt)
      local res = request(fake, "GET", "/admin/api-access/v1/orgs/org-1/api-tokens")
      assert.equal(6, json(res).meta.total)
      assert.is_string(res.headers["x-ratelimit-remaining"])
    end)

    it("refuses the token listing where API access is off", function()
      local res = request(fake, "GET", "/admin/api-access/v1/orgs/org-closed/api-tokens")
      assert.equal(403, res.status)
      assert.equal("403", json(res).errors[1].status)
    end)

    it("implements the org-wide revoke, and records it", function()
      assert.equal(204, request(fake, "DELETE", "/admin/api-access/v1/orgs/org-1/api-tokens").status)
      assert.same({}, ids(json(request(fake, "GET", tokens_path(ALICE)))))
      assert.equal(1, #fake:requests { method = "DELETE", path = "/admin/api-access/v1/orgs/org-1/api-tokens" })
    end)
  end)

  describe("raw paths and recording", function()
    it("treats %2F as part of an id and records the path raw", function()
      local res = request(fake, "GET", "/users/a%2Fb/manage/api-tokens")
      assert.equal(200, res.status)
      assert.same({ "x/y" }, ids(json(res)))
      assert.equal(204, request(fake, "DELETE", "/users/a%2Fb/manage/api-tokens/x%2Fy").status)
      res = request(fake, "GET", "/users/a/b/manage/api-tokens")
      assert.equal(404, res.status)
      assert.equal("notFound", json(res).key)
      local reqs = fake:requests()
      assert.equal("/users/a%2Fb/manage/api-tokens", reqs[1].path)
      assert.equal("/users/a%2Fb/manage/api-tokens/x%2Fy", reqs[2].path)
      assert.equal("/users/a/b/manage/api-tokens", reqs[3].path)
    end)

    it("keeps dot segments and escapes as sent", function()
      request(fake, "GET", "/users/..%2F..%2Fadmin/manage/api-tokens")
      request(fake, "GET", "/users/%41LICE/manage/api-tokens")
      local reqs = fake:requests()
      assert.equal("/users/..%2F..%2Fadmin/manage/api-tokens", reqs[1].path)
      assert.equal("/users/%41LICE/manage/api-tokens", reqs[2].path)
    end)

    it("records method, raw query, lowercased headers with the real key, body and order", function()
      request(fake, "GET", "/users/" .. ALICE .. "/manage?privileges=a%2Cb&privileges=c+d&x",
        { headers = { ["X-Trace-Id"] = "t-1" } })
      request(fake, "PATCH", "/users/" .. ALICE .. "/manage/profile", { body = '{"nickname":"al"}' })
      request(fake, "GET", "/_fake/health")
      local reqs = fake:requests()
      assert.equal(2, #reqs)
      assert.equal("GET", reqs[1].method)
      assert.equal("/users/" .. ALICE .. "/manage", reqs[1].path)
      assert.equal("privileges=a%2Cb&privileges=c+d&x", reqs[1].query)
      assert.equal("Bearer " .. KEY, reqs[1].headers.authorization)
      assert.equal("t-1", reqs[1].headers["x-trace-id"])
      assert.equal("", reqs[1].body)
      assert.equal("PATCH", reqs[2].method)
      assert.equal("", reqs[2].query)
      assert.equal('{"nickname":"al"}', reqs[2].body)
      assert.equal("application/json", reqs[2].headers["content-type"])
      assert.is_true(reqs[2].seq > reqs[1].seq)
      assert.equal(1, #fake:requests { method = "PATCH" })
      fake:clear_requests()
      assert.same({}, fake:requests())
    end)

    it("records requests that fail auth or hit a fault", function()
      request(fake, "GET", tokens_path(ALICE), { auth = false })
      fake:fault { type = "drop" }
      request(fake, "GET", tokens_path(ALICE))
      assert.equal(2, #fake:requests())
    end)

    it("refuses a body over 1 MiB", function()
      local c = connect(fake)
      assert(c:send("PATCH /users/" .. ALICE .. "/manage/profile HTTP/1.1\r\nHost: x\r\n" ..
                    "Authorization: Bearer " .. KEY .. "\r\nContent-Length: 2000000\r\n\r\n"))
      local res = read_response(c)
      c:close()
      assert.equal(413, res.status)
    end)

    it("keeps a connection alive across requests", function()
      local c = connect(fake)
      for _ = 1, 3 do
        send_request(c, fake, "GET", tokens_path(ALICE))
        local res = read_response(c)
        assert.equal(200, res.status)
        assert.same({ "asp_1", "asp_2" }, ids(json(res)))
      end
      c:close()
    end)
  end)

  describe("control API", function()
    it("answers health, and gets and replaces the state", function()
      local res = request(fake, "GET", "/_fake/health", { auth = false })
      assert.equal(200, res.status)
      assert.same({ ok = true }, json(res))
      local s = fake:state()
      assert.is_table(s.accounts[ALICE])
      fake:set_state { accounts = { solo = { tokens = { { id = "t", label = "l", createdAt = "c" } } } } }
      assert.same({ "t" }, ids(json(request(fake, "GET", tokens_path("solo")))))
      assert.equal(404, request(fake, "GET", tokens_path(ALICE)).status)
      res = request(fake, "PUT", "/_fake/state", { body = '{"accounts":{"x":{"tokens":[1]}}}' })
      assert.equal(400, res.status)
      res = request(fake, "PUT", "/_fake/state", { body = "nope" })
      assert.equal(400, res.status)
      assert.same({ "t" }, ids(json(request(fake, "GET", tokens_path("solo")))))
    end)

    it("rejects faults it does not understand", function()
      for _, body in ipairs { '{"type":"nope"}', '{"count":1}', '{"type":"status"}', "[",
                              '{"type":"raw"}', '{"type":"drop","count":0}' } do
        local res = request(fake, "POST", "/_fake/faults", { body = body })
        assert.equal(400, res.status, body)
      end
      assert.same({}, fake:faults())
    end)

    it("never applies faults to the control API", function()
      fake:fault { type = "drop", path_prefix = "/" }
      assert.equal(200, request(fake, "GET", "/_fake/health").status)
      assert.equal(1, #fake:faults())
      assert.is_nil((request(fake, "GET", tokens_path(ALICE))))
      assert.same({}, fake:faults())
    end)
  end)

  describe("faults", function()
    local function normal_still_works()
      local res = request(fake, "GET", tokens_path(ALICE))
      assert.equal(200, res.status)
      assert.same({ "asp_1", "asp_2" }, ids(json(res)))
    end

    it("status: answers the given status, body and headers, once", function()
      fake:fault { type = "status", status = 429, headers = { ["Retry-After"] = "1" },
                   body = '{"code":429,"message":"slow down"}' }
      local res = request(fake, "GET", tokens_path(ALICE))
      assert.equal(429, res.status)
      assert.equal("1", res.headers["retry-after"])
      assert.equal("slow down", json(res).message)
      assert.is_string(res.headers["x-ratelimit-reset"])
      normal_still_works()
    end)

    it("status: sends HTML with its content type", function()
      fake:fault { type = "status", status = 503, body = "<html>busy</html>", content_type = "text/html" }
      local res = request(fake, "GET", tokens_path(ALICE))
      assert.equal(503, res.status)
      assert.equal("text/html", res.headers["content-type"])
      assert.equal("<html>busy</html>", res.body)
    end)

    it("status: sends a 204 with a body when asked to", function()
      fake:fault { type = "status", status = 204, body = "hello" }
      local raw = raw_exchange(fake, "DELETE", tokens_path(ALICE) .. "/asp_1")
      assert.matches("^HTTP/1%.1 204 ", raw)
      assert.matches("Content%-Length: 5\r\n", raw)
      assert.equal("hello", raw:sub(-5))
      -- the fault answered instead of the API: nothing was revoked
      normal_still_works()
    end)

    it("matches on method, exact path and prefix, and counts uses", function()
      fake:fault { type = "status", status = 500, method = "DELETE", count = 2 }
      fake:fault { type = "status", status = 502, path = tokens_path(BOB) }
      fake:fault { type = "status", status = 503, path_prefix = "/admin/" }
      assert.equal(200, request(fake, "GET", tokens_path(ALICE)).status)
      assert.equal(500, request(fake, "DELETE", tokens_path(ALICE) .. "/asp_1").status)
      assert.equal(502, request(fake, "GET", tokens_path(BOB)).status)
      assert.equal(200, request(fake, "GET", tokens_path(BOB)).status)
      assert.equal(503, request(fake, "GET", "/admin/v1/orgs/org-1/users").status)
      assert.equal(500, request(fake, "DELETE", tokens_path(ALICE) .. "/asp_1").status)
      assert.equal(204, request(fake, "DELETE", tokens_path(ALICE) .. "/asp_1").status)
      assert.same({}, fake:faults())
    end)

    it("runs in FIFO order, and count = -1 lasts until cleared", function()
      fake:fault { type = "status", status = 501 }
      fake:fault { type = "status", status = 502, count = -1 }
      assert.equal(501, request(fake, "GET", tokens_path(ALICE)).status)
      for _ = 1, 3 do assert.equal(502, request(fake, "GET", tokens_path(ALICE)).status) end
      fake:clear_faults()
      normal_still_works()
    end)

    it("delay: answers normally, late", function()
      fake:fault { type = "delay", ms = 300 }
      local t0 = socket.gettime()
      local res = request(fake, "GET", tokens_path(ALICE))
      assert.is_true(socket.gettime() - t0 >= 0.25)
      assert.equal(200, res.status)
      assert.same({ "asp_1", "asp_2" }, ids(json(res)))
    end)

    it("delay_ms: waits before any fault", function()
      fake:fault { type = "status", status = 500, delay_ms = 300 }
      local t0 = socket.gettime()
      assert.equal(500, request(fake, "GET", tokens_path(ALICE)).status)
      assert.is_true(socket.gettime() - t0 >= 0.25)
    end)

    it("hang: never answers, and closes after ms", function()
      fake:fault { type = "hang", ms = 500 }
      local t0 = socket.gettime()
      local res, err = request(fake, "GET", tokens_path(ALICE), { timeout = 5 })
      assert.is_nil(res)
      assert.equal("closed", err)
      assert.is_true(socket.gettime() - t0 >= 0.45)
      normal_still_works()
    end)

    it("hang: notices a client that gives up", function()
      fake:fault { type = "hang", ms = 60000 }
      local res, err = request(fake, "GET", tokens_path(ALICE), { timeout = 0.3 })
      assert.is_nil(res)
      assert.equal("timeout", err)
      local deadline = socket.gettime() + 3
      while not fake:log():find("hung, then closed", 1, true) and socket.gettime() < deadline do
        socket.sleep(0.05)
      end
      assert.truthy(fake:log():find("hung, then closed", 1, true))
      normal_still_works()
    end)

    -- luasocket reports a reset as "closed" too; what tells them apart is that a socket
    -- closed politely still takes a write, while one that was reset refuses it at once
    local function exchange_then_write(method, path)
      local c = connect(fake)
      send_request(c, fake, method, path)
      local all, err, partial = c:receive("*a")
      local wrote = c:send("more")
      c:close()
      return all or partial, err, wrote
    end

    it("drop: closes without a response and without acting", function()
      fake:fault { type = "drop", method = "DELETE" }
      local raw, err, wrote = exchange_then_write("DELETE", tokens_path(ALICE) .. "/asp_1")
      assert.equal("", raw)
      assert.equal("closed", err)
      assert.truthy(wrote)
      normal_still_works()
    end)

    it("drop with apply: acts, then loses the response", function()
      fake:fault { type = "drop", method = "DELETE", apply = true }
      assert.equal("", (raw_exchange(fake, "DELETE", tokens_path(ALICE) .. "/asp_1")))
      assert.same({ "asp_2" }, ids(json(request(fake, "GET", tokens_path(ALICE)))))
    end)

    it("reset: aborts the connection with an RST", function()
      fake:fault { type = "reset" }
      local raw, err, wrote = exchange_then_write("GET", tokens_path(ALICE))
      assert.equal("", raw)
      assert.equal("closed", err)
      assert.is_nil(wrote)
      assert.truthy(fake:log():find(" -> reset", 1, true))
      normal_still_works()
    end)

    it("malformed: 200 with a body that is not JSON", function()
      fake:fault { type = "malformed" }
      local res = request(fake, "GET", tokens_path(ALICE))
      assert.equal(200, res.status)
      assert.equal("application/json", res.headers["content-type"])
      assert.equal('{"not json', res.body)
      assert.is_false(pcall(cjson.decode, res.body))
      fake:fault { type = "malformed", body = "<<<" }
      assert.equal("<<<", request(fake, "GET", tokens_path(ALICE)).body)
    end)

    it("truncate: promises the full length and sends half", function()
      local full = request(fake, "GET", tokens_path(ALICE)).body
      fake:fault { type = "truncate" }
      local res = request(fake, "GET", tokens_path(ALICE))
      assert.equal(200, res.status)
      assert.equal(#full, tonumber(res.headers["content-length"]))
      assert.equal("closed", res.err)
      assert.equal(full:sub(1, math.floor(#full / 2)), res.body)
      normal_still_works()
    end)

    it("truncate_chunked: ends a chunked body without its last chunk", function()
      fake:fault { type = "truncate_chunked", body = '[{"id":"a"},{"id":"b"},{"id":"c"}]' }
      local res = request(fake, "GET", tokens_path(ALICE))
      assert.equal(200, res.status)
      assert.equal("chunked", res.headers["transfer-encoding"])
      assert.equal("closed", res.err)
      assert.equal('[{"id":"a"},{"id"', res.body) -- the first 17 of 34 bytes
      normal_still_works()
    end)

    it("stall: sends part of the body, pauses, then the rest", function()
      fake:fault { type = "stall", ms = 800 }
      local c = connect(fake, 5)
      send_request(c, fake, "GET", tokens_path(ALICE))
      local status = c:receive("*l")
      assert.matches(" 200 ", status)
      local len
      while true do
        local l = assert(c:receive("*l"))
        if l == "" then break end
        len = len or tonumber(l:match("^[Cc]ontent%-[Ll]ength:%s*(%d+)"))
      end
      c:settimeout(0.4)
      local body, err, partial = c:receive(len)
      assert.is_nil(body)
      assert.equal("timeout", err)
      assert.is_true(#partial > 0 and #partial < len)
      c:settimeout(5)
      local t0 = socket.gettime()
      local rest = assert(c:receive(len - #partial))
      c:close()
      assert.is_true(socket.gettime() - t0 >= 0.2)
      assert.same({ "asp_1", "asp_2" }, ids(cjson.decode(partial .. rest)))
    end)

    it("big: streams a large valid JSON array", function()
      fake:fault { type = "big", bytes = 300000 }
      local res = request(fake, "GET", tokens_path(ALICE), { timeout = 10 })
      assert.equal(200, res.status)
      assert.is_nil(res.err)
      assert.is_true(#res.body > 290000 and #res.body <= 300000)
      local list = cjson.decode(res.body)
      assert.is_true(#list > 4000)
      assert.is_string(list[1].id)
    end)

    it("nested: sends deep brackets, unclosed or closed", function()
      fake:fault { type = "nested", depth = 1000 }
      assert.equal(string.rep("[", 1000), request(fake, "GET", tokens_path(ALICE)).body)
      fake:fault { type = "nested", depth = 10, closed = true }
      assert.equal(string.rep("[", 10) .. string.rep("]", 10), request(fake, "GET", tokens_path(ALICE)).body)
    end)

    it("raw: writes exactly the given bytes, then closes", function()
      local bytes = "HTTP/1.1 200 OK\r\nContent-Length: 50\r\nContent-Type: application/json\r\n\r\n[{\"id\""
      fake:fault { type = "raw", bytes = bytes }
      assert.equal(bytes, (raw_exchange(fake, "GET", tokens_path(ALICE))))
      normal_still_works()
    end)
  end)

  describe("logging", function()
    it("logs one line per request and never the key", function()
      request(fake, "GET", tokens_path(ALICE))
      request(fake, "GET", tokens_path(ALICE), { key = "wrong-" .. KEY })
      fake:requests() -- the log line is written before the response, but be sure it is flushed
      local log = fake:log()
      assert.matches("GET " .. tokens_path(ALICE):gsub("%p", "%%%0") .. " %-> 200", log)
      assert.matches("Bearer %*%*%*", log)
      assert.is_nil(log:find(KEY, 1, true))
    end)
  end)
end)

describe("atladmin-fake under load", function()
  it("serves many slow requests at once", function()
    local fake = Fake.start { key = KEY, state = state(), latency_ms = 200, quiet = true }
    local ok, err = pcall(function()
      local t0 = socket.gettime()
      assert.equal(200, request(fake, "GET", tokens_path(ALICE)).status)
      assert.is_true(socket.gettime() - t0 >= 0.18, "latency applies")
      for _, n in ipairs { 20, 64 } do
        local conns = {}
        t0 = socket.gettime()
        for i = 1, n do
          conns[i] = connect(fake, 10)
          send_request(conns[i], fake, "GET", tokens_path(ALICE))
        end
        for i = 1, n do
          local res = read_response(conns[i])
          conns[i]:close()
          assert.equal(200, res.status)
        end
        local took = socket.gettime() - t0
        -- one after another this would take n * 0.2 s
        assert.is_true(took < n * 0.2 / 3, ("%d requests took %.2f s"):format(n, took))
      end
    end)
    fake:stop()
    assert(ok, err)
  end)
end)

describe("atladmin-fake --sample", function()
  it("generates a deterministic organization with varied tokens", function()
    local a = Fake.start { sample = 40, quiet = true }
    local b = Fake.start { sample = 40, quiet = true }
    local ok, err = pcall(function()
      local s, s2 = a:state(), b:state()
      assert.equal(40, count_keys(s.accounts))
      assert.equal(40, #s.orgs["sample-org"].users)
      local first = "557057:00000000-0000-4000-8000-000000000001"
      assert.is_table(s.accounts[first])
      assert.same(ids(s.accounts[first].tokens), ids(s2.accounts[first].tokens))
      local now = os.time()
      local function age_days(iso)
        local y, mo, d = iso:match("^(%d+)-(%d+)-(%d+)")
        return (now - os.time { year = tonumber(y), month = tonumber(mo), day = tonumber(d), hour = 12 }) / 86400
      end
      local seen = { never = 0, stale = 0, recent = 0, expiring = 0, inactive = 0, deny = 0 }
      for _, acct in pairs(s.accounts) do
        if acct.status == "inactive" then seen.inactive = seen.inactive + 1 end
        for _, p in ipairs(acct.deny) do
          if p == "apiToken.delete" then seen.deny = seen.deny + 1 end
        end
        for _, t in ipairs(acct.tokens) do
          if t.lastAccess == nil then seen.never = seen.never + 1
          elseif age_days(t.lastAccess) > 90 then seen.stale = seen.stale + 1
          else seen.recent = seen.recent + 1 end
          if type(t.expiry) == "string" and age_days(t.expiry) > -15 then seen.expiring = seen.expiring + 1 end
        end
      end
      for k, n in pairs(seen) do assert.is_true(n > 0, k) end
      assert.is_true(seen.deny <= 2)
      -- the sample speaks the API like any state
      local res = request(a, "GET", tokens_path(first))
      assert.equal(200, res.status)
      res = request(a, "GET", "/admin/v1/orgs/sample-org/users")
      assert.equal(40, json(res).meta.total)
    end)
    a:stop(); b:stop()
    assert(ok, err)
  end)

  it("loads examples/sample-state.json", function()
    local f = Fake.start { state = "examples/sample-state.json", quiet = true }
    local ok, err = pcall(function()
      assert.equal("demo-admin-key", f.key)
      local s = f:state()
      local org = next(s.orgs)
      local res = request(f, "GET", "/admin/v1/orgs/" .. org .. "/users")
      assert.equal(200, res.status)
      assert.is_true(#json(res).data >= 5)
    end)
    f:stop()
    assert(ok, err)
  end)
end)

describe("atladmin-fake transports", function()
  it("listens on ::1 when asked", function()
    local probe = socket.tcp6 and socket.tcp6()
    if not (probe and probe:bind("::1", 0)) then
      if probe then probe:close() end
      pending("no IPv6 loopback here")
      return
    end
    probe:close()
    local f = Fake.start { host = "::1", quiet = true }
    local ok, err = pcall(function()
      assert.matches("^http://%[::1%]:%d+$", f.url)
      local c = socket.tcp6()
      c:settimeout(5)
      assert(c:connect("::1", f.port))
      assert(c:send("GET /_fake/health HTTP/1.1\r\nHost: [::1]\r\nConnection: close\r\n\r\n"))
      local all = c:receive("*a")
      c:close()
      assert.matches("^HTTP/1%.1 200", all)
    end)
    f:stop()
    assert(ok, err)
  end)

  it("speaks HTTPS with --tls-cert and --tls-key", function()
    local has_https = pcall(require, "ssl.https")
    local dir = os.tmpname()
    os.remove(dir)
    local made = has_https and os.execute(("mkdir -p %s && openssl req -x509 -newkey rsa:2048 -nodes " ..
      "-keyout %s/key.pem -out %s/cert.pem -days 1 -subj /CN=127.0.0.1 >/dev/null 2>&1"):format(dir, dir, dir))
    if made ~= true and made ~= 0 then
      os.execute("rm -rf " .. dir)
      pending("needs lua-sec and openssl")
      return
    end
    local f
    local ok, err = pcall(function()
      f = Fake.start { tls_cert = dir .. "/cert.pem", tls_key = dir .. "/key.pem", key = KEY,
                       state = state(), quiet = true }
      assert.matches("^https://127%.0%.0%.1:%d+$", f.url)
      local https = require "ssl.https"
      local ltn12 = require "ltn12"
      local chunks = {}
      local _, code = https.request { url = f.url .. tokens_path(ALICE), verify = "none",
        headers = { authorization = "Bearer " .. KEY }, sink = ltn12.sink.table(chunks) }
      assert.equal(200, code)
      assert.same({ "asp_1", "asp_2" }, ids(cjson.decode(table.concat(chunks))))
      assert.equal(1, #f:requests())
    end)
    if f then f:stop() end
    os.execute("rm -rf " .. dir)
    assert(ok, err)
  end)
end)
