-- client:org_users() and client:org_tokens() against the fake: cursor pagination, filters on
-- every page, errors, and links.next never used as a URL.
local atladmin = require "atladmin"
local Fake = require "spec.support.fake"
local cjson = require "cjson"

local KEY = "org-spec-key-19c2"

local function account(n) return string.format("557057:00000000-0000-4000-8000-%012d", n) end

local function state()
  local accounts, users = {}, {}
  for i = 1, 7 do
    local tokens = {}
    for k = 1, (i % 3) do
      tokens[k] = { id = "asp_" .. i .. "_" .. k, label = "token " .. k,
                    createdAt = "2024-01-0" .. k .. "T00:00:00.000Z",
                    lastAccess = k == 1 and "2025-01-01T00:00:00.000Z" or nil }
    end
    accounts[account(i)] = { tokens = tokens, status = i == 5 and "inactive" or "active",
                             profile = { name = "User " .. i, email = "user" .. i .. "@example.com" } }
    users[i] = account(i)
  end
  return { accounts = accounts, orgs = {
    acme = { users = users, api_access = true },
    closed = { users = users, api_access = false },
    empty = { users = cjson.empty_array or {}, api_access = true },
  } }
end

describe("organization iterators", function()
  local fake = Fake.fixture { key = KEY, state = state, page_size = 3 }
  local client

  before_each(function()
    client = atladmin.new { token = KEY, base_url = fake.url, retries = 0, timeout = 5 }
  end)

  after_each(function() client:close() end)

  local function collect(iter)
    local items, errs = {}, {}
    for item, err in iter do
      if item then items[#items + 1] = item else errs[#errs + 1] = err end
    end
    return items, errs
  end

  describe("org_users()", function()
    it("follows the cursor through every page, lazily", function()
      local iter = client:org_users("acme")
      assert.equal(0, #fake:requests())
      local first = iter()
      assert.equal(account(1), first.account_id)
      assert.equal(1, #fake:requests())
      local users, errs = collect(iter)
      table.insert(users, 1, first)
      assert.same({}, errs)
      assert.equal(7, #users)
      for i, u in ipairs(users) do
        assert.equal(account(i), u.account_id)
        assert.equal("User " .. i, u.name)
        assert.equal("user" .. i .. "@example.com", u.email)
        assert.equal(i == 5 and "inactive" or "active", u.account_status)
        assert.is_string(u.account_type)
      end
      local reqs = fake:requests()
      assert.equal(3, #reqs) -- 3 + 3 + 1
      assert.equal("", reqs[1].query)
      assert.truthy(reqs[2].query:find("^cursor="))
      assert.truthy(reqs[3].query:find("^cursor="))
      assert.are_not.equal(reqs[2].query, reqs[3].query)
      for _, r in ipairs(reqs) do
        assert.equal("/admin/v1/orgs/acme/users", r.path)
        assert.equal("Bearer " .. KEY, r.headers.authorization)
      end
      assert.is_nil(iter()) -- stays ended
    end)

    it("ends at once on an organization without users", function()
      local users, errs = collect(client:org_users("empty"))
      assert.same({}, users)
      assert.same({}, errs)
    end)

    it("gives false, err once for an unknown organization, then ends", function()
      local n, seen = 0, nil
      for user, err in client:org_users("nope") do
        n = n + 1
        assert.is_false(user)
        seen = err
      end
      assert.equal(1, n)
      assert.equal("http", seen.kind)
      assert.equal(404, seen.status)
      assert.equal(1, #fake:requests())
    end)

    it("gives the items it has, then the error of a later page", function()
      local iter = client:org_users("acme")
      local got = { iter(), iter(), iter() }
      assert.equal(3, #got)
      fake:fault { path = "/admin/v1/orgs/acme/users", type = "status", status = 500,
                   body = "<html>proxy error</html>", content_type = "text/html" }
      local item, err = iter()
      assert.is_false(item)
      assert.equal(500, err.status)
      assert.is_nil(iter())
      assert.equal(2, #fake:requests())
    end)

    it("reports a page without data as a decode error", function()
      fake:fault { path = "/admin/v1/orgs/acme/users", type = "status", status = 200, body = '{"links":{}}' }
      local users, errs = collect(client:org_users("acme"))
      assert.same({}, users)
      assert.equal(1, #errs)
      assert.equal("decode", errs[1].kind)
      assert.truthy(tostring(errs[1]):find("data", 1, true))
    end)

    it("takes only the query of links.next: a foreign host never gets a request", function()
      local evil = Fake.start { key = KEY, state = state() }
      local page = { data = { { account_id = "x1" } },
                     links = { next = evil.url .. "/steal/keys?cursor=" .. "b2Zmc2V0OjM%3D" .. "&extra=a%20b" } }
      fake:fault { path = "/admin/v1/orgs/acme/users", type = "status", status = 200, body = cjson.encode(page) }
      local users, errs = collect(client:org_users("acme"))
      local evil_requests = evil:requests()
      evil:stop()
      assert.same({}, errs)
      assert.equal(0, #evil_requests)
      assert.equal("x1", users[1].account_id)
      assert.equal(1 + 4, #users) -- the fault's one, then offset 3..6 from the real server
      local reqs = fake:requests()
      assert.equal("/admin/v1/orgs/acme/users", reqs[2].path)
      assert.truthy(reqs[2].query:find("cursor=b2Zmc2V0OjM%3D", 1, true))
      assert.truthy(reqs[2].query:find("extra=a%20b", 1, true))
    end)

    it("stops with an error when links.next points back to a page already read", function()
      local page = { data = { { account_id = "x1" } }, links = { next = "https://api.atlassian.com/x?cursor=same" } }
      fake:fault { path = "/admin/v1/orgs/acme/users", type = "status", status = 200, body = cjson.encode(page),
                   count = 3 }
      local users, errs = collect(client:org_users("acme"))
      assert.equal(2, #users)
      assert.equal(1, #errs)
      assert.truthy(errs[1].message:find("already read", 1, true))
      assert.equal(2, #fake:requests())
    end)

    it("raises on a bad org_id before any request", function()
      assert.has_error(function() client:org_users(nil) end)
      assert.has_error(function() client:org_users("") end)
      assert.has_error(function() client:org_users(42) end)
      assert.has_error(function() client:org_tokens("acme", "status=x") end)
      assert.equal(0, #fake:requests())
    end)

    it("encodes the org id as one path segment", function()
      local _, errs = collect(client:org_users("a/b?c"))
      assert.equal(404, errs[1].status)
      assert.equal("/admin/v1/orgs/a%2Fb%3Fc/users", fake:requests()[1].path)
    end)
  end)

  describe("org_tokens()", function()
    it("streams every token of the organization with its user", function()
      local tokens, errs = collect(client:org_tokens("acme"))
      assert.same({}, errs)
      local want = 0
      for i = 1, 7 do want = want + i % 3 end
      assert.equal(want, #tokens)
      local t = tokens[1]
      assert.equal("asp_1_1", t.id)
      assert.equal("token 1", t.label)
      assert.equal("ALLOWED", t.status)
      assert.equal("2024-01-01T00:00:00.000Z", t.createdAt)
      assert.equal("2025-01-01T00:00:00.000Z", t.lastActiveAt)
      assert.equal(account(1), t.user.id)
      assert.equal("user1@example.com", t.user.email)
      for _, r in ipairs(fake:requests()) do
        assert.equal("/admin/api-access/v1/orgs/acme/api-tokens", r.path)
        assert.equal("GET", r.method)
      end
      assert.equal(math.ceil(want / 3), #fake:requests())
    end)

    it("sends the filters with every page", function()
      local tokens = collect(client:org_tokens("acme", { status = "ALLOWED", q = "token 1" }))
      assert.is_true(#tokens > 3)
      local reqs = fake:requests()
      assert.is_true(#reqs > 1)
      for _, r in ipairs(reqs) do
        assert.truthy(r.query:find("status=ALLOWED", 1, true), r.query)
        assert.truthy(r.query:find("q=token%201", 1, true), r.query)
      end
      assert.truthy(reqs[2].query:find("cursor=", 1, true))
    end)

    it("gives the 403 of an organization without the API Access API", function()
      local tokens, errs = collect(client:org_tokens("closed"))
      assert.same({}, tokens)
      assert.equal(403, errs[1].status)
    end)
  end)

  describe("next_query()", function()
    local org = require "atladmin.org"
    it("reads repeated, encoded and empty parameters", function()
      assert.same({ cursor = "a b/c", x = { "1", "2" }, e = "" },
                  org.next_query("https://h/p?cursor=a+b%2Fc&x=1&x=2&e#frag"))
      assert.is_nil(org.next_query("https://h/p"))
      assert.is_nil(org.next_query("https://h/p?"))
      assert.is_nil(org.next_query(nil))
    end)
  end)
end)
