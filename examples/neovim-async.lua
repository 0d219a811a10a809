-- examples/neovim-async.lua: list API tokens from Neovim (0.7+) without freezing the editor.
-- luacheck: globals vim
-- Requests run on an atladmin queue that libuv drives: a poll handle on the queue's pollfd and a
-- timer for its timeout() call queue:step(0), which never blocks. The editor stays responsive
-- while hundreds of accounts are listed.
--
--   :set rtp+=/path/to/atladmin   (or put lua/ and build/luajit/ on package.path/cpath)
--   :luafile examples/neovim-async.lua
--   :AtlTokensAsync ORG_ID              every managed account of the organization
--   :AtlTokensAsync ACCOUNT_ID ...      just these accounts
-- The admin key comes from $ATLASSIAN_ADMIN_TOKEN; $ATLADMIN_BASE_URL points at another server.
local atladmin = require "atladmin"
local uv = vim.loop

local M = {}

-- Lists the tokens of `accounts` (array of ids) on client, calling on_result(account_id,
-- tokens, err) for each as it completes and on_done(count) at the end. Returns a stop function.
-- The callbacks run in libuv's context: use vim.schedule there to touch buffers or windows.
function M.list_tokens(client, accounts, opts, on_result, on_done)
  opts = opts or {}
  local q = client:queue { concurrency = opts.concurrency or 16 }
  for _, id in ipairs(accounts) do q:tokens(id) end
  local poll = uv.new_poll(q:pollfd())
  local timer = uv.new_timer()
  local count, stopped = 0, false

  local function stop()
    if stopped then return end
    stopped = true
    poll:stop()
    timer:stop()
    poll:close()
    timer:close()
    q:close()
  end

  local function drive()
    if stopped then return end
    for _, d in ipairs(q:step(0)) do
      count = count + 1
      on_result(d.account_id, d.value, d.err)
    end
    if q:pending() == 0 then
      stop()
      on_done(count)
      return
    end
    -- libcurl's own timers (connect timeouts, retries, a 429 pause) wake us even if the fd is quiet
    local t = q:timeout()
    timer:stop()
    timer:start(math.max(1, math.ceil((t or 1) * 1000)), 0, drive)
  end

  poll:start("r", drive)
  drive()
  return stop
end

-- All account ids of an organization, page by page (blocking, a few requests).
local function org_accounts(client, org)
  local ids, query = {}, nil
  repeat
    local page, err = client:org_users_page(org, query)
    if not page then return nil, err end
    for _, u in ipairs(page.data) do ids[#ids + 1] = u.account_id end
    local cursor = page.links and page.links.next and page.links.next:match("[?&]cursor=([^&]+)")
    query = cursor and { cursor = cursor:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end) }
  until not query
  return ids
end

function M.setup()
  vim.api.nvim_create_user_command("AtlTokensAsync", function(cmd)
    local client = atladmin.new { base_url = os.getenv("ATLADMIN_BASE_URL") }
    local accounts = cmd.fargs
    if #accounts == 1 and not accounts[1]:find(":", 1, true) then
      local ids, err = org_accounts(client, accounts[1])
      if not ids then return vim.notify(tostring(err), vim.log.levels.ERROR) end
      accounts = ids
    end
    vim.cmd("botright new")
    local buf = vim.api.nvim_get_current_buf()
    vim.bo[buf].buftype = "nofile"
    vim.api.nvim_buf_set_lines(buf, 0, -1, false, { "# tokens of " .. #accounts .. " accounts (listing...)" })
    M.list_tokens(client, accounts, {}, function(account, tokens, err)
      local lines = {}
      if err then
        lines[1] = account .. "\tERROR\t" .. tostring(err)
      else
        for _, t in ipairs(tokens) do
          lines[#lines + 1] = table.concat({ account, t.id, t.label, t.lastAccess or "never used" }, "\t")
        end
      end
      vim.schedule(function()
        if vim.api.nvim_buf_is_valid(buf) then vim.api.nvim_buf_set_lines(buf, -1, -1, false, lines) end
      end)
    end, function(count)
      vim.schedule(function()
        if vim.api.nvim_buf_is_valid(buf) then
          vim.api.nvim_buf_set_lines(buf, 0, 1, false, { "# tokens of " .. count .. " accounts" })
        end
        client:close()
      end)
    end)
  end, { nargs = "+" })
end

if vim.api.nvim_create_user_command then M.setup() end

return M
