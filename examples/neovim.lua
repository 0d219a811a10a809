-- examples/neovim.lua: atladmin inside Neovim (0.7+, LuaJIT).
--   :AtlTokens <account_id>             the account's API tokens in a scratch buffer
--   :AtlRevoke <account_id> <token_id>  revoke one of them
-- Load it with `:luafile path/to/neovim.lua` or `dofile(...)` from init.lua. atladmin must be
-- on Neovim's package.cpath, as the 5.1-ABI build (`luarocks --lua-version=5.1 make
-- rockspec/atladmin-scm-1.rockspec` or `make install LUA=5.1`). The key is read from
-- $ATLASSIAN_ADMIN_TOKEN; $ATLADMIN_BASE_URL points it at another server (e.g. atladmin-fake).
-- The calls block the editor until the Admin API answers (10 s at most per attempt here).
local atladmin = require "atladmin"

local function with_client(fn)
  local client = atladmin.new { base_url = vim.env.ATLADMIN_BASE_URL, timeout = 10, retries = 1 }
  local a, b = fn(client)
  client:close()
  return a, b
end

local function fail(err)
  vim.notify("atladmin: " .. tostring(err), vim.log.levels.ERROR)
end

local function show_tokens(opts)
  local account = opts.args
  local tokens, err = with_client(function(c) return c:tokens(account) end)
  if not tokens then return fail(err) end

  local lines = { ("API tokens of %s: %d"):format(account, #tokens), "" }
  for _, t in ipairs(tokens) do
    lines[#lines + 1] = ("%-28s %-24s created %s  last used %s  expires %s"):format(t.id,
      t.label or "", t.createdAt or "?", t.lastAccess or "never", t.expiry or "never")
  end

  vim.cmd("new")
  local buf = vim.api.nvim_get_current_buf()
  vim.api.nvim_buf_set_option(buf, "buftype", "nofile")
  vim.api.nvim_buf_set_option(buf, "bufhidden", "wipe")
  vim.api.nvim_buf_set_option(buf, "swapfile", false)
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  vim.api.nvim_buf_set_option(buf, "modifiable", false)
  pcall(vim.api.nvim_buf_set_name, buf, "atladmin://" .. account)
end

local function revoke(opts)
  if #opts.fargs ~= 2 then return fail("usage: :AtlRevoke <account_id> <token_id>") end
  local account, token = opts.fargs[1], opts.fargs[2]
  local res, err = with_client(function(c) return c:revoke(account, token) end)
  if not res then return fail(err) end
  vim.notify(("atladmin: revoked %s of %s (%d)"):format(token, account, res.status))
end

vim.api.nvim_create_user_command("AtlTokens", show_tokens,
  { nargs = 1, desc = "atladmin: list an account's API tokens" })
vim.api.nvim_create_user_command("AtlRevoke", revoke,
  { nargs = "+", desc = "atladmin: revoke an API token (account_id token_id)" })
