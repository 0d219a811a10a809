-- The non-blocking queue: step(timeout) never waits longer than asked, completions carry the
-- same results as the blocking calls, and pollfd/events/timeout let an outside loop drive it.
local atladmin = require "atladmin"
local Fake = require "spec.support.fake"
local socket = require "socket"

local KEY = "spec-queue-key-9e2b"
local ALICE = "557057:4f9acfd2-6155-419b-8de5-5b5cf27a59a0"
local BOB = "5e5f6a63157ed50cd2b9eaca"
local CAROL = "557057:c0000000-0000-0000-0000-00000000000c"

local function state()
  return { accounts = {
    [ALICE] = { tokens = {
      { id = "asp_1", label = "one", createdAt = "2024-01-01T00:00:00.000Z" },
      { id = "asp_2", label = "two", createdAt = "2024-01-02T00:00:00.000Z" } },
      profile = { name = "Alice", email = "alice@example.com" } },
    [BOB] = { tokens = {} },
    [CAROL] = { tokens = { { id = "asp_c", label = "c", createdAt = "2024-01-01T00:00:00.000Z" } } },
  } }
end

-- Steps until every queued request is reported; returns completions by id.
local function drain(q)
  local by_id = {}
  while q:pending() > 0 do
    for _, d in ipairs(q:step(5)) do by_id[d.id] = d end
  end
  return by_id
end

describe("queue", function()
  local fake = Fake.fixture { key = KEY, state = state }
  local client

  setup(function()
    client = atladmin.new { token = KEY, base_url = fake.url, retries = 1, backoff_base = 0.01, timeout = 10 }
  end)

  teardown(function()
    client:close()
  end)

  it("gives each request an id and reports the same results as the blocking calls", function()
    local q = client:queue()
    local a = q:tokens(ALICE)
    local b = q:tokens(BOB)
    local p = q:profile(ALICE)
    local r = q:revoke(CAROL, "asp_c")
    local m = q:tokens("557057:missing")
    assert.equal(5, q:pending())
    assert.same({ 1, 2, 3, 4, 5 }, { a, b, p, r, m })
    local done = drain(q)
    assert.equal(0, q:pending())
    assert.equal("tokens", done[a].op)
    assert.equal(ALICE, done[a].account_id)
    assert.equal(2, #done[a].value)
    assert.equal(200, done[a].res.status)
    assert.same({}, done[b].value)
    assert.equal("Alice", done[p].value.name)
    assert.is_nil(done[r].value)
    assert.equal(204, done[r].res.status)
    assert.equal("asp_c", done[r].token_id)
    assert.is_nil(done[m].value)
    local _, want = client:tokens("557057:missing")
    assert.equal(want.kind, done[m].err.kind)
    assert.equal(want.key, done[m].err.key)
    assert.equal(want.endpoint, done[m].err.endpoint)
    assert.equal(tostring(want), tostring(done[m].err))
    assert.same({}, assert(client:tokens(CAROL)))
    q:close()
  end)

  it("step(0) returns at once while requests to a slow server are in flight", function()
    fake:fault { method = "GET", path_prefix = "/users/", type = "delay", ms = 1500, count = -1 }
    local q = client:queue { concurrency = 2 }
    q:tokens(ALICE)
    q:tokens(BOB)
    local empty_steps = 0
    local done = {}
    while #done < 2 do
      local got = q:step(0)
      if #got == 0 then empty_steps = empty_steps + 1 end
      for _, d in ipairs(got) do done[#done + 1] = d end
      socket.sleep(0.01)
    end
    -- 1.5 s of server time at 10 ms a loop: many steps found nothing to report and returned
    assert.truthy(empty_steps > 20, "only " .. empty_steps .. " empty steps")
    assert.is_nil(done[1].err)
    q:close()
  end)

  it("can be driven through pollfd, events and timeout (the cqueues protocol)", function()
    fake:fault { method = "GET", path_prefix = "/users/", type = "delay", ms = 200, count = -1 }
    local q = client:queue { concurrency = 4 }
    assert.is_nil(q:timeout()) -- nothing queued: nothing to wait for
    for _ = 1, 3 do q:tokens(ALICE) end
    local fd = q:pollfd()
    assert.equal("number", type(fd))
    assert.equal("r", q:events())
    assert.equal("number", type(q:timeout()))
    local waker = { getfd = function() return fd end }
    local done, waits = 0, 0
    while q:pending() > 0 do
      socket.select({ waker }, nil, q:timeout())
      waits = waits + 1
      done = done + #q:step(0)
    end
    assert.equal(3, done)
    assert.truthy(waits >= 2)
    assert.is_nil(q:timeout())
    q:close()
  end)

  it("queues enable and disable with a JSON body", function()
    local q = client:queue()
    local d = q:disable(ALICE, "left the company")
    local done = drain(q)
    assert.is_nil(done[d].err)
    assert.equal(204, done[d].res.status)
    local req = fake:requests({ method = "POST" })[1]
    assert.equal('{"message":"left the company"}', req.body)
    assert.equal("application/json", req.headers["content-type"])
    local e = q:enable(ALICE)
    done = drain(q)
    assert.equal(204, done[e].res.status)
    q:close()
  end)

  it("never shows the admin key", function()
    fake:fault { method = "GET", path_prefix = "/users/", type = "status", status = 400,
                 body = '{"key":"bad","message":"token ' .. KEY .. ' refused"}' }
    local q = client:queue()
    local id = q:tokens(ALICE)
    local err = drain(q)[id].err
    assert.falsy(tostring(err):find(KEY, 1, true))
    assert.falsy(err.body:find(KEY, 1, true))
    q:close()
  end)

  it("checks its arguments and options", function()
    local q = client:queue()
    assert.has_error(function() q:tokens("") end)
    assert.has_error(function() q:tokens(nil) end)
    assert.has_error(function() q:revoke(ALICE) end)
    assert.has_error(function() q:step(-1) end)
    assert.has_error(function() client:queue { concurency = 2 } end, "atladmin: unknown queue option 'concurency'")
    assert.has_error(function() client:queue { concurrency = 1.5 } end)
    assert.equal(0, q:pending())
    q:close()
  end)

  it("closes: queued requests are dropped and methods raise", function()
    local q = client:queue()
    q:tokens(ALICE)
    q:step(0)
    q:close()
    q:close()
    assert.matches("closed", tostring(q))
    assert.has_error(function() q:step(0) end, "atladmin: queue:step called on a closed queue")
  end)

  it("raises once its client is closed, and is collected without close", function()
    local c = atladmin.new { token = KEY, base_url = fake.url }
    local q = c:queue()
    q:tokens(ALICE)
    c:close()
    assert.has_error(function() q:step(0) end, "atladmin: queue:step called after its client was closed")
    for _ = 1, 50 do
      local c2 = atladmin.new { token = KEY, base_url = fake.url }
      local q2 = c2:queue()
      q2:tokens(ALICE)
      q2:step(0)
    end
    collectgarbage()
    collectgarbage()
  end)
end)
