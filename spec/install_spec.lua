-- `make install` as an install path: DESTDIR/PREFIX installs for Lua 5.4, 5.3 and 5.1, each loaded
-- by a clean interpreter that sees only the installed files (5.1's also by LuaJIT).
-- Runs in the 5.4 pass of spec/run only (it builds other ABIs itself).
local sh = require "spec.support.shell"

if os.getenv("ATLADMIN_LUA_VERSION") ~= "5.4" or os.getenv("ATLADMIN_INSIDE_LUAROCKS") then
  return
end

local Fake = require "spec.support.fake"

local KEY = "install-spec-key-2b7e"
local ALICE = "557057:4f9acfd2-6155-419b-8de5-5b5cf27a59a0"
local TOP = os.getenv("ATLADMIN_TOP") or "."
local PREFIX = "/opt/atladmin"

describe("make install", function()
  local fake = Fake.fixture { key = KEY, lazy = true, reset = false, state = { accounts = {
    [ALICE] = { tokens = { { id = "asp_inst", label = "i", createdAt = "2024-01-01T00:00:00.000Z",
                             uses = 3 } } },
  } } }
  local dir

  lazy_setup(function()
    dir = sh.tmpdir("install")
  end)

  lazy_teardown(function()
    sh.rmdir(dir)
  end)

  local function install(lua)
    local dest = dir .. "/" .. lua
    local out, code = sh.run(("make --no-print-directory -C %s install LUA=%s PREFIX=%s DESTDIR=%s")
      :format(sh.quote(TOP), lua, PREFIX, sh.quote(dest)))
    assert.equal(0, code, out)
    return dest .. PREFIX
  end

  local function probe(interp, v, root)
    local out, code = sh.probe(interp, v, root, fake.url, KEY, ALICE)
    assert.equal(0, code, out)
    assert.matches("token\tasp_inst\t" .. (v == "5.1" and "number" or "integer") .. "\n", out, 1, true)
    assert.matches("done\n$", out)
  end

  local function check_files(root, v)
    for _, f in ipairs { "/lib/lua/" .. v .. "/atladmin/core.so", "/bin/atladmin-fake" } do
      assert.truthy(sh.read(root .. f), f .. " was not installed")
    end
    for name in (sh.run("ls " .. sh.quote(TOP .. "/lua/atladmin"))):gmatch("([%w_]+)%.lua") do
      assert.truthy(sh.read(root .. "/share/lua/" .. v .. "/atladmin/" .. name .. ".lua"),
        "lua/atladmin/" .. name .. ".lua was not installed")
    end
  end

  it("LUA=5.4 puts the module where lua5.4 finds it", function()
    local root = install("5.4")
    check_files(root, "5.4")
    probe("lua5.4", "5.4", root)
  end)

  it("LUA=5.3 puts the module where lua5.3 finds it", function()
    local root = install("5.3")
    check_files(root, "5.3")
    probe("lua5.3", "5.3", root)
  end)

  it("LUA=5.1 puts a module that lua5.1 and LuaJIT both load", function()
    local root = install("5.1")
    check_files(root, "5.1")
    probe("lua5.1", "5.1", root)
    if sh.have("luajit") then probe("luajit", "5.1", root) end
  end)
end)
