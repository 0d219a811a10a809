-- examples/neovim.lua never blocks the editor: in a real headless Neovim, :AtlTokens over 41
-- accounts of a slow fake returns at once, a libuv timer keeps firing while the requests are in
-- flight, and every account's tokens (or its error) arrive in the scratch buffer. With blocking
-- client calls the command would return only when everything was listed, and the timer could
-- not run in the meantime: both checks below would fail.
-- Runs in the luajit pass of spec/run only (it needs the LuaJIT build, build/luajit).
local sh = require "spec.support.shell"

if os.getenv("ATLADMIN_LUA_VERSION") ~= "luajit" then return end

local atladmin = require "atladmin"
local Fake = require "spec.support.fake"

local TOP = os.getenv("ATLADMIN_TOP") or "."
local KEY = "spec-nvim-key-77"
local NOT_MANAGED = "557057:not-managed"

-- Runs inside Neovim. Writes "tag<TAB>value" lines to OUT.
local SCRIPT = [=[
local lines = {}
local function emit(tag, v) lines[#lines + 1] = tag .. "\t" .. tostring(v) end
vim.notify = function(msg) emit("notify", msg) end
local ok, err = pcall(function()
  package.path = TOP .. "/lua/?.lua;" .. TOP .. "/lua/?/init.lua;" .. package.path
  package.cpath = TOP .. "/build/luajit/?.so;" .. package.cpath
  local done = false
  vim.api.nvim_create_autocmd("User", { pattern = "AtlTokensDone", callback = function() done = true end })
  dofile(TOP .. "/examples/neovim.lua")
  vim.g.atladmin_concurrency = 8

  local ticks = 0
  local timer = vim.loop.new_timer()
  timer:start(5, 5, function() ticks = ticks + 1 end)
  vim.cmd("AtlTokens " .. table.concat(ACCOUNTS, " "))
  -- the command has returned: what the buffer shows now, and the ticks from here to the end
  emit("returned", vim.api.nvim_buf_get_lines(0, 0, 1, false)[1])
  local ticks_at_return = ticks
  assert(vim.wait(60000, function() return done end, 5), "the listing did not finish")
  emit("ticks", ticks - ticks_at_return)
  timer:stop()
  timer:close()
  for _, l in ipairs(vim.api.nvim_buf_get_lines(0, 0, -1, false)) do emit("buf", l) end
end)
if not ok then emit("error", err) end
local f = assert(io.open(OUT, "w"))
f:write(table.concat(lines, "\n"), "\n")
f:close()
]=]

describe("Neovim, non-blocking listing", function()
  if not sh.have("nvim") then
    it("needs Neovim", function() pending("nvim is not installed (Debian: neovim)") end)
    return
  end

  local fake = Fake.fixture { key = KEY, sample = 40, latency_ms = 150, lazy = true, reset = false }
  local tmp = sh.tmpdir("nvim-async")

  lazy_teardown(function()
    sh.rmdir(tmp)
  end)

  it("keeps the editor's timers firing while requests are in flight", function()
    local client = atladmin.new { token = KEY, base_url = fake.url }
    local page = assert(client:org_users_page("sample-org"))
    local accounts, want = {}, {}
    for _, u in ipairs(page.data) do
      accounts[#accounts + 1] = u.account_id
      want[u.account_id] = #assert(client:tokens(u.account_id))
    end
    accounts[#accounts + 1] = NOT_MANAGED
    client:close()
    assert.equal(41, #accounts)

    local out, script = tmp .. "/out.txt", tmp .. "/script.lua"
    local quoted = {}
    for i, a in ipairs(accounts) do quoted[i] = string.format("%q", a) end
    sh.write(script, string.format("local TOP, OUT = %q, %q\nlocal ACCOUNTS = { %s }\n", TOP, out,
                                   table.concat(quoted, ", ")) .. SCRIPT)
    local log, code = sh.run(("cd %s && env HOME=%s ATLASSIAN_ADMIN_TOKEN=%s ATLADMIN_BASE_URL=%s "
      .. "timeout 90 nvim --headless -u NONE -i NONE -n -c %s -c 'qa!' </dev/null"):format(
      sh.quote(tmp), sh.quote(tmp), KEY, fake.url, sh.quote("luafile " .. script)))
    assert.equal(0, code, log)
    local text = sh.read(out) or "no output"
    local r, buf = {}, {}
    for tag, v in text:gmatch("([%w_]+)\t([^\n]*)") do
      if tag == "buf" then buf[#buf + 1] = v else r[tag] = r[tag] or v end
    end
    assert.is_nil(r.error, r.error)

    -- :AtlTokens returned before any answer came
    assert.equal("API tokens of 41 accounts: listing (0/41)", r.returned)
    -- 41 accounts at 150 ms each, 8 at a time: several round trips to the server, during which
    -- a blocked editor could not have run its 5 ms timer at all
    local ticks = tonumber(r.ticks)
    assert.truthy(ticks >= 10, "the timer fired only " .. tostring(ticks) .. " times")

    local total = 0
    for _, n in pairs(want) do total = total + n end
    assert.equal(("API tokens of 41 accounts: %d tokens, 1 error"):format(total), buf[1])
    local seen, i = 0, 3
    for _, account in ipairs(accounts) do
      local line = buf[i]
      if account == NOT_MANAGED then
        assert.matches("^" .. account:gsub("%p", "%%%0") .. ": error: .*404", line)
        i = i + 1
      else
        local n = tonumber(line:match("^" .. account:gsub("%p", "%%%0") .. ": (%d+) tokens?$"))
        assert.equal(want[account], n, line)
        for k = 1, n do assert.matches("^  %S+ ", buf[i + k]) end
        i = i + 1 + n
      end
      seen = seen + 1
    end
    assert.equal(41, seen)
    assert.equal(#buf + 1, i)
    assert.equal("atladmin: 1 of 41 accounts could not be listed", r.notify)
  end)
end)
