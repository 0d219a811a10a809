-- atladmin.audit: time parsing, relative times and token filters (no server needed).
local audit = require "atladmin.audit"

local NOW = 1748736000 -- 2025-06-01T00:00:00Z
local DAY = 86400

describe("atladmin.audit", function()
  describe("parse_time()", function()
    it("reads UTC times with milliseconds, keeping the fraction", function()
      assert.near(1431462050.521, audit.parse_time("2015-05-12T20:20:50.521Z"), 1e-6)
      assert.equal(0, audit.parse_time("1970-01-01T00:00:00Z"))
      assert.equal(NOW, audit.parse_time("2025-06-01T00:00:00.000Z"))
      assert.equal(951782400, audit.parse_time("2000-02-29T00:00:00Z")) -- a leap day
      assert.equal(-86400, audit.parse_time("1969-12-31T00:00:00Z"))
    end)

    it("applies time zone offsets", function()
      assert.equal(NOW, audit.parse_time("2025-06-01T02:00:00+02:00"))
      assert.equal(NOW, audit.parse_time("2025-05-31T19:30:00-0430"))
      assert.equal(NOW, audit.parse_time("2025-06-01 00:00:00z"))
    end)

    it("returns nil and a message naming the string on bad input", function()
      for _, bad in ipairs({ "", "yesterday", "2015-05-12", "2015-05-12T20:20:50", "2015-13-01T00:00:00Z",
                             "2015-02-29T00:00:00Z", "2015-04-31T00:00:00Z", "2015-05-12T24:00:00Z",
                             "2015-05-12T20:61:00Z", "2015-05-12T20:20:50.Z", "2015-05-12T20:20:50+25:00",
                             "2015-05-12T20:20:50Zjunk", " 2015-05-12T20:20:50Z" }) do
        local t, err = audit.parse_time(bad)
        assert.is_nil(t, bad)
        assert.is_string(err)
        assert.truthy(err:find("bad time", 1, true), err)
      end
    end)

    it("raises on a non-string argument", function()
      assert.has_error(function() audit.parse_time(12) end)
      assert.has_error(function() audit.parse_time(nil) end)
    end)
  end)

  describe("format_time()", function()
    it("writes ISO-8601 UTC and reads back the same instant", function()
      assert.equal("2025-06-01T00:00:00Z", audit.format_time(NOW))
      assert.equal("2015-05-12T20:20:50.521Z", audit.format_time(audit.parse_time("2015-05-12T20:20:50.521Z")))
      for _, t in ipairs({ 0, 951782400, 4102444799, -86400 }) do
        assert.equal(t, audit.parse_time(audit.format_time(t)))
      end
    end)
  end)

  describe("relative()", function()
    it("says how long ago, or how far ahead, in words", function()
      assert.equal("never", audit.relative(nil, NOW))
      assert.equal("just now", audit.relative(NOW - 5, NOW))
      assert.equal("1 minute ago", audit.relative(NOW - 61, NOW))
      assert.equal("3 hours ago", audit.relative(NOW - 3 * 3600 - 10, NOW))
      assert.equal("1 day ago", audit.relative(NOW - DAY, NOW))
      assert.equal("41 days ago", audit.relative(NOW - 41 * DAY - 100, NOW))
      assert.equal("in 3 days", audit.relative(NOW + 3 * DAY + 5, NOW))
      assert.equal("3 years ago", audit.relative(NOW - 3 * 366 * DAY, NOW))
    end)
  end)

  describe("filters", function()
    -- per-account shape (client:tokens) and org-wide shape (org_tokens)
    local old = { id = "old", label = "CI deploy", createdAt = "2024-01-01T00:00:00Z",
                  lastAccess = "2025-01-01T00:00:00Z" }
    local fresh = { id = "fresh", label = "Laptop", createdAt = "2024-01-01T00:00:00Z",
                    lastAccess = "2025-05-30T00:00:00Z" }
    local never_old = { id = "never_old", label = "ci", createdAt = "2024-06-01T00:00:00Z" }
    local never_new = { id = "never_new", label = "new", createdAt = "2025-05-25T00:00:00Z", lastAccess = nil }
    local expiring = { id = "expiring", label = "Grafana", status = "ALLOWED", createdAt = "2025-01-01T00:00:00Z",
                       lastActiveAt = "2025-05-31T00:00:00Z", expiresAt = "2025-06-05T00:00:00Z",
                       user = { id = "u1" } }
    local expired = { id = "expired", label = "x", createdAt = "2024-01-01T00:00:00Z",
                      lastAccess = "2025-05-31T00:00:00Z", expiry = "2025-05-01T00:00:00Z" }
    local garbled = { id = "garbled", label = "CI", createdAt = "not a time", lastAccess = "2020-01-01" }
    local all = { old, fresh, never_old, never_new, expiring, expired, garbled }

    local function ids(list)
      local out = {}
      for _, t in ipairs(list) do out[#out + 1] = t.id end
      return out
    end

    it("unused(days) selects tokens last used, or created and never used, before the limit", function()
      assert.same({ "old", "never_old" }, ids(audit.select(all, audit.unused(90, NOW))))
      assert.same({ "old", "never_old", "never_new" }, ids(audit.select(all, audit.unused(5, NOW))))
    end)

    it("never_used() selects tokens without any recorded use", function()
      assert.same({ "never_old", "never_new" }, ids(audit.select(all, audit.never_used())))
    end)

    it("expiring(days) reads both shapes and includes expired tokens", function()
      assert.same({ "expiring", "expired" }, ids(audit.select(all, audit.expiring(7, NOW))))
      assert.same({ "expired" }, ids(audit.select(all, audit.expiring(1, NOW))))
    end)

    it("label() matches a case-insensitive shell pattern, or a Lua pattern", function()
      assert.same({ "old", "never_old", "garbled" }, ids(audit.select(all, audit.label("ci*"))))
      assert.same({ "never_old", "garbled" }, ids(audit.select(all, audit.label("CI"))))
      assert.same({ "fresh" }, ids(audit.select(all, audit.label("L?ptop"))))
      assert.same({ "old" }, ids(audit.select(all, audit.label("de%a+", { lua = true }))))
      assert.same({}, ids(audit.select(all, audit.label("(.)"))))
      assert.has_error(function() audit.label("[", { lua = true }) end)
    end)

    it("never selects a token whose times cannot be read", function()
      local f = audit.any(audit.unused(0, NOW), audit.never_used(), audit.expiring(10000, NOW))
      assert.is_false(f(garbled))
      local created, last, expires, bad = audit.times(garbled)
      assert.is_nil(created); assert.is_nil(last); assert.is_nil(expires)
      assert.same({ "createdAt", "lastAccess" }, bad)
    end)

    it("any() and all() combine filters", function()
      local either = audit.any(audit.never_used(), audit.expiring(7, NOW))
      assert.same({ "never_old", "never_new", "expiring", "expired" }, ids(audit.select(all, either)))
      local both = audit.all(audit.label("ci*"), audit.unused(90, NOW))
      assert.same({ "old", "never_old" }, ids(audit.select(all, both)))
      assert.same({}, audit.select(all, audit.any()))
      assert.equal(#all, #audit.select(all, audit.all()))
    end)

    it("rejects bad day counts", function()
      assert.has_error(function() audit.unused(-1) end)
      assert.has_error(function() audit.expiring("7") end)
    end)
  end)

  describe("now()", function()
    it("is os.time() unless ATLADMIN_NOW pins it", function()
      if os.getenv("ATLADMIN_NOW") then return end
      assert.truthy(math.abs(audit.now() - os.time()) <= 1)
    end)
  end)
end)
