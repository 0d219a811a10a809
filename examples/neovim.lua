-- examples/neovim.lua: atladmin inside Neovim (0.7+, LuaJIT), without freezing the editor.
--   :AtlTokens <account_id>...          the API tokens of one or many accounts in a scratch buffer
--   :AtlRevoke <account_id> <token_id>  revoke one of them
-- luacheck: globals vim
--
-- Load it with `:luafile path/to/neovim.lua` or `dofile(...)` from init.lua (dofile returns the
-- module table below). atladmin must be on Neovim's package.path/cpath, as the 5.1-ABI build
-- (`luarocks --lua-version=5.1 make rockspec/atladmin-scm-1.rockspec`, `make install LUA=5.1`,
-- or the in-tree `make LUA=luajit`). The key is read from $ATLASSIAN_ADMIN_TOKEN;
-- $ATLADMIN_BASE_URL points it at another server (e.g. atladmin-fake); g:atladmin_concurrency
-- sets how many requests are in flight (default 16).
--
-- Requests run on an atladmin queue that libuv drives: a poll handle on the queue's pollfd and a
-- timer for its timeout() call queue:step(0), which never blocks. The commands return at once;
-- the buffer fills in as answers arrive, and the editor stays responsive while hundreds of
-- accounts are listed. When a listing or a revoke is over, the User autocommands AtlTokensDone
-- and AtlRevokeDone fire.
local atladmin = require "atladmin"
local uv = vim.loop

local M = {}

local function fail(err)
  vim.notify("atladmin: " .. tostring(err), vim.log.levels.ERROR)
end

local function fire(event)
  if vim.fn.exists("#User#" .. event) == 1 then vim.cmd("doautocmd <nomodeline> User " .. event) end
end

local function new_client()
  return pcall(atladmin.new, { base_url = vim.env.ATLADMIN_BASE_URL, timeout = 10, retries = 1 })
end

-- Drives queue q from libuv until it is empty. on_item(d) gets each completion and
-- on_done(err) the end (err: a Lua error raised while driving, normally nil); both run in
-- libuv's callback context, so use vim.schedule there to touch buffers or windows. Returns a
-- stop function (which also closes q).
function M.drive(q, on_item, on_done)
  local poll, timer = uv.new_poll(q:pollfd()), uv.new_timer()
  local stopped = false

  local function stop()
    if stopped then return end
    stopped = true
    poll:stop()
    timer:stop()
    poll:close()
    timer:close()
    q:close()
  end

  local guarded
  local function step()
    for _, d in ipairs(q:step(0)) do
      on_item(d)
      if stopped then return end
    end
    if q:pending() == 0 then
      stop()
      return on_done()
    end
    -- libcurl's own timers (connect timeouts, retries, a 429 pause) wake us even if the fd is quiet
    timer:stop()
    timer:start(math.max(1, math.ceil((q:timeout() or 1) * 1000)), 0, guarded)
  end

  guarded = M._guard(step, stop, on_done)
  poll:start("r", guarded)
  guarded()
  return stop
end

-- An error inside a libuv callback would leave the handles armed and fire again and again:
-- stop instead, and report it.
function M._guard(fn, stop, on_done)
  return function()
    local ok, err = pcall(fn)
    if not ok then
      stop()
      on_done(err)
    end
  end
end

local function count(n, what)
  return ("%d %s%s"):format(n, what, n == 1 and "" or "s")
end

local function token_line(t, indent)
  return ("%s%-28s %-24s created %s  last used %s  expires %s"):format(indent, t.id, t.label or "",
    t.createdAt or "?", t.lastAccess or "never", t.expiry or "never")
end

