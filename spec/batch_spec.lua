-- Batches against the fake: each_tokens streams results as they complete with a bounded number
-- of requests in flight, keeps errors per account, pauses on 429; revoke_many.
local atladmin = require "atladmin"
local Fake = require "spec.support.fake"

local KEY = "spec-batch-key-3c1d"

local function account(i) return string.format("557057:batch-%04d", i) end

local function state(n)
  local accounts = {}
  for i = 1, n do
    accounts[account(i)] = { tokens = {
      { id = "asp_" .. i .. "_a", label = "a" .. i, createdAt = "2024-01-01T00:00:00.000Z" },
      { id = "asp_" .. i .. "_b", label = "b" .. i, createdAt = "2024-01-02T00:00:00.000Z" },
    } }
  end
  return { accounts = accounts }
end

local function ids(n)
  local t = {}
  for i = 1, n do t[i] = account(i) end
  return t
end

local function token_requests(fake)
  return #fake:requests({ method = "GET" })
end

describe("batches", function()
  local fake = Fake.fixture { key = KEY, state = function() return state(40) end }
  local client

  setup(function()
    client = atladmin.new { token = KEY, base_url = fake.url, retries = 2, backoff_base = 0.01, timeout = 10 }
  end)

  teardown(function()
    client:close()
  end)

  describe("each_tokens", function()
    it("lists every account once, with the same tokens as tokens()", function()
      local seen, n = {}, 0
      for acct, tokens, err, res in client:each_tokens(ids(40), { concurrency = 6 }) do
        assert.is_nil(err)
        assert.is_nil(seen[acct])
        seen[acct] = true
        n = n + 1
        assert.same(assert(client:tokens(acct)), tokens)
        assert.equal(200, res.status)
      end
      assert.equal(40, n)
    end)

    it("streams in completion order: a slow account comes last", function()
      fake:fault { method = "GET", path = "/users/" .. account(1) .. "/manage/api-tokens",
                   type = "delay", ms = 700 }
      local order = {}
      for acct in client:each_tokens(ids(10), { concurrency = 4 }) do order[#order + 1] = acct end
      assert.equal(10, #order)
      assert.equal(account(1), order[10])
    end)

    it("pulls account ids lazily: only a window of them is queued at a time", function()
      local pulled, i = 0, 0
      local function gen()
        i = i + 1
        if i > 40 then return nil end
        pulled = pulled + 1
        return account(i)
      end
      local pulled_at_first
      for _ in client:each_tokens(gen, { concurrency = 3 }) do
        pulled_at_first = pulled_at_first or pulled
      end
      assert.equal(40, pulled)
      assert.truthy(pulled_at_first <= 6, "pulled " .. pulled_at_first .. " ids before the first result")
    end)

    it("keeps errors per account: the others still succeed", function()
      fake:fault { method = "GET", path = "/users/" .. account(3) .. "/manage/api-tokens",
                   type = "status", status = 500, count = -1 }
      fake:fault { method = "GET", path = "/users/" .. account(5) .. "/manage/api-tokens", type = "reset", count = -1 }
      local list = ids(8)
      list[#list + 1] = "557057:not-managed"
      local ok, failed = 0, {}
      for acct, tokens, err in client:each_tokens(list, { concurrency = 4 }) do
        if err then
          assert.is_nil(tokens)
          failed[acct] = err
        else
          ok = ok + 1
          assert.equal(2, #tokens)
        end
      end
      assert.equal(6, ok)
      assert.equal("http", failed[account(3)].kind)
      assert.equal(500, failed[account(3)].status)
      assert.equal("transport", failed[account(5)].kind)
      assert.equal(3, failed[account(5)].attempts) -- retried like a single call (retries = 2)
      assert.equal("accountNotFound", failed["557057:not-managed"].key)
    end)

    it("stops a stalled body with the same stall watch as single calls", function()
      local c = atladmin.new { token = KEY, base_url = fake.url, retries = 0, stall_timeout = 1, timeout = 20 }
      fake:fault { method = "GET", path = "/users/" .. account(2) .. "/manage/api-tokens", type = "stall", ms = 8000,
                   body = '[{"id":"asp_s","label":"stalled","createdAt":"x"}]' }
      local failed, ok = {}, 0
      for acct, _, err in c:each_tokens(ids(4), { concurrency = 4 }) do
        if err then failed[acct] = err else ok = ok + 1 end
      end
      c:close()
      assert.equal(3, ok)
      assert.equal("transport", failed[account(2)].kind)
      assert.matches("stalled", failed[account(2)].message)
    end)

    it("never has more requests at the server than the concurrency bound", function()
      -- every request waits at the server; the fake logs a request when it arrives
      fake:fault { method = "GET", path_prefix = "/users/", type = "delay", ms = 3000, count = -1 }
      local q = client:queue { concurrency = 3 }
      for _, id in ipairs(ids(12)) do q:tokens(id) end
      for _ = 1, 40 do
        assert.same({}, q:step(0.05))
        if token_requests(fake) >= 3 then break end
      end
      assert.same({}, q:step(0.3))
      assert.equal(3, token_requests(fake))
      q:close()
    end)

    it("pauses the whole batch when the server answers 429 with Retry-After", function()
      fake:fault { method = "GET", path = "/users/" .. account(1) .. "/manage/api-tokens",
                   type = "status", status = 429, headers = { ["Retry-After"] = "2" },
                   body = '{"code":429,"message":"Rate limit exceeded"}' }
      local q = client:queue { concurrency = 1 }
      for _, id in ipairs(ids(4)) do q:tokens(id) end
      -- the 429 frees the only slot: without the pause account 2 would be sent at once
      local done = {}
      for _ = 1, 5 do
        for _, d in ipairs(q:step(0.2)) do done[#done + 1] = d end
      end
      assert.same({}, done)
      assert.equal(1, token_requests(fake))
      while q:pending() > 0 do
        for _, d in ipairs(q:step(5)) do done[#done + 1] = d end
      end
      assert.equal(4, #done)
      assert.equal(account(1), done[1].account_id)
      assert.equal(2, done[1].res.attempts)
      assert.equal(2, done[1].res.waited)
      for i = 2, 4 do assert.equal(1, done[i].res.attempts) end
      assert.equal(5, token_requests(fake))
    end)

    it("can be left early with break", function()
      local n = 0
      for _ in client:each_tokens(ids(40), { concurrency = 2 }) do
        n = n + 1
        if n == 3 then break end
      end
      assert.equal(3, n)
      collectgarbage()
      -- the client still works, and the batch did not go on in the background
      assert.equal(2, #assert(client:tokens(account(1))))
      assert.truthy(#fake:requests({ method = "GET" }) <= 8)
    end)

    it("rejects bad options and arguments", function()
      assert.has_error(function() client:each_tokens(ids(2), { concurency = 2 }) end,
        "each_tokens: unknown option 'concurency'")
      assert.has_error(function() client:each_tokens("x") end)
      assert.has_error(function() client:each_tokens(ids(2), { concurrency = 0 }) end)
    end)
  end)

  describe("revoke_many", function()
    it("revokes every pair and reports per item, in input order", function()
      local pairs_ = {
        { account(1), "asp_1_a" }, { account(2), "asp_2_b" }, { account(1), "asp_missing" },
        { "557057:not-managed", "asp_x" }, { account(3), "asp_3_a" },
      }
      local results = client:revoke_many(pairs_, { concurrency = 2 })
      assert.equal(5, #results)
      for i, r in ipairs(results) do
        assert.equal(pairs_[i][1], r.account_id)
        assert.equal(pairs_[i][2], r.token_id)
      end
      assert.is_true(results[1].ok)
      assert.equal(204, results[1].res.status)
      assert.is_true(results[2].ok)
      assert.is_false(results[3].ok)
      assert.equal("notFound", results[3].err.key)
      assert.equal("accountNotFound", results[4].err.key)
      assert.is_true(results[5].ok)
      local left = assert(client:tokens(account(1)))
      assert.equal(1, #left)
      assert.equal("asp_1_b", left[1].id)
      assert.equal(5, #fake:requests({ method = "DELETE" }))
    end)

    it("returns an empty list for no pairs and checks its input", function()
      assert.same({}, client:revoke_many({}))
      assert.has_error(function() client:revoke_many({ { account(1) } }) end,
        "revoke_many: item 1 must be {account_id, token_id} (two strings)")
    end)
  end)
end)
