-- LuaRocks as an install path: `luarocks make` for Lua 5.4, 5.3 and 5.1 into fresh trees, with no
-- variables; a clean interpreter that sees only that tree requires atladmin and makes a call
-- (5.1's tree also serves LuaJIT); the installed fake server runs; `luarocks test` passes
-- offline. Works on a copy of the sources so the checkout's build/ is not touched.
-- Runs in the 5.4 pass of spec/run only, and not from inside `luarocks test` itself.
local sh = require "spec.support.shell"

if os.getenv("ATLADMIN_LUA_VERSION") ~= "5.4" or os.getenv("ATLADMIN_INSIDE_LUAROCKS") then
  return
end

local Fake = require "spec.support.fake"

local KEY = "rocks-spec-key-93d1"
local ALICE = "557057:4f9acfd2-6155-419b-8de5-5b5cf27a59a0"
local TOP = os.getenv("ATLADMIN_TOP") or "."
local ROCKSPEC = "rockspec/atladmin-scm-1.rockspec"

-- no Lua search path or spec runner setting of this process (e.g. `make asan`'s wrapper), and
-- no way out to the network
local CLEAN_ENV = "env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_4 -u LUA_CPATH_5_4 -u LUA_INIT"
  .. " -u LUA_INIT_5_4 -u ATLADMIN_SPEC_WRAPPER -u ATLADMIN_LUA -u ATLADMIN_ALLOC_FAIL"
  .. " -u ASAN_OPTIONS -u LSAN_OPTIONS -u UBSAN_OPTIONS -u LD_PRELOAD"
  .. " http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 no_proxy=127.0.0.1,localhost"

describe("LuaRocks", function()
  if not sh.have("luarocks") then
    it("needs luarocks", function() pending("luarocks is not installed (Debian: luarocks)") end)
    return
  end

  local fake = Fake.fixture { key = KEY, lazy = true, reset = false, state = { accounts = {
    [ALICE] = { tokens = { { id = "asp_rock", label = "rock", createdAt = "2024-01-01T00:00:00.000Z",
                             uses = 7 } } },
  } } }
  local dir, src

  lazy_setup(function()
    dir = sh.tmpdir("rocks")
    src = dir .. "/src"
    -- the checkout as LuaRocks would get it: no build products, no VCS data
    local out, code = sh.run(("mkdir %s && tar -C %s --exclude=./build --exclude=./.git --exclude='*.so'"
      .. " --exclude='*.o' --exclude=./node_modules --exclude=./lua_modules --exclude=./luarocks-tree"
      .. " -cf - . | tar -C %s -xf -"):format(sh.quote(src), sh.quote(TOP), sh.quote(src)))
    assert(code == 0, out)
  end)

  lazy_teardown(function()
    sh.rmdir(dir)
  end)

  local function make_rock(v)
    local tree = dir .. "/tree-" .. v
    local out, code = sh.run(("cd %s && %s luarocks --lua-version=%s --tree %s make %s"):format(
      sh.quote(src), CLEAN_ENV, v, sh.quote(tree), ROCKSPEC))
    assert.equal(0, code, out)
    assert.matches("atladmin scm-1 is now installed in " .. tree, out, 1, true)
    return tree
  end

  -- lua: interpreter, v: tree's Lua version; path variables name only the tree
  local function probe(lua, v, tree)
    local out, code = sh.probe(lua, v, tree, fake.url, KEY, ALICE)
    assert.equal(0, code, out)
    assert.matches("version\t%d+%.%d+", out)
    assert.matches("token\tasp_rock\t" .. (v == "5.1" and "number" or "integer") .. "\n", out, 1, true)
    assert.matches("done\n$", out)
  end

  local function check_tree(tree, v)
    for _, f in ipairs { "/lib/lua/" .. v .. "/atladmin/core.so", "/share/lua/" .. v .. "/atladmin.lua",
                         "/bin/atladmin-fake" } do
      assert.truthy(sh.read(tree .. f), tree .. f .. " was not installed")
    end
    for name in (sh.run("ls " .. sh.quote(src .. "/lua/atladmin"))):gmatch("([%w_]+)%.lua") do
      if name ~= "init" then
        assert.truthy(sh.read(tree .. "/share/lua/" .. v .. "/atladmin/" .. name .. ".lua"),
          "lua/atladmin/" .. name .. ".lua is missing from the rockspec")
      end
    end
    if sh.read(src .. "/lua/bin/atladmin") then
      assert.truthy(sh.read(tree .. "/bin/atladmin"), "the atladmin command was not installed")
      -- LuaRocks' wrapper runs it with this tree's Lua and paths
      local help = sh.run(("cd / && env -i PATH=/usr/bin:/bin %s/bin/atladmin --help"):format(sh.quote(tree)))
      assert.matches("usage: atladmin", help, 1, true)
    end
    -- the installed fake server starts, and the installed module talks to it
    local out, code = sh.run(("%s/bin/atladmin-fake --help"):format(sh.quote(tree)))
    assert.equal(0, code, out)
    assert.matches("usage: atladmin-fake", out, 1, true)
  end

  it("luarocks make --lua-version=5.4 installs into a fresh tree and works from there", function()
    local tree = make_rock("5.4")
    check_tree(tree, "5.4")
    probe("lua5.4", "5.4", tree)
  end)

  it("luarocks make --lua-version=5.3 installs into a fresh tree and works from there", function()
    local tree = make_rock("5.3")
    check_tree(tree, "5.3")
    probe("lua5.3", "5.3", tree)
  end)

  it("luarocks make --lua-version=5.1 installs into a fresh tree for lua5.1 and LuaJIT", function()
    local tree = make_rock("5.1")
    check_tree(tree, "5.1")
    probe("lua5.1", "5.1", tree)
    if sh.have("luajit") then probe("luajit", "5.1", tree) end
  end)

  it("the installed fake server serves the installed module", function()
    local tree = dir .. "/tree-5.4"
    local script = ([[
port_file=%s/fake.port
%s/bin/atladmin-fake --sample 3 --key %s --port 0 --port-file "$port_file" --quiet </dev/null &
pid=$!
i=0; while [ ! -s "$port_file" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
url="http://127.0.0.1:$(cat "$port_file")"
env -i PATH=/usr/bin:/bin LUA_PATH_5_4=%s LUA_CPATH_5_4=%s lua5.4 - %s "$url" <<'EOF'
  local c = require("atladmin").new { token = arg[1], base_url = arg[2], retries = 0, timeout = 5 }
  local page = assert(c:org_users_page("sample-org"))
  print("users", #page.data)
EOF
rc=$?
kill $pid
exit $rc
]]):format(sh.quote(dir), sh.quote(tree), KEY, sh.quote(tree .. "/share/lua/5.4/?.lua"),
      sh.quote(tree .. "/lib/lua/5.4/?.so"), KEY)
    local out, code = sh.run(script)
    assert.equal(0, code, out)
    assert.matches("users\t3", out, 1, true)
  end)

  for _, v in ipairs { "5.4", "5.1" } do
    -- one spec file through `luarocks test` proves the build-and-run path; the whole suite
    -- already runs under every Lua in this same `make test`
    it("luarocks test --lua-version=" .. v .. " builds and runs specs offline", function()
      local out, code = sh.run(("cd %s && %s luarocks --lua-version=%s test %s spec/client_spec.lua"):format(
        sh.quote(src), CLEAN_ENV, v, ROCKSPEC))
      assert.equal(0, code, out)
      assert.matches("busted under lua" .. v, out, 1, true)
      local passed, failed = out:match("\n(%d+) passed, (%d+) failed%s*$")
      assert.truthy(passed, out)
      assert.equal("0", failed)
      assert.is_true(tonumber(passed) > 10, out)
    end)
  end
end)