-- The buffer's lines: a header, then the accounts answered so far, in the order given.
local function render_lines(accounts, results, done)
  local ntokens, nerrors, nanswered = 0, 0, 0
  for _, r in pairs(results) do
    nanswered = nanswered + 1
    if r.err then nerrors = nerrors + 1 else ntokens = ntokens + #r.tokens end
  end
  local lines = {}
  if #accounts == 1 then
    local r = results[accounts[1]]
    lines[1] = ("API tokens of %s: %s"):format(accounts[1], not done and "listing..." or r and r.tokens
      and tostring(#r.tokens) or "error")
  elseif done then
    lines[1] = ("API tokens of %d accounts: %s%s"):format(#accounts, count(ntokens, "token"),
      nerrors > 0 and ", " .. count(nerrors, "error") or "")
  else
    lines[1] = ("API tokens of %d accounts: listing (%d/%d)"):format(#accounts, nanswered, #accounts)
  end
  lines[2] = ""
  local single = #accounts == 1
  for _, account in ipairs(accounts) do
    local r = results[account]
    if r and r.err then
      lines[#lines + 1] = (single and "" or account .. ": ") .. "error: " .. tostring(r.err)
    elseif r then
      if not single then lines[#lines + 1] = account .. ": " .. count(#r.tokens, "token") end
      for _, t in ipairs(r.tokens) do lines[#lines + 1] = token_line(t, single and "" or "  ") end
    end
  end
  return lines, nerrors
end

local function scratch(name)
  vim.cmd("new")
  local buf = vim.api.nvim_get_current_buf()
  vim.api.nvim_buf_set_option(buf, "buftype", "nofile")
  vim.api.nvim_buf_set_option(buf, "bufhidden", "wipe")
  vim.api.nvim_buf_set_option(buf, "swapfile", false)
  pcall(vim.api.nvim_buf_set_name, buf, name)
  return buf
end

local function set_lines(buf, lines)
  vim.api.nvim_buf_set_option(buf, "modifiable", true)
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  vim.api.nvim_buf_set_option(buf, "modifiable", false)
end

local function show_tokens(opts)
  local accounts, seen = {}, {}
  for _, a in ipairs(opts.fargs) do
    if not seen[a] then seen[a] = true; accounts[#accounts + 1] = a end
  end
  local ok, client = new_client()
  if not ok then return fail(client) end
  local q = client:queue { concurrency = tonumber(vim.g.atladmin_concurrency) or 16 }
  local queued, err = pcall(function() for _, a in ipairs(accounts) do q:tokens(a) end end)
  if not queued then -- an id that cannot be one raises before anything is sent
    q:close()
    client:close()
    return fail(err)
  end

  local buf = scratch("atladmin://" .. (#accounts == 1 and accounts[1] or #accounts .. " accounts"))
  local results, finished, scheduled = {}, false, false

  local function render()
    scheduled = false
    -- wiped, or unloaded as Neovim quits
    if not vim.api.nvim_buf_is_loaded(buf) then return end
    local lines, nerrors = render_lines(accounts, results, finished)
    set_lines(buf, lines)
    if finished then
      if #accounts == 1 and nerrors > 0 then fail(results[accounts[1]].err)
      elseif nerrors > 0 then fail(("%d of %d accounts could not be listed"):format(nerrors, #accounts)) end
      fire("AtlTokensDone")
    end
  end

  -- one redraw per turn of the event loop, however many answers came in it
  local function schedule_render()
    if not scheduled then
      scheduled = true
      vim.schedule(render)
    end
  end

  local stop = M.drive(q, function(d)
    results[d.account_id] = { tokens = d.value, err = d.err }
    schedule_render()
  end, function(derr)
    finished = true
    vim.schedule(function()
      client:close()
      if derr then fail(derr) end
    end)
    schedule_render()
  end)
  set_lines(buf, render_lines(accounts, results, finished))

  -- wiping the buffer (:bwipe, :q) drops what is still in flight
  vim.api.nvim_create_autocmd("BufWipeout", { buffer = buf, once = true, callback = function()
    if not finished then
      stop()
      finished = true
      client:close()
    end
  end })
end

local function revoke(opts)
  if #opts.fargs ~= 2 then return fail("usage: :AtlRevoke <account_id> <token_id>") end
  local account, token = opts.fargs[1], opts.fargs[2]
  local ok, client = new_client()
  if not ok then return fail(client) end
  local q = client:queue { concurrency = 1 }
  local queued, err = pcall(q.revoke, q, account, token)
  if not queued then
    q:close()
    client:close()
    return fail(err)
  end
  local result
  M.drive(q, function(d) result = d end, function(derr)
    vim.schedule(function()
      client:close()
      if derr then fail(derr)
      elseif result.err then fail(result.err)
      else
        vim.notify(("atladmin: revoked %s of %s (%d)"):format(token, account, result.res.status))
      end
      fire("AtlRevokeDone")
    end)
  end)
end

vim.api.nvim_create_user_command("AtlTokens", show_tokens,
  { nargs = "+", desc = "atladmin: list API tokens of one or many accounts" })
vim.api.nvim_create_user_command("AtlRevoke", revoke,
  { nargs = "+", desc = "atladmin: revoke an API token (account_id token_id)" })

return M
