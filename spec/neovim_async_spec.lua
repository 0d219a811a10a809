-- examples/neovim-async.lua inside a real headless Neovim: a libuv timer keeps firing while
-- the queue's requests wait on a slow fake, and every account's tokens arrive.
local atladmin = require "atladmin"
local Fake = require "spec.support.fake"

local TOP = os.getenv("ATLADMIN_TOP") or "."
local KEY = "spec-nvim-key-77"

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

local SCRIPT = [=[
package.path = TOP .. "/lua/?.lua;" .. TOP .. "/lua/?/init.lua;" .. package.path
package.cpath = TOP .. "/build/luajit/?.so;" .. package.cpath
local ok, err = pcall(function()
  local example = dofile(TOP .. "/examples/neovim-async.lua")
  local client = require("atladmin").new { token = KEY, base_url = URL, timeout = 20 }
  local ticks = 0
  local timer = vim.loop.new_timer()
  timer:start(5, 5, function() ticks = ticks + 1 end)
  local results, lines = 0, {}
  local ticks_at_start = ticks
  example.list_tokens(client, ACCOUNTS, { concurrency = 8 }, function(account, tokens, e)
    results = results + 1
    lines[#lines + 1] = account .. " " .. (tokens and #tokens or -1) .. " " .. (e and e.key or "-")
  end, function(count)
    local f = io.open(OUT, "w")
    f:write("count ", count, "\nticks ", ticks - ticks_at_start, "\n", table.concat(lines, "\n"), "\n")
    f:close()
    timer:stop()
    vim.schedule(function() vim.cmd("qa!") end)
  end)
  -- list_tokens returned at once: nothing has completed yet
  local f = io.open(OUT .. ".early", "w")
  f:write("results_when_returned ", results, "\n")
  f:close()
end)
if not ok then
  local f = io.open(OUT, "w")
  f:write("error ", tostring(err), "\n")
  f:close()
  vim.cmd("qa!")
end
]=]

describe("Neovim, non-blocking listing", function()
  local fake

  setup(function()
    os.execute("make -s -C '" .. TOP .. "' LUA=luajit module >/dev/null")
    fake = Fake.start { key = KEY, sample = 40, latency_ms = 150 }
  end)

  teardown(function()
    if fake then fake:stop() end
  end)

  it("keeps the editor's timers firing while requests are in flight", function()
    local client = atladmin.new { token = KEY, base_url = fake.url }
    local page = client:org_users_page("sample-org")
    local accounts, want = {}, {}
    for _, u in ipairs(page.data) do
      accounts[#accounts + 1] = u.account_id
      want[u.account_id] = #client:tokens(u.account_id)
    end
    accounts[#accounts + 1] = "557057:not-managed"
    client:close()
    assert.equal(41, #accounts)

    local base = os.tmpname()
    local out, script = base .. ".out", base .. ".lua"
    local quoted = {}
    for i, a in ipairs(accounts) do quoted[i] = string.format("%q", a) end
    local f = io.open(script, "w")
    f:write(string.format("local TOP, KEY, URL, OUT = %q, %q, %q, %q\nlocal ACCOUNTS = { %s }\n",
                          TOP, KEY, fake.url, out, table.concat(quoted, ", ")), SCRIPT)
    f:close()
    os.execute("timeout 60 nvim --headless -u NONE -i NONE -c 'luafile " .. script .. "' >/dev/null 2>&1")
    local text = read(out) or "no output"
    assert.falsy(text:match("^error"), text)
    assert.equal("results_when_returned 0\n", read(out .. ".early"))
    assert.equal(41, tonumber(text:match("count (%d+)")))
    -- 41 accounts at 150 ms each, 8 at a time: several rounds trips to the server, during which
    -- a blocked editor could not have run its 5 ms timer at all
    local ticks = tonumber(text:match("ticks (%d+)"))
    assert.truthy(ticks >= 10, "the timer fired only " .. ticks .. " times")
    local seen = 0
    for account, n, key in text:gmatch("\n(%S+) (%-?%d+) (%S+)") do
      seen = seen + 1
      if account == "557057:not-managed" then
        assert.equal("accountNotFound", key)
      else
        assert.equal(want[account], tonumber(n))
      end
    end
    assert.equal(41, seen)
    os.remove(base)
    os.remove(out)
    os.remove(out .. ".early")
    os.remove(script)
  end)
end)
