-- Same behaviour on every Lua: whole numbers are integers on 5.3+ and plain numbers on 5.1 and
-- LuaJIT, fractions stay fractions, ids stay strings; and the build for this Lua is a module
-- that any host can load (exports only luaopen_*, not linked against a Lua library).
local atladmin = require "atladmin"
local Fake = require "spec.support.fake"
local sh = require "spec.support.shell"

local KEY = "compat-spec-key-77aa"
local ACCOUNT = "12345"
local VERSION = os.getenv("ATLADMIN_LUA_VERSION") or "5.4"
local HAS_INTEGERS = math.type ~= nil

local function numtype(x)
  if HAS_INTEGERS then return math.type(x) end
  return type(x)
end

describe("on " .. (jit and jit.version or _VERSION), function()
  local fake = Fake.fixture { key = KEY, lazy = true, reset = false, state = { accounts = {
    [ACCOUNT] = { tokens = {
      { id = "987654321", label = "42", createdAt = "2024-01-01T00:00:00.000Z",
        uses = 42, ratio = 0.5, negative = -7, big = 4294967296, zero = 0, huge = 1e20 },
    } },
  } } }
  local client

  lazy_setup(function()
    client = atladmin.new { token = KEY, base_url = fake.url, retries = 0, timeout = 5 }
  end)

  lazy_teardown(function()
    if client then client:close() end
  end)

  it("decodes whole numbers as integers where Lua has them, fractions as floats", function()
    local tokens = assert(client:tokens(ACCOUNT))
    local t = tokens[1]
    local whole = HAS_INTEGERS and "integer" or "number"
    assert.same({ 42, -7, 4294967296, 0, 0.5 }, { t.uses, t.negative, t.big, t.zero, t.ratio })
    assert.same({ whole, whole, whole, whole }, { numtype(t.uses), numtype(t.negative),
      numtype(t.big), numtype(t.zero) })
    assert.equal(HAS_INTEGERS and "float" or "number", numtype(t.ratio))
    -- whole but beyond 64-bit integers: stays a float rather than wrapping
    assert.equal(1e20, t.huge)
    assert.equal(HAS_INTEGERS and "float" or "number", numtype(t.huge))
  end)

  it("keeps ids and numeric-looking strings as strings", function()
    local t = assert(client:tokens(ACCOUNT))[1]
    assert.equal("string", type(t.id))
    assert.equal("987654321", t.id)
    assert.equal("42", t.label)
    local res = assert(client:revoke(ACCOUNT, t.id))
    assert.equal(1, #fake:requests { method = "DELETE",
      path = "/users/" .. ACCOUNT .. "/manage/api-tokens/987654321" })
    -- status and counters are whole numbers too
    local whole = HAS_INTEGERS and "integer" or "number"
    assert.same({ 204, whole, whole }, { res.status, numtype(res.status), numtype(res.attempts) })
  end)

  it("gives error fields the same types", function()
    local _, err = client:tokens("nobody-here")
    assert.equal(404, err.status)
    assert.equal(HAS_INTEGERS and "integer" or "number", numtype(err.status))
    assert.equal("number", type(err.elapsed))
    assert.equal("string", type(tostring(err)))
  end)

  it("refuses a number where an id is expected, on every Lua", function()
    -- 5.1's lua_isstring would accept 12345; an id must be given as a string everywhere
    local ok, msg = pcall(client.tokens, client, 12345)
    assert.is_false(ok)
    assert.matches("account_id", msg, 1, true)
  end)

  it("words option errors the same way", function()
    local ok, msg = pcall(atladmin.new, { token = KEY, timeout = -1 })
    assert.is_false(ok)
    assert.matches("option 'timeout' must be between 0.001 and 86400$", msg)
    ok, msg = pcall(atladmin.new, { token = KEY, backoff_max = 1e9 })
    assert.is_false(ok)
    assert.matches("option 'backoff_max' must be between 0 and %d+$", msg)
  end)

  it("is built as a host-friendly module", function()
    local so = (os.getenv("ATLADMIN_TOP") or ".") .. "/build/" .. VERSION .. "/atladmin/core.so"
    if not sh.have("nm") then return pending("nm (binutils) is not installed") end
    local out, code = sh.run("nm -D --defined-only " .. sh.quote(so))
    assert.equal(0, code, out)
    local exported = {}
    for name in out:gmatch("%x+ [TDBR] ([%w_]+)") do exported[#exported + 1] = name end
    assert.same({ "luaopen_atladmin_core" }, exported)
    out = sh.run("ldd " .. sh.quote(so))
    assert.not_matches("liblua", out, 1, true)
    assert.not_matches("libluajit", out, 1, true)
  end)
end)
