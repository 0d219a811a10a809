-- The atladmin command driven as a user would: a spawned process against a running fake,
-- output formats parsed back, exit codes, the fake's request log, real terminals via script(1).
local Fake = require "spec.support.fake"
local cjson = require "cjson"
local shell = require "spec.support.shell"

local KEY = "cli-spec-key-3b7d"
local LUA = os.getenv("ATLADMIN_LUA") or "lua5.4"
local TOP = os.getenv("ATLADMIN_TOP") or "."
local BIN = TOP .. "/lua/bin/atladmin"
local NOW = "2025-06-01T00:00:00Z"

local ALICE = "557057:aaaaaaaa-0000-4000-8000-000000000001"
local BOB = "557057:bbbbbbbb-0000-4000-8000-000000000002"   -- may read, may not revoke
local CAROL = "557057:cccccccc-0000-4000-8000-000000000003" -- may not read
local DAVE = "557057:dddddddd-0000-4000-8000-000000000004"  -- deactivated
local BOT = "557057:eeeeeeee-0000-4000-8000-000000000005"   -- an app account

local function state()
  local function p(name, status)
    return { name = name, email = name:lower() .. "@example.com", account_type = "atlassian",
             account_status = status or "active" }
  end
  return {
    accounts = {
      [ALICE] = { profile = p("Alice"), tokens = {
        { id = "asp_alice_old", label = "CI deploy", createdAt = "2024-01-01T00:00:00.000Z",
          lastAccess = "2025-01-01T00:00:00.000Z" },
        { id = "asp_alice_never", label = "Laptop, \"home\"", createdAt = "2024-06-01T00:00:00.000Z" },
        { id = "asp_alice_fresh", label = "Grafana", createdAt = "2024-06-01T00:00:00.000Z",
          lastAccess = "2025-05-31T00:00:00.000Z" },
        { id = "asp_alice_expiring", label = "Backup", createdAt = "2025-01-01T00:00:00.000Z",
          lastAccess = "2025-05-30T00:00:00.000Z", expiry = "2025-06-05T00:00:00.000Z" },
      } },
      [BOB] = { profile = p("Bob"), deny = { "apiToken.delete" }, tokens = {
        { id = "asp_bob_old", label = "CI", createdAt = "2023-01-01T00:00:00.000Z",
          lastAccess = "2024-01-01T00:00:00.000Z" },
      } },
      [CAROL] = { profile = p("Carol"), deny = { "apiToken.read" }, tokens = {
        { id = "asp_carol_old", label = "CI", createdAt = "2023-01-01T00:00:00.000Z" },
      } },
      [DAVE] = { profile = p("Dave", "inactive"), status = "inactive", tokens = {
        { id = "asp_dave_old", label = "old", createdAt = "2023-01-01T00:00:00.000Z" },
      } },
      [BOT] = { profile = { name = "Deploy bot", account_type = "app" }, tokens = {},
                deny = { "apiToken.read" } },
    },
    orgs = { -- acme's bot is an app account whose tokens cannot be read: --per-user skips it
      acme = { users = { ALICE, BOB, DAVE, BOT }, api_access = true },
      legacy = { users = { ALICE, BOB, CAROL, DAVE }, api_access = false },
    },
  }
end

local quote, write = shell.quote, shell.write
local function read(path) return shell.read(path) or "" end

