-- Token lists are decoded by the direct JSON-to-Lua reader (csrc/jsonlua.c), every other reply by
-- cJSON. fuzz/fuzz_jsonlua.c checks that the two agree; these are the hand-picked cases, above
-- all the ones where they differ by design (fuzz/README.md): each body is served by the fake as
-- a 200 reply to client:tokens and the result compared with the Lua value expected.
local atladmin = require "atladmin"
local Fake = require "spec.support.fake"

local KEY = "jsonlua-KEY"
local ALICE = "557057:4f9acfd2-6155-419b-8de5-5b5cf27a59a0"
local TOKENS_PATH = "/users/" .. ALICE .. "/manage/api-tokens"
local BAD_JSON = "response body is not valid JSON (or nests too deeply)"
local TOO_DEEP = "response JSON nests too deeply"
-- whole numbers are integers on 5.3+, numbers on 5.1/5.2/LuaJIT
local math_type = math.type or function() return nil end
local INTEGERS = math.type ~= nil

describe("token list decoding", function()
  local fake = Fake.fixture { key = KEY, reset = false, state = { accounts = { [ALICE] = { tokens = {} } } } }
  local c

  setup(function()
    c = atladmin.new { token = KEY, base_url = fake.url, retries = 0, timeout = 5 }
  end)

  teardown(function()
    if c then c:close() end
  end)

  before_each(function()
    fake:clear_faults()
  end)

  -- client:tokens on body (served with status 200); returns the results of the call
  local function tokens(body)
    fake:fault { path = TOKENS_PATH, type = "status", status = 200, body = body }
    return c:tokens(ALICE)
  end

  -- the first token's field "x" for a token list whose first token carries x = json
  local function x_of(json)
    local list, err = tokens('[{"id":"t1","label":"l","createdAt":"c","x":' .. json .. '}]')
    assert(list, err and tostring(err))
    return list[1].x
  end

  local function list_of(body)
    local list, err = tokens(body)
    assert(list, err and tostring(err))
    return list
  end

  local function refused(body, message)
    local list, err = tokens(body)
    assert.is_nil(list)
    assert.equal("decode", err.kind)
    assert.equal(200, err.status)
    if message then assert.equal(message, err.message) end
    return err
  end

  local function same(expected, actual, path)
    path = path or "value"
    assert.equal(type(expected), type(actual), path .. ": type")
    if type(expected) == "number" and INTEGERS then
      assert.equal(math_type(expected), math_type(actual), path .. ": integer or float")
    end
    if type(expected) ~= "table" then
      assert.equal(expected, actual, path)
      return
    end
    for k, v in pairs(expected) do same(v, actual[k], path .. "." .. tostring(k)) end
    for k in pairs(actual) do assert.is_not_nil(expected[k], path .. ": extra key " .. tostring(k)) end
  end

  describe("token lists", function()
    it("decodes tokens, dropping null members", function()
      local list = list_of('[{"id":"asp_1","label":"ci","createdAt":"2024-01-01T00:00:00.000Z",'
        .. '"lastAccess":null,"expiry":"2025-01-01T00:00:00.000Z"},{"id":"asp_2","label":"two","createdAt":"c"}]')
      same({ { id = "asp_1", label = "ci", createdAt = "2024-01-01T00:00:00.000Z",
               expiry = "2025-01-01T00:00:00.000Z" },
             { id = "asp_2", label = "two", createdAt = "c" } }, list)
    end)

    it("decodes an empty list, with white space around it", function()
      same({}, list_of(" \r\n\t[ ]\n"))
    end)

    it("skips a UTF-8 byte order mark", function()
      same({ { id = "a" } }, list_of('\239\187\191[{"id":"a"}]'))
    end)

    it("keeps the last of two members with one name, unless that one is null", function()
      same({ { id = "b", label = "two" } }, list_of('[{"id":"a","id":"b","label":"two","label":null}]'))
    end)

    it("decodes a thousand tokens", function()
      local parts = {}
      for i = 1, 1000 do parts[i] = ('{"id":"t%d","label":"l%d","createdAt":"c"}'):format(i, i) end
      local list = list_of("[" .. table.concat(parts, ",") .. "]")
      assert.equal(1000, #list)
      same({ id = "t1000", label = "l1000", createdAt = "c" }, list[1000])
    end)

    it("refuses a body that is not an array", function()
      refused('{"id":"a"}', "expected a JSON array of tokens")
    end)

    it("refuses an array holding something else than objects", function()
      refused('[{"id":"a"},1]', "a token is not a JSON object")
    end)

    it("says the JSON is invalid before saying the shape is wrong", function()
      refused('{"id":"a",}', BAD_JSON)
      refused('[1,]', BAD_JSON)
    end)
  end)

  describe("strings", function()
    it("reads the two-character escapes", function()
      assert.equal('"\\/\b\f\n\r\t', x_of('"\\"\\\\\\/\\b\\f\\n\\r\\t"'))
    end)

    it("reads \\u escapes into UTF-8, in either case of hex", function()
      assert.equal("A\195\169\226\130\172\226\130\172", x_of('"\\u0041\\u00e9\\u20AC\\u20ac"'))
    end)

    it("reads a surrogate pair as one code point", function()
      assert.equal("\240\159\152\128\240\157\132\158", x_of('"\\ud83d\\ude00\\uD834\\uDD1E"'))
    end)

    it("refuses a lone high surrogate", function()
      refused('[{"id":"a","x":"\\ud83d"}]', BAD_JSON)
      refused('[{"id":"a","x":"\\ud83dx"}]', BAD_JSON)
      refused('[{"id":"a","x":"\\ud83d\\u0041"}]', BAD_JSON)
    end)

    it("refuses a lone low surrogate, or a pair the wrong way round", function()
      refused('[{"id":"a","x":"\\ude00"}]', BAD_JSON)
      refused('[{"id":"a","x":"\\ude00\\ud83d"}]', BAD_JSON)
    end)

    it("refuses \\u with a digit that is not hex (cJSON would read U+0000)", function()
      refused('[{"id":"a","x":"\\u00zz"}]', BAD_JSON)
      refused('[{"id":"a","x":"\\u12"}]', BAD_JSON)
    end)

    it("refuses an unknown escape", function()
      refused('[{"id":"a","x":"\\a"}]', BAD_JSON)
    end)

    it("keeps a NUL written \\u0000 and what follows it (cJSON would cut the string there)", function()
      assert.equal("a\0b", x_of('"a\\u0000b"'))
      local list = list_of('[{"id":"a","k\\u0000x":1,"k":2}]')
      assert.equal(1, list[1]["k\0x"])
      assert.equal(2, list[1].k)
    end)

    it("passes other bytes through as they are: control bytes and invalid UTF-8", function()
      local odd = string.char(1, 31, 255, 254, 192, 128)
      assert.equal(odd, x_of('"' .. odd .. '"'))
    end)
  end)

  describe("white space", function()
    it("takes only space, tab, CR and LF between tokens", function()
      same({ { id = "a" } }, list_of('\t[ {\n"id"\r:\t"a" } ]\r\n'))
    end)

    it("refuses other control bytes between tokens (cJSON skips every byte up to space)", function()
      refused("[\12{\"id\":\"a\"}]", BAD_JSON)      -- form feed
      refused("[{\"id\":\"a\"}\11]", BAD_JSON)      -- vertical tab
      refused("[{\"id\":\1\"a\"}]", BAD_JSON)
    end)

    it("refuses text after the value, but not white space", function()
      refused('[{"id":"a"}] x', BAD_JSON)
      refused('[{"id":"a"}][]', BAD_JSON)
      same({ { id = "a" } }, list_of('[{"id":"a"}] \n\t\r '))
    end)
  end)

  describe("numbers", function()
    it("reads whole numbers as integers, up to 2^53", function()
      same(0, x_of("0"))
      same(0, x_of("-0"))
      same(0, x_of("-0.0"))
      same(-1, x_of("-1"))
      same(123456789012345, x_of("123456789012345"))
      same(1234567890123456, x_of("1234567890123456"))
      same(9007199254740992, x_of("9007199254740992"))
      same(-9007199254740992, x_of("-9007199254740992"))
      same(100, x_of("1e2"))
      same(1, x_of("1.0"))
    end)

    it("reads whole numbers beyond 2^53 as floats, rounded as strtod rounds", function()
      same(9007199254740994.0, x_of("9007199254740994"))
      -- rounds down to 2^53 itself, which is an integer again
      same(9007199254740992, x_of("9007199254740993"))
      same(9223372036854775808.0, x_of("9223372036854775807"))
      same(-9223372036854775808.0, x_of("-9223372036854775808"))
      same(1e70, x_of(("1" .. ("0"):rep(70))))
    end)

    it("reads fractions and exponents as floats", function()
      same(0.5, x_of("0.5"))
      same(-0.5, x_of("-5e-1"))
      same(1500.5, x_of("1.5005E+3"))
      same(1e308, x_of("1e308"))
    end)

    it("reads an exponent too large as infinity and one too small as 0, like cJSON", function()
      same(math.huge, x_of("1e400"))
      same(-math.huge, x_of("-1e400"))
      same(0, x_of("1e-400"))
    end)

    it("reads numbers of any length, like cJSON", function()
      same(1 / 3, x_of("0." .. ("3"):rep(100)))
    end)

    it("accepts leading zeros and a bare point, like cJSON", function()
      same(1, x_of("01"))
      same(1, x_of("1."))
      same(-0.5, x_of("-.5"))
    end)

    it("refuses what is no number", function()
      refused('[{"id":"a","x":-}]', BAD_JSON)
      refused('[{"id":"a","x":+1}]', BAD_JSON)
      refused('[{"id":"a","x":1e}]', BAD_JSON)
      refused('[{"id":"a","x":0x10}]', BAD_JSON)
      refused('[{"id":"a","x":.5}]', BAD_JSON)
      refused('[{"id":"a","x":1.5.3}]', BAD_JSON)
    end)
  end)

  describe("nesting and containers", function()
    it("keeps null in arrays as atladmin.null", function()
      local x = x_of("[null,1,null]")
      assert.equal(3, #x)
      assert.equal(atladmin.null, x[1])
      assert.equal(1, x[2])
      assert.equal(atladmin.null, x[3])
    end)

    it("decodes empty arrays and objects as empty tables", function()
      same({ a = {}, b = {}, c = { {} }, d = { {} } }, x_of('{"a":[],"b":{},"c":[{}],"d":[[]]}'))
    end)

    it("decodes literals", function()
      same({ true, false, "true" }, x_of('[true,false,"true"]'))
      refused('[{"id":"a","x":tru}]', BAD_JSON)
      refused('[{"id":"a","x":nul}]', BAD_JSON)
    end)

    -- the list is depth 0, a token 1, its field x 2: x holding n arrays reaches 1 + n
    it("takes nesting down to depth 200", function()
      local x = x_of(("["):rep(199) .. ("]"):rep(199))
      for _ = 1, 198 do x = x[1] end
      same({}, x)
    end)

    it("refuses nesting deeper than 200, even where the rest is invalid", function()
      refused('[{"id":"a","x":' .. ("["):rep(200) .. ("]"):rep(200) .. "}]", TOO_DEEP)
      refused('[{"id":"a","x":' .. ("["):rep(5000), TOO_DEEP)
    end)
  end)
end)
