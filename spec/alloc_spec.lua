-- Allocation failure: fuzz/alloc_fail.c runs the conversion and request paths (against a running
-- fake) with a Lua allocator that fails from the Nth allocation on, for every N up to the total.
-- Built with ASan by `make asan` / `make alloc-check`, which point ATLADMIN_ALLOC_FAIL at it.
local Fake = require "spec.support.fake"

local KEY = "alloc-key"

describe("allocation failure", function()
  it("gives 'not enough memory' at every allocation of the conversion and request paths", function()
    local bin = os.getenv("ATLADMIN_ALLOC_FAIL")
    if not bin or not io.open(bin) then
      pending("needs the ASan driver: run `make alloc-check` or `make asan`")
      return
    end
    local tokens = {}
    for i = 1, 400 do
      tokens[i] = { id = "asp_" .. i, label = "t" .. i, createdAt = "2024-01-01T00:00:00.000Z" }
    end
    local fake = Fake.start { key = KEY, quiet = true, state = { accounts = { ["557057:alloc"] = { tokens = tokens } },
                                                   orgs = { org = { users = { "557057:alloc" } } } } }
    local p = io.popen(("env -u LD_PRELOAD %s %s %s 2>&1; echo \"exit=$?\""):format(bin, fake.url, KEY))
    local out = p:read("*a")
    p:close()
    fake:stop()
    assert.matches("exit=0%s*$", out, nil, false)
    local total, errmem, other =
      out:match("(%d+) allocations, failed at each: (%d+) 'not enough memory' errors, (%d+) others")
    assert.truthy(total, out)
    assert.equal(tonumber(total), tonumber(errmem))
    assert.equal(0, tonumber(other))
    assert.is_true(tonumber(total) > 100)
    print("# " .. out:match("alloc_fail: [^\n]*"))
  end)
end)