local tmp = {}
local function tmpfile()
  local name = os.tmpname()
  tmp[#tmp + 1] = name
  return name
end

describe("atladmin command", function()
  local fake = Fake.fixture { key = KEY, state = state, page_size = 2 }

  -- run{args..., stdin = text, env = {...}, tty = true, base = false}
  -- -> {code, out, err}; tty runs it under script(1) on a real pseudo-terminal.
  local function run(args)
    local words = { "env", "ATLASSIAN_ADMIN_TOKEN=" .. quote(args.key or KEY), "ATLADMIN_NOW=" .. NOW,
                    "ATLADMIN_BASE_URL=" }
    for k, v in pairs(args.env or {}) do words[#words + 1] = k .. "=" .. quote(v) end
    words[#words + 1] = LUA
    words[#words + 1] = quote(BIN)
    if args.base ~= false then
      words[#words + 1] = "--base-url"
      words[#words + 1] = quote(fake.url)
      words[#words + 1] = "--retries"
      words[#words + 1] = "0"
    end
    for _, a in ipairs(args) do words[#words + 1] = quote(a) end
    local cmd = table.concat(words, " ")
    local out, err, code, input = tmpfile(), tmpfile(), tmpfile(), tmpfile()
    write(input, args.stdin or "")
    local line
    if args.tty then
      -- script gives the command a terminal on stdin/stdout/stderr; what it printed comes back
      -- on script's stdout, mixed
      line = string.format("script -qec %s /dev/null < %s > %s 2> %s; echo $? > %s",
                           quote(cmd .. "; exit $?"), quote(input), quote(out), quote(err), quote(code))
    else
      line = string.format("%s < %s > %s 2> %s; echo $? > %s", cmd, quote(input), quote(out), quote(err),
                           quote(code))
    end
    os.execute(line)
    return { code = tonumber(read(code):match("%d+")), out = read(out), err = read(err) }
  end

  local function api_requests(method)
    return fake:requests(method and { method = method } or nil)
  end

  local function parse_csv(text)
    local rows = {}
    local i, n = 1, #text
    local row, field = {}, {}
    while i <= n do
      local c = text:sub(i, i)
      if c == '"' then
        i = i + 1
        while true do
          local q = text:find('"', i, true)
          field[#field + 1] = text:sub(i, q - 1)
          i = q + 1
          if text:sub(i, i) == '"' then field[#field + 1] = '"'; i = i + 1 else break end
        end
      elseif c == "," then
        row[#row + 1] = table.concat(field); field = {}; i = i + 1
      elseif c == "\n" then
        row[#row + 1] = table.concat(field); field = {}
        rows[#rows + 1] = row; row = {}; i = i + 1
      else
        field[#field + 1] = c; i = i + 1
      end
    end
    local header = table.remove(rows, 1)
    local out = {}
    for _, r in ipairs(rows) do
      local o = {}
      for k, name in ipairs(header) do o[name] = r[k] end
      out[#out + 1] = o
    end
    return out, header
  end

  local function ids_of(list, field)
    local out = {}
    for _, t in ipairs(list) do out[#out + 1] = t[field or "id"] end
    table.sort(out)
    return out
  end

  teardown(function()
    for _, f in ipairs(tmp) do os.remove(f) end
  end)

  describe("help and usage", function()
    it("answers --help for the command and every subcommand with exit 0", function()
      local r = run { "--help", base = false }
      assert.equal(0, r.code)
      assert.truthy(r.out:find("usage: atladmin", 1, true))
      for _, sub in ipairs({ "tokens", "revoke", "audit", "user", "fake" }) do
        r = run { sub, "--help", base = false }
        assert.equal(0, r.code, sub)
        assert.truthy(r.out:find("usage: atladmin " .. sub, 1, true), sub)
        assert.equal("", r.err)
        r = run { "help", sub, base = false }
        assert.equal(0, r.code, sub)
      end
      assert.equal(0, #api_requests())
    end)

    it("exits 2 on usage errors, saying what is wrong, before any request", function()
      local cases = {
        { {}, "usage" },
        { { "frobnicate" }, "unknown command" },
        { { "tokens" }, "ACCOUNT" },
        { { "tokens", "--bogus", ALICE }, "unknown option --bogus" },
        { { "audit" }, "--org" },
        { { "audit", "--org", "acme", ALICE }, "excludes" },
        { { "audit", "--org", "acme", "--unused-days", "soon" }, "--unused-days" },
        { { "audit", "--org", "acme", "--revoke", "--yes" }, "refusing to revoke every token" },
        { { "audit", "--org", "acme", "--json", "--csv" }, "exclude" },
        { { "revoke", ALICE }, "TOKEN_ID" },
        { { "user", "show" }, "ACCOUNT" },
        { { "user", "explode", ALICE }, "unknown action" },
        { { "user", "show", ALICE, "--dry-run" }, "--dry-run" },
        { { "tokens", ALICE, ".." }, "not a valid account id" },
        { { "revoke", ALICE, "bad\ntoken" }, "not a valid token id" },
        { { "audit", "--never-used", "x\1y" }, "not a valid account id" },
        { { "user", "enable", "." }, "not a valid account id" },
      }
      for _, case in ipairs(cases) do
        local r = run(case[1])
        assert.equal(2, r.code, table.concat(case[1], " "))
        assert.truthy(r.err:find(case[2], 1, true), r.err)
      end
      local r = run { "tokens", ALICE, env = { ATLADMIN_NOW = "last tuesday" } }
      assert.equal(2, r.code)
      assert.truthy(r.err:find("ATLADMIN_NOW", 1, true), r.err)
      assert.equal(0, #api_requests())
    end)

    it("exits 2 without an admin key, and never takes it from argv", function()
      local r = run { "tokens", ALICE, key = "" }
      assert.equal(2, r.code)
      assert.truthy(r.err:find("ATLASSIAN_ADMIN_TOKEN", 1, true))
      r = run { "tokens", ALICE, "--token", KEY, key = "" }
      assert.equal(2, r.code)
      assert.equal(0, #api_requests())
    end)

    it("reads the key from --key-file", function()
      local f = tmpfile()
      write(f, KEY .. "\n")
      local r = run { "tokens", ALICE, "--key-file", f, key = "" }
      assert.equal(0, r.code, r.err)
      assert.truthy(r.out:find("asp_alice_old", 1, true))
      r = run { "--key-file", "-", "tokens", ALICE, key = "", stdin = KEY .. "\n" }
      assert.equal(0, r.code, r.err)
      assert.truthy(r.out:find("asp_alice_old", 1, true))
      r = run { "tokens", "--key-file", "/nonexistent/key", ALICE }
      assert.equal(2, r.code)
      assert.truthy(r.err:find("key file", 1, true))
    end)

    it("never prints the key, even when the server refuses it", function()
      local r = run { "tokens", ALICE, key = "wrong-secret-key-123" }
      assert.equal(1, r.code)
      assert.truthy(r.err:find("401", 1, true))
      assert.falsy((r.out .. r.err):find("wrong-secret-key-123", 1, true))
    end)
  end)

  describe("tokens", function()
    it("prints an aligned table with relative times", function()
      local r = run { "tokens", ALICE, BOB }
      assert.equal(0, r.code, r.err)
      local lines = {}
      for l in r.out:gmatch("[^\n]+") do lines[#lines + 1] = l end
      assert.equal(6, #lines)
      assert.truthy(lines[1]:find("^ACCOUNT%s+TOKEN%s+LABEL%s+CREATED%s+LAST USED%s+EXPIRES$"))
      local col = lines[1]:find("LAST USED", 1, true)
      for i = 2, #lines do assert.equal(" ", lines[i]:sub(col - 1, col - 1)) end
      assert.truthy(r.out:find("151 days ago", 1, true)) -- asp_alice_old, last used 2025-01-01
      assert.truthy(r.out:find("never", 1, true))
      assert.truthy(r.out:find("in 4 days", 1, true), r.out) -- asp_alice_expiring
      assert.truthy(r.out:find((BOB:gsub("%-", "%%-")) .. "%s+asp_bob_old"), r.out)
    end)

    it("--json gives every token with its account, parsed back", function()
      local r = run { "tokens", "--json", ALICE, BOB }
      assert.equal(0, r.code, r.err)
      local doc = cjson.decode(r.out)
      assert.equal(5, #doc.tokens)
      assert.same({}, doc.errors)
      local t = doc.tokens[1]
      assert.same({ account_id = ALICE, id = "asp_alice_old", label = "CI deploy",
                    created_at = "2024-01-01T00:00:00.000Z", last_used_at = "2025-01-01T00:00:00.000Z",
                    expires_at = cjson.null, account_name = cjson.null,
                    email = cjson.null, status = cjson.null }, t)
      assert.equal(cjson.null, doc.tokens[2].last_used_at)
    end)

    it("--csv gives a header and one quoted row per token, parsed back", function()
      local r = run { "tokens", "--csv", ALICE }
      assert.equal(0, r.code, r.err)
      local rows, header = parse_csv(r.out)
      assert.same({ "account_id", "account_name", "email", "token_id", "label", "status", "created_at", "last_used_at",
                    "expires_at", "matched", "action", "error" }, header)
      assert.equal(4, #rows)
      assert.equal('Laptop, "home"', rows[2].label)
      assert.equal("", rows[2].last_used_at)
      assert.equal("2025-06-05T00:00:00.000Z", rows[4].expires_at)
    end)

    it("lists the accounts it can and names the others on stderr (exit 1)", function()
      local r = run { "tokens", ALICE, "557057:nobody", CAROL }
      assert.equal(1, r.code)
      assert.truthy(r.out:find("asp_alice_old", 1, true))
      assert.truthy(r.err:find("557057:nobody: 404 accountNotFound", 1, true), r.err)
      assert.truthy(r.err:find(CAROL .. ": apiToken.read not granted: 403 forbidden.action", 1, true), r.err)
      assert.truthy(r.err:find("apiToken.read", 1, true), r.err)
    end)

    it("reads account ids from --accounts FILE and stdin", function()
      local f = tmpfile()
      write(f, "# accounts to check\n" .. ALICE .. "\n\n" .. BOB .. "  # bob\n")
      local r = run { "tokens", "--json", "--accounts", f }
      assert.equal(5, #cjson.decode(r.out).tokens)
      r = run { "tokens", "--json", "--accounts", "-", stdin = BOB .. "\n" }
      assert.equal(1, #cjson.decode(r.out).tokens)
      -- the CSV of an earlier run works as an account list
      r = run { "tokens", "--csv", ALICE, BOB }
      write(f, r.out)
      r = run { "tokens", "--json", "--accounts", f }
      assert.equal(0, r.code, r.err)
      assert.equal(5, #cjson.decode(r.out).tokens)
    end)
  end)

  describe("revoke", function()
    it("--dry-run checks the tokens and sends no DELETE", function()
      local r = run { "revoke", "--dry-run", ALICE, "asp_alice_old", "asp_alice_never" }
      assert.equal(0, r.code, r.err)
      assert.truthy(r.out:find("would revoke " .. ALICE .. " asp_alice_old", 1, true))
      assert.equal(0, #api_requests("DELETE"))
      assert.equal(4, #fake:state().accounts[ALICE].tokens)
      r = run { "revoke", "--dry-run", ALICE, "asp_missing" }
      assert.equal(1, r.code)
      assert.truthy(r.err:find("asp_missing", 1, true))
      assert.equal(0, #api_requests("DELETE"))
    end)

    it("revokes each token, one DELETE each", function()
      local r = run { "revoke", ALICE, "asp_alice_old", "asp_alice_never" }
      assert.equal(0, r.code, r.err)
      assert.truthy(r.out:find("revoked " .. ALICE .. " asp_alice_old", 1, true))
      local dels = api_requests("DELETE")
      assert.equal(2, #dels)
      assert.equal("/users/" .. ALICE .. "/manage/api-tokens/asp_alice_old", dels[1].path)
      assert.same({ "asp_alice_expiring", "asp_alice_fresh" }, ids_of(fake:state().accounts[ALICE].tokens))
    end)

    it("goes on after a failure and exits 1 naming it", function()
      local r = run { "revoke", "--json", BOB, "asp_bob_old" }
      assert.equal(1, r.code)
      assert.truthy(r.err:find("403 forbidden.action", 1, true), r.err)
      local doc = cjson.decode(r.out)
      assert.equal("failed", doc.results[1].action)
      r = run { "revoke", ALICE, "asp_nope", "asp_alice_old" }
      assert.equal(1, r.code)
      assert.truthy(r.err:find("asp_nope", 1, true))
      assert.truthy(r.out:find("revoked " .. ALICE .. " asp_alice_old", 1, true))
    end)
  end)

  describe("audit", function()
    it("uses the org-wide token listing by default", function()
      local r = run { "audit", "--org", "acme", "--unused-days", "90", "--json" }
      assert.equal(0, r.code, r.err)
      local doc = cjson.decode(r.out)
      assert.same({ "asp_alice_never", "asp_alice_old", "asp_bob_old", "asp_dave_old" }, ids_of(doc.tokens))
      for _, req in ipairs(api_requests()) do
        assert.equal("/admin/api-access/v1/orgs/acme/api-tokens", req.path)
      end
      assert.equal(3, #api_requests()) -- 6 tokens, pages of 2
      assert.equal(6, doc.summary.tokens)
      assert.equal(4, doc.summary.matched)
      assert.equal(NOW, doc.now)
      local by_id = {}
      for _, t in ipairs(doc.tokens) do by_id[t.id] = t end
      assert.equal("alice@example.com", by_id.asp_alice_old.email)
      assert.same({ "unused" }, by_id.asp_alice_old.matched)
    end)

    it("--per-user enumerates users and lists each account", function()
      local r = run { "audit", "--org", "acme", "--per-user", "--unused-days", "90", "--json" }
      assert.equal(0, r.code, r.err)
      local doc = cjson.decode(r.out)
      assert.same({ "asp_alice_never", "asp_alice_old", "asp_bob_old", "asp_dave_old" }, ids_of(doc.tokens))
      local paths = {}
      for _, req in ipairs(api_requests()) do paths[#paths + 1] = req.path end
      assert.equal("/admin/v1/orgs/acme/users", paths[1])
      assert.equal("/admin/v1/orgs/acme/users", paths[2])
      local listed = { paths[3], paths[4], paths[5] } -- in any order: listings may run side by side
      table.sort(listed)
      assert.same({ "/users/" .. ALICE .. "/manage/api-tokens", "/users/" .. BOB .. "/manage/api-tokens",
                    "/users/" .. DAVE .. "/manage/api-tokens" }, listed)
      assert.equal(5, #paths) -- and none for the app account
    end)

    it("falls back to per-account listing when the API Access API answers 403", function()
      local r = run { "audit", "--org", "legacy", "--never-used", "--json" }
      assert.equal(1, r.code) -- carol cannot be read
      assert.truthy(r.err:find("not available for legacy", 1, true), r.err)
      assert.truthy(r.err:find(CAROL, 1, true), r.err)
      local doc = cjson.decode(r.out)
      assert.same({ "asp_alice_never", "asp_dave_old" }, ids_of(doc.tokens))
      assert.equal(1, #doc.errors)
      assert.equal("list", doc.errors[1].operation)
      assert.equal(CAROL, doc.errors[1].account_id)
      assert.equal(403, doc.errors[1].status)
      assert.equal("forbidden.action", doc.errors[1].key)
      assert.equal("apiToken.read", doc.errors[1].privilege)
      assert.equal("denied", doc.errors[1].reason)
      assert.truthy(r.err:find("cannot read the tokens of " .. CAROL .. ": apiToken.read not granted: 403", 1, true),
                    r.err)
    end)

    it("applies --never-used, --expiring-days, --label and --active-only", function()
      local function ids(...)
        local r = run { "audit", "--org", "acme", "--json", ... }
        assert.is_true(r.code == 0, r.err)
        return ids_of(cjson.decode(r.out).tokens)
      end
      assert.same({ "asp_alice_never", "asp_dave_old" }, ids("--never-used"))
      assert.same({ "asp_alice_expiring" }, ids("--expiring-days", "7"))
      assert.same({ "asp_alice_expiring", "asp_alice_never", "asp_dave_old" },
                  ids("--expiring-days", "7", "--never-used"))
      assert.same({ "asp_alice_old", "asp_bob_old" }, ids("--label", "ci*"))
      assert.same({ "asp_alice_old", "asp_bob_old" }, ids("--label", "CI*", "--unused-days", "90"))
      assert.same({ "asp_alice_never", "asp_alice_old", "asp_bob_old" }, ids("--unused-days", "90", "--active-only"))
      assert.equal(6, #ids()) -- no filter: the whole inventory
    end)

    it("--active-only works on explicit accounts too (profile per account)", function()
      local r = run { "audit", "--unused-days", "90", "--active-only", "--json", ALICE, DAVE }
      assert.equal(0, r.code, r.err)
      assert.same({ "asp_alice_never", "asp_alice_old" }, ids_of(cjson.decode(r.out).tokens))
    end)

    it("prints a table with relative times, and a summary on stderr", function()
      local r = run { "audit", "--org", "acme", "--unused-days", "90" }
      assert.equal(0, r.code, r.err)
      assert.truthy(r.out:find("^ACCOUNT%s+TOKEN%s+LABEL%s+CREATED%s+LAST USED%s+EXPIRES%s+MATCHED\n"))
      assert.truthy(r.out:find("alice@example.com%s+asp_alice_old%s+CI deploy%s+517 days ago%s+151 days ago"
                               .. "%s+never%s+unused"), r.out)
      assert.truthy(r.err:find("4 matched", 1, true))
      assert.falsy(r.err:find("\r", 1, true)) -- no progress bar without a terminal
    end)

    it("--csv has one row per matched token with the criteria", function()
      local r = run { "audit", "--org", "acme", "--never-used", "--expiring-days", "7", "--csv" }
      local rows = parse_csv(r.out)
      assert.equal(3, #rows)
      local by = {}
      for _, row in ipairs(rows) do by[row.token_id] = row end
      assert.equal("never_used", by.asp_alice_never.matched)
      assert.equal("expiring", by.asp_alice_expiring.matched)
    end)

    it("--dry-run checks apiToken.delete, says what would happen and sends no DELETE", function()
      local r = run { "audit", "--org", "acme", "--unused-days", "90", "--dry-run", "--json" }
      assert.equal(1, r.code) -- bob's token could not be revoked
      assert.equal(0, #api_requests("DELETE"))
      local doc = cjson.decode(r.out)
      local by = {}
      for _, t in ipairs(doc.tokens) do by[t.id] = t end
      assert.equal("would_revoke", by.asp_alice_old.action)
      assert.equal("denied", by.asp_bob_old.action)
      assert.truthy(by.asp_bob_old.error:find("apiToken.delete", 1, true))
      assert.truthy(r.err:find("cannot revoke a token of " .. BOB .. ": apiToken.delete not granted", 1, true), r.err)
      assert.equal(3, doc.summary.would_revoke)
      assert.equal(1, doc.summary.denied)
      local checks = 0
      for _, req in ipairs(api_requests("GET")) do
        if req.path:find("/manage$") then
          checks = checks + 1
          assert.equal("privileges=apiToken.delete", req.query)
        end
      end
      assert.equal(3, checks) -- alice, bob, dave
    end)

    it("--revoke refuses without a terminal unless --yes, before any request", function()
      local r = run { "audit", "--org", "acme", "--unused-days", "90", "--revoke" }
      assert.equal(2, r.code)
      assert.truthy(r.err:find("--yes", 1, true))
      assert.equal(0, #api_requests())
    end)

    it("--revoke --yes revokes what it may and reports the rest", function()
      local r = run { "audit", "--org", "acme", "--unused-days", "90", "--revoke", "--yes", "--json" }
      assert.equal(1, r.code)
      local dels = api_requests("DELETE")
      assert.equal(3, #dels)
      for _, d in ipairs(dels) do -- one token at a time: never the organization-wide revoke
        assert.truthy(d.path:find("^/users/[^/]+/manage/api%-tokens/asp_"), d.path)
      end
      local st = fake:state()
      assert.same({ "asp_alice_expiring", "asp_alice_fresh" }, ids_of(st.accounts[ALICE].tokens))
      assert.equal(1, #st.accounts[BOB].tokens)
      assert.equal(0, #st.accounts[DAVE].tokens)
      local doc = cjson.decode(r.out)
      assert.equal(3, doc.summary.revoked)
      assert.equal(1, doc.summary.denied)
      -- then nothing stale is left that may be revoked
      r = run { "audit", "--org", "acme", "--unused-days", "90", "--json" }
      assert.same({ "asp_bob_old" }, ids_of(cjson.decode(r.out).tokens))
    end)

    it("--revoke --yes exits 0 when everything went through", function()
      local r = run { "audit", "--org", "acme", "--never-used", "--revoke", "--yes" }
      assert.equal(0, r.code, r.err)
      assert.equal(2, #api_requests("DELETE"))
      assert.truthy(r.out:find("revoked", 1, true))
      assert.truthy(r.err:find("2 revoked", 1, true))
    end)

    it("reports accounts that fail mid-audit (403, 404, 429) and still reports the rest", function()
      fake:fault { path = "/users/" .. BOB .. "/manage/api-tokens", type = "status", status = 429,
                   headers = { ["Retry-After"] = "1" }, body = '{"code":429,"message":"Too many requests"}' }
      local r = run { "audit", "--unused-days", "90", "--json", ALICE, BOB, CAROL, "557057:gone", DAVE }
      assert.equal(1, r.code)
      local doc = cjson.decode(r.out)
      assert.same({ "asp_alice_never", "asp_alice_old", "asp_dave_old" }, ids_of(doc.tokens))
      local failed = {}
      for _, e in ipairs(doc.errors) do failed[e.account_id] = e.status end
      assert.same({ [BOB] = 429, [CAROL] = 403, ["557057:gone"] = 404 }, failed)
      assert.truthy(r.err:find(BOB .. ": 429", 1, true), r.err)
      assert.truthy(r.err:find(CAROL .. ": apiToken.read not granted: 403 forbidden.action", 1, true), r.err)
      assert.truthy(r.err:find("557057:gone: 404 accountNotFound", 1, true), r.err)
    end)

    it("keeps what it read when the org-wide listing fails on a later page", function()
      -- the first page answers; every later page fails
      fake:fault { path = "/admin/api-access/v1/orgs/acme/api-tokens", type = "status", status = 200,
                   body = cjson.encode { data = { { id = "asp_x", label = "x", createdAt = "2020-01-01T00:00:00Z",
                                                    user = { id = ALICE } } },
                                         links = { next = "https://elsewhere.invalid/p?cursor=b2Zmc2V0OjI%3D" } } }
      fake:fault { path = "/admin/api-access/v1/orgs/acme/api-tokens", type = "status", status = 500, count = 1 }
      local r = run { "audit", "--org", "acme", "--json" }
      assert.equal(1, r.code)
      local doc = cjson.decode(r.out)
      assert.same({ "asp_x" }, ids_of(doc.tokens))
      assert.equal("org_tokens", doc.errors[1].operation)
      assert.equal(500, doc.errors[1].status)
    end)

    it("asks on a terminal and revokes after yes", function()
      local r = run { "audit", "--org", "acme", "--never-used", "--revoke", tty = true, stdin = "yes\n" }
      assert.equal(0, r.code, r.out)
      assert.truthy(r.out:find("Revoke 2 tokens on 2 accounts?", 1, true), r.out)
      assert.equal(2, #api_requests("DELETE"))
      assert.truthy(r.out:find("2 revoked", 1, true), r.out)
      local _, tables = r.out:gsub("ACCOUNT%s+TOKEN", "")
      assert.equal(1, tables) -- the table is shown before the question, not again after it
    end)

    it("revokes nothing when the answer on the terminal is no", function()
      local r = run { "audit", "--org", "acme", "--never-used", "--revoke", tty = true, stdin = "no\n" }
      assert.equal(1, r.code)
      assert.truthy(r.out:find("Nothing revoked", 1, true), r.out)
      assert.equal(0, #api_requests("DELETE"))
    end)

    it("shows a progress bar on a terminal", function()
      local r = run { "audit", "--org", "acme", "--per-user", "--never-used", tty = true }
      assert.equal(0, r.code, r.out)
      assert.truthy(r.out:find("listing tokens [", 1, true), r.out)
      assert.truthy(r.out:find("3/3", 1, true), r.out)
    end)

    it("accepts --concurrency", function()
      local r = run { "audit", "--org", "acme", "--per-user", "--never-used", "--concurrency", "8", "--json" }
      assert.equal(0, r.code, r.err)
      assert.same({ "asp_alice_never", "asp_dave_old" }, ids_of(cjson.decode(r.out).tokens))
      assert.equal(2, run { "audit", "--org", "acme", "--concurrency", "0" }.code)
    end)
  end)

  describe("user", function()
    it("show prints the profile; --json parses back", function()
      local r = run { "user", "show", ALICE }
      assert.equal(0, r.code, r.err)
      assert.truthy(r.out:find("email%s+alice@example.com"))
      r = run { "user", "show", "--json", ALICE }
      assert.equal("Alice", cjson.decode(r.out).account.name)
      r = run { "user", "show", "557057:gone" }
      assert.equal(1, r.code)
      assert.truthy(r.err:find("404 accountNotFound", 1, true))
    end)

    it("permissions prints privilege, allowed and reason", function()
      local r = run { "user", "permissions", BOB }
      assert.equal(0, r.code, r.err)
      assert.truthy(r.out:find("apiToken.delete%s+no%s+denied"))
      assert.truthy(r.out:find("apiToken.read%s+yes"))
      r = run { "user", "permissions", "--json", BOB, "apiToken.read" }
      local doc = cjson.decode(r.out)
      assert.is_true(doc.permissions["apiToken.read"].allowed)
      assert.is_nil(doc.permissions["apiToken.delete"])
    end)

    it("disable and enable change the account; --dry-run sends no POST", function()
      local r = run { "user", "disable", "--dry-run", ALICE }
      assert.equal(0, r.code, r.err)
      assert.truthy(r.out:find("would deactivate", 1, true))
      assert.equal(0, #api_requests("POST"))
      r = run { "user", "disable", ALICE, "--message", "Left the company" }
      assert.equal(0, r.code, r.err)
      local posts = api_requests("POST")
      assert.equal(1, #posts)
      assert.same({ message = "Left the company" }, cjson.decode(posts[1].body))
      assert.equal("inactive", fake:state().accounts[ALICE].status)
      r = run { "user", "disable", ALICE }
      assert.equal(1, r.code)
      assert.truthy(r.err:find("409 conflict.lifecycleErrors", 1, true), r.err)
      r = run { "user", "enable", "--dry-run", ALICE }
      assert.equal(0, r.code)
      r = run { "user", "enable", ALICE }
      assert.equal(0, r.code, r.err)
      assert.equal("active", fake:state().accounts[ALICE].status)
    end)

    it("--dry-run says when lifecycle.enablement is not granted", function()
      fake:set_state((function()
        local s = state()
        s.accounts[BOB].deny = { "lifecycle.enablement" }
        return s
      end)())
      local r = run { "user", "disable", "--dry-run", BOB }
      assert.equal(1, r.code)
      assert.truthy(r.err:find("lifecycle.enablement not granted", 1, true), r.err)
      assert.equal(0, #api_requests("POST"))
    end)
  end)

  describe("batch adapters", function()
    local cli = require "atladmin.cli"

    it("each_tokens uses client:each_tokens when the client has it", function()
      local asked
      local client = {
        tokens = function() error("must not be called") end,
        each_tokens = function(_, accounts, opts)
          asked = opts
          local i = #accounts + 1
          return function() -- completion order differs from input order
            i = i - 1
            if i < 1 then return nil end
            if accounts[i] == "bad" then return "bad", nil, { status = 404 } end
            return accounts[i], { { id = "t" .. i } }
          end
        end,
      }
      local seen = {}
      cli.each_tokens(client, { "a", "bad", "c" }, 7, function(id, tokens, err)
        seen[#seen + 1] = { id, tokens and tokens[1].id or nil, err and err.status or nil }
      end)
      assert.same({ concurrency = 7 }, asked)
      assert.same({ { "c", "t3" }, { "bad", nil, 404 }, { "a", "t1" } }, seen)
    end)

    it("each_tokens falls back to one client:tokens call after another", function()
      local calls = {}
      local client = { tokens = function(_, id)
        calls[#calls + 1] = id
        if id == "bad" then return nil, { status = 403 } end
        return { { id = id .. "-t" } }
      end }
      local seen = {}
      cli.each_tokens(client, { "a", "bad" }, 3, function(id, tokens, err)
        seen[#seen + 1] = { id, tokens and tokens[1].id or nil, err and err.status or nil }
      end)
      assert.same({ "a", "bad" }, calls)
      assert.same({ { "a", "a-t" }, { "bad", nil, 403 } }, seen)
    end)

    it("revoke_all uses client:revoke_many when the client has it, else revoke", function()
      local batched = { revoke = function() error("must not be called") end,
                        revoke_many = function(_, _, opts)
                          assert.same({ concurrency = 2 }, opts)
                          return { { ok = true, res = { status = 204 } }, { ok = false, err = { status = 404 } } }
                        end }
      local seen = {}
      cli.revoke_all(batched, { { "a", "t1" }, { "a", "t2" } }, 2, function(i, res, err)
        seen[i] = res and res.status or err.status
      end)
      assert.same({ 204, 404 }, seen)
      local plain = { revoke = function(_, a, t) if t == "t2" then return nil, { status = 403 } end
                                                 return { status = 204, account = a } end }
      seen = {}
      cli.revoke_all(plain, { { "a", "t1" }, { "a", "t2" } }, 2, function(i, res, err)
        seen[i] = res and res.status or err.status
      end)
      assert.same({ 204, 403 }, seen)
    end)
  end)

  describe("fake", function()
    -- `atladmin fake` on a fresh state() file, in a process group of its own (as a shell job
    -- would be); returns the launcher's pid (also the group's id), the server's url and its pid.
    local function start_fake()
      local statefile, out = tmpfile(), tmpfile()
      write(statefile, cjson.encode(state()))
      local pidfile = tmpfile()
      os.execute(string.format("setsid sh -c 'echo $$ > %s; exec %s %s fake --state %s --port 0 --key %s'"
                               .. " > %s 2>&1 < /dev/null &", pidfile, LUA, quote(BIN), quote(statefile), KEY, out))
      local url
      for _ = 1, 200 do
        url = read(out):match("listening on (http://[%d%.:]+)")
        if url then break end
        os.execute("sleep 0.05")
      end
      local pid = tonumber((read(pidfile) or ""):match("%d+"))
      local server
      if pid then
        local p = io.popen("pgrep -P " .. pid)
        server = tonumber((p:read("*a") or ""):match("%d+"))
        p:close()
      end
      return pid, url, server
    end

    -- a process that has exited (or is only a zombie left for its reaper)
    local function gone(pid)
      local p = io.popen("ps -o stat= -p " .. pid)
      local stat = p:read("*a") or ""
      p:close()
      return not stat:match("%S") or stat:match("^%s*Z") ~= nil
    end

    local function wait_gone(pid)
      for _ = 1, 200 do
        if gone(pid) then return true end
        os.execute("sleep 0.05")
      end
      return false
    end

    local function stop_group(pid)
      -- dash's kill takes no "--": "kill -TERM -PGID"
      if pid then os.execute("kill -TERM -" .. pid .. " 2>/dev/null") end
    end

    it("runs the fake server that the other commands can use", function()
      local pid, url, server = start_fake()
      local ok, err = pcall(function()
        assert.is_string(url)
        assert.is_number(server)
        local r = run { "tokens", "--json", ALICE, base = false, env = { ATLADMIN_BASE_URL = url } }
        assert.equal(0, r.code, r.err)
        assert.equal(4, #cjson.decode(r.out).tokens)
      end)
      stop_group(pid)
      assert(ok, err)
      assert.is_true(wait_gone(pid), "the launcher is still running")
      assert.is_true(wait_gone(server), "the server is still running")
    end)

    it("stops the server on Ctrl-C at a terminal", function()
      local statefile, out, pidfile, runner, fifo = tmpfile(), tmpfile(), tmpfile(), tmpfile(), tmpfile()
      write(statefile, cjson.encode(state()))
      os.remove(fifo)
      os.execute("mkfifo " .. quote(fifo))
      -- script(1) gives the command a terminal; a ^C written to script's input is typed there,
      -- and the terminal sends SIGINT to its foreground processes
      write(runner, string.format("echo $$ > %s\nexec script -qec %s /dev/null < %s > %s 2>&1\n", quote(pidfile),
        quote(string.format("%s %s fake --state %s --port 0 --key %s", LUA, quote(BIN), quote(statefile), KEY)),
        quote(fifo), quote(out)))
      os.execute("setsid sh " .. quote(runner) .. " < /dev/null > /dev/null 2>&1 &")
      local keys = assert(io.open(fifo, "w"))
      local pid = tonumber((read(pidfile) or ""):match("%d+"))
      local ok, err = pcall(function()
        local url
        for _ = 1, 200 do
          url = (read(out) or ""):match("listening on (http://[%d%.:]+)")
          if url then break end
          os.execute("sleep 0.05")
        end
        assert.is_string(url, read(out))
        -- "[a]" keeps pgrep's own shell, whose command line holds the pattern, out of the match
        local p = io.popen("pgrep -f -- " .. quote("[a]tladmin-fake --state " .. statefile))
        local servers = {}
        for line in p:lines() do servers[#servers + 1] = tonumber(line) end
        p:close()
        assert.equal(1, #servers)
        keys:write("\3")
        keys:flush()
        for _, server in ipairs(servers) do assert.is_true(wait_gone(server), "the server outlived Ctrl-C") end
        assert.is_true(wait_gone(pid), "script is still running")
        assert.matches("stopped", read(out))
      end)
      keys:close()
      stop_group(pid)
      assert(ok, err)
    end)

    it("stops the server when the command itself is killed", function()
      local pid, url, server = start_fake()
      local ok, err = pcall(function()
        assert.is_string(url)
        assert.is_number(server)
        assert.is_false(gone(server))
        -- SIGTERM to the launcher alone, as `kill PID` or a supervisor would send it
        os.execute("kill -TERM " .. pid)
        assert.is_true(wait_gone(pid), "the launcher is still running")
        assert.is_true(wait_gone(server), "the server outlived the command")
        local r = run { "tokens", "--json", ALICE, base = false, env = { ATLADMIN_BASE_URL = url } }
        assert.equal(1, r.code, r.out)
      end)
      stop_group(pid)
      assert(ok, err)
    end)
  end)
end)
