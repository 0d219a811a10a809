-- atladmin inside Neovim's LuaJIT (`nvim --headless`): a script run by Neovim loads the module,
-- lists and revokes tokens against the fake Admin API, then drives examples/neovim.lua's
-- :AtlTokens (one account, then several) and :AtlRevoke, waits for their User autocommands and
-- reports the scratch buffers' lines back to this spec; once for each way of installing atladmin
-- (in-tree build, make install, LuaRocks tree). spec/neovim_async_spec.lua proves that the
-- example keeps the editor responsive.
-- Runs in the luajit pass of spec/run only (it needs the LuaJIT build, build/luajit).
local sh = require "spec.support.shell"
local layouts = require "spec.support.layouts"

if os.getenv("ATLADMIN_LUA_VERSION") ~= "luajit" then return end

local Fake = require "spec.support.fake"

local KEY = "nvim-spec-key-0c42"
local ALICE = "557057:4f9acfd2-6155-419b-8de5-5b5cf27a59a0"
local BOB = "5b10ac8d82e05b22cc7d4ef5"
local TOP = os.getenv("ATLADMIN_TOP") or "."

-- Runs inside Neovim. Writes "tag<TAB>value" lines to OUT.
local SCRIPT = [==[
local LUADIR, LIBDIR, EXAMPLE, OUT, ALICE, BOB, URL, KEY = %q, %q, %q, %q, %q, %q, %q, %q
local lines = {}
local function emit(tag, v) lines[#lines + 1] = tag .. "\t" .. tostring(v) end
local notified = {}
vim.notify = function(msg, level) notified[#notified + 1] = { msg = msg, level = level } end

local ok, err = pcall(function()
  package.path = LUADIR .. "/?.lua;" .. LUADIR .. "/?/init.lua;" .. package.path
  package.cpath = LIBDIR .. "/?.so;" .. package.cpath
  local atladmin = require "atladmin"
  emit("jit", jit and jit.version)
  emit("module", package.loaded["atladmin.core"] ~= nil)
  emit("lua_file", package.searchpath("atladmin", package.path))
  emit("so_file", package.searchpath("atladmin.core", package.cpath))

  local c = atladmin.new { token = KEY, base_url = URL, timeout = 5, retries = 0 }
  local tokens = assert(c:tokens(ALICE))
  for _, t in ipairs(tokens) do emit("token", t.id .. " " .. t.label) end
  local res = assert(c:revoke(ALICE, "asp_gone"))
  emit("revoked", res.status)
  local _, e = c:revoke(ALICE, "asp_gone")
  emit("again", e.kind .. " " .. tostring(e.status))
  c:close()

  -- the example, as a user loads it; the key comes from the environment
  local done = {}
  for _, ev in ipairs({ "AtlTokensDone", "AtlRevokeDone" }) do
    vim.api.nvim_create_autocmd("User", { pattern = ev, callback = function() done[ev] = (done[ev] or 0) + 1 end })
  end
  local function wait_for(ev, n)
    assert(vim.wait(30000, function() return (done[ev] or 0) >= n end, 5), "no " .. ev)
  end
  local function buffer(tag)
    local buf = vim.api.nvim_get_current_buf()
    emit(tag .. "_buftype", vim.api.nvim_buf_get_option(buf, "buftype"))
    emit(tag .. "_modifiable", vim.api.nvim_buf_get_option(buf, "modifiable"))
    for _, l in ipairs(vim.api.nvim_buf_get_lines(buf, 0, -1, false)) do emit(tag, l) end
  end
  dofile(EXAMPLE)
  vim.cmd("AtlTokens " .. ALICE)
  -- the command returned before the answer came
  emit("returned", vim.api.nvim_buf_get_lines(0, 0, 1, false)[1])
  wait_for("AtlTokensDone", 1)
  buffer("buf")

  vim.cmd("AtlTokens " .. ALICE .. " " .. BOB .. " 557057:not-managed " .. ALICE)
  emit("returned_many", vim.api.nvim_buf_get_lines(0, 0, 1, false)[1])
  wait_for("AtlTokensDone", 2)
  buffer("many")

  vim.cmd("AtlRevoke " .. ALICE .. " asp_keep")
  wait_for("AtlRevokeDone", 1)
  vim.cmd("AtlRevoke " .. ALICE .. " asp_keep")
  wait_for("AtlRevokeDone", 2)
  for _, n in ipairs(notified) do
    emit("notify", (n.level == vim.log.levels.ERROR and "error " or "info ") .. n.msg)
  end
end)
if not ok then emit("error", err) end
local f = assert(io.open(OUT, "w"))
f:write(table.concat(lines, "\n"), "\n")
f:close()
]==]

local function state()
  return { accounts = {
    [ALICE] = { tokens = {
      { id = "asp_keep", label = "CI deploy", createdAt = "2024-01-01T00:00:00.000Z",
        lastAccess = "2024-02-01T00:00:00.000Z" },
      { id = "asp_gone", label = "old laptop", createdAt = "2023-01-01T00:00:00.000Z" },
    } },
    [BOB] = { tokens = {
      { id = "asp_bob_1", label = "laptop", createdAt = "2024-03-01T00:00:00.000Z",
        expiry = "2025-03-01T00:00:00.000Z" },
      { id = "asp_bob_2", label = "cron", createdAt = "2024-04-01T00:00:00.000Z" },
    } },
  } }
end

describe("atladmin in Neovim (LuaJIT)", function()
  if not sh.have("nvim") then
    it("needs Neovim", function() pending("nvim is not installed (Debian: neovim)") end)
    return
  end

  local fake = Fake.fixture { key = KEY, state = state, lazy = true, reset = false }
  local tmp = sh.tmpdir("nvim")

  lazy_teardown(function()
    sh.rmdir(tmp)
  end)

  for i, layout in ipairs(layouts.for_abi("luajit", tmp)) do
    describe("loading atladmin from the " .. layout.name, function()
      local results

      local function all(tag)
        local out = {}
        for _, l in ipairs(results.lines) do if l[1] == tag then out[#out + 1] = l[2] end end
        return out
      end

      lazy_setup(function()
        layout.prepare()
        fake:set_state(state())
        local dir = tmp .. "/nvim-" .. i
        assert(sh.run("mkdir -p " .. sh.quote(dir)))
        local out = dir .. "/out.txt"
        sh.write(dir .. "/script.lua", SCRIPT:format(layout.luadir, layout.libdir,
          TOP .. "/examples/neovim.lua", out, ALICE, BOB, fake.url, KEY))
        local log, code = sh.run(("cd %s && env HOME=%s ATLASSIAN_ADMIN_TOKEN=%s ATLADMIN_BASE_URL=%s "
          .. "timeout 60 nvim --headless -u NONE -i NONE -n -c %s -c 'qa!' </dev/null"):format(
          sh.quote(dir), sh.quote(dir), KEY, fake.url, sh.quote("luafile " .. dir .. "/script.lua")))
        results = { log = log, code = code, text = sh.read(out) or "", lines = {} }
        for line in results.text:gmatch("[^\n]+") do
          local tag, v = line:match("^([%w_]+)\t(.*)$")
          if tag then
            results[tag] = results[tag] or v
            results.lines[#results.lines + 1] = { tag, v }
          end
        end
      end)

      it("runs the module in Neovim's LuaJIT, loaded from there", function()
        assert.equal(0, results.code, results.log)
        assert.is_nil(results.error, results.error)
        assert.matches("^LuaJIT 2%.1", results.jit)
        assert.equal("true", results.module)
        assert.equal(layout.luadir .. "/", results.lua_file:sub(1, #layout.luadir + 1))
        assert.equal(layout.libdir .. "/atladmin/core.so", results.so_file)
      end)

      it("lists tokens and revokes one", function()
        assert.same({ "asp_keep CI deploy", "asp_gone old laptop" }, all("token"))
        assert.equal("204", results.revoked)
        assert.equal("http 404", results.again)
      end)

      it(":AtlTokens shows the tokens in a scratch buffer, filled in after the command returned", function()
        assert.equal("API tokens of " .. ALICE .. ": listing...", results.returned)
        assert.equal("nofile", results.buf_buftype)
        assert.equal("false", results.buf_modifiable)
        local buf = all("buf")
        assert.equal("API tokens of " .. ALICE .. ": 1", buf[1])
        assert.equal(3, #buf)
        assert.matches("^asp_keep +CI deploy +created 2024%-01%-01T00:00:00%.000Z  last used 2024%-02%-01",
          buf[3])
      end)

      it(":AtlTokens lists several accounts, in the order given, each error on its account", function()
        assert.equal("API tokens of 3 accounts: listing (0/3)", results.returned_many)
        assert.equal("false", results.many_modifiable)
        local buf = all("many")
        assert.equal("API tokens of 3 accounts: 3 tokens, 1 error", buf[1])
        assert.equal("", buf[2])
        assert.equal(ALICE .. ": 1 token", buf[3])
        assert.matches("^  asp_keep +CI deploy +created 2024%-01%-01", buf[4])
        assert.equal(BOB .. ": 2 tokens", buf[5])
        assert.matches("^  asp_bob_1 +laptop +created 2024%-03%-01T00:00:00%.000Z  last used never  "
          .. "expires 2025%-03%-01", buf[6])
        assert.matches("^  asp_bob_2 +cron +created 2024%-04%-01", buf[7])
        assert.matches("^557057:not%-managed: error: .*404", buf[8])
        assert.equal(8, #buf)
      end)

      it(":AtlRevoke revokes and reports a failure as an error", function()
        local n = all("notify")
        assert.equal(3, #n)
        -- from the listing of several accounts
        assert.equal("error atladmin: 1 of 3 accounts could not be listed", n[1])
        assert.matches("^info atladmin: revoked asp_keep of " .. ALICE:gsub("%p", "%%%0") .. " %(204%)$",
          n[2])
        assert.matches("^error atladmin: .*404", n[3])
        assert.not_matches(KEY, n[3], 1, true)
        assert.same({}, fake:state().accounts[ALICE].tokens)
      end)
    end)
  end
end)
