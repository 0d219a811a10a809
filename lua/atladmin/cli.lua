-- atladmin.cli: the `atladmin` command (tokens, revoke, audit, user, fake). M.main(argv, ctx)
-- returns the exit code: 0 all fine, 1 some calls failed (each named on stderr), 2 usage error.
local atladmin = require "atladmin"
local audit = require "atladmin.audit"
local report = require "atladmin.report"

local M = {}

local array = report.array

-- ---------------------------------------------------------------------------------------------
-- small helpers

local Usage = {} -- error(setmetatable({msg}, Usage)) ends the command with exit code 2

local function usage_error(fmt, ...)
  error(setmetatable({ msg = string.format(fmt, ...) }, Usage), 0)
end

local function run_ok(cmd)
  local a, _, c = os.execute(cmd)
  if type(a) == "number" then return a == 0 end
  return a == true and (c == nil or c == 0)
end

local function exit_code_of(a, how, c)
  if type(a) == "number" then -- 5.1/LuaJIT: the wait status
    if a >= 256 then return math.floor(a / 256) end
    return a == 0 and 0 or 1
  end
  if how == "exit" then return c or (a and 0 or 1) end
  return 128 + (c or 0) -- killed by a signal
end

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function is_tty(fd)
  return run_ok("test -t " .. fd)
end

local function read_lines(path, stdin)
  local f, err
  if path == "-" then f = stdin else f, err = io.open(path, "r") end
  if not f then usage_error("cannot read %s: %s", path, tostring(err)) end
  local out = {}
  for line in f:lines() do out[#out + 1] = line end
  if f ~= stdin then f:close() end
  return out
end

-- ---------------------------------------------------------------------------------------------
-- argument parsing: --name value, --name=value, flags, "--" ends options

local GLOBAL_OPTS = {
  ["base-url"] = "string", ["key-file"] = "string", timeout = "number", retries = "integer",
  help = "flag", version = "flag",
}

local function parse_args(argv, first, spec, cmdname)
  local opts, pos = {}, {}
  local i = first
  local only_pos = false
  while i <= #argv do
    local a = argv[i]
    if only_pos or a == "-" or a:sub(1, 1) ~= "-" then
      pos[#pos + 1] = a
    elseif a == "--" then
      only_pos = true
    elseif a == "-h" then
      opts.help = true
    else
      local name, inline = a:match("^%-%-([%w%-]+)=(.*)$")
      if not name then name = a:match("^%-%-([%w%-]+)$") end
      local kind = name and (spec[name] or GLOBAL_OPTS[name])
      if not kind then usage_error("%s: unknown option %s", cmdname, a) end
      if kind == "flag" then
        if inline then usage_error("%s: option --%s takes no value", cmdname, name) end
        opts[name] = true
      else
        local v = inline
        if v == nil then
          i = i + 1
          v = argv[i]
          if v == nil then usage_error("%s: option --%s needs a value", cmdname, name) end
        end
        if kind == "number" or kind == "integer" then
          local n = tonumber(v)
          if not n or n < 0 or n ~= n or (kind == "integer" and n ~= math.floor(n)) then
            usage_error("%s: --%s wants a non-negative %s, got %q", cmdname, name,
                        kind == "integer" and "whole number" or "number", v)
          end
          v = n
        end
        opts[name] = v
      end
    end
    i = i + 1
  end
  return opts, pos
end

-- ---------------------------------------------------------------------------------------------
-- help

local HELP = {
  main = [==[
usage: atladmin [--base-url URL] [--key-file FILE] COMMAND [ARGS]

See and revoke the API tokens of your organization's managed Atlassian accounts.

commands:
  tokens ACCOUNT...              list the API tokens of accounts
  revoke ACCOUNT TOKEN_ID...     revoke API tokens of one account
  audit (--org ORG_ID | --accounts FILE | ACCOUNT...) [filters] [--revoke [--yes]]
                                 find (and revoke) stale, unused or expiring tokens
  user show|permissions|disable|enable ACCOUNT
                                 look at or change one managed account
  fake [--state FILE | --sample N] [--port N]
                                 run the fake Admin API, to try things out

options for every command:
  --base-url URL     API base URL (default $ATLADMIN_BASE_URL, else https://api.atlassian.com)
  --key-file FILE    read the admin API key from FILE's first line (- for stdin; default:
                     $ATLASSIAN_ADMIN_TOKEN)
  --timeout S        seconds per request attempt (default 30)
  --retries N        retries on 429/503 and transient failures (default 4)
  -h, --help         help; `atladmin COMMAND --help` for one command
  --version          print the version

exit status: 0 all fine, 1 some calls failed (each named on stderr), 2 usage error.
]==],
  tokens = [==[
usage: atladmin tokens [--json|--csv] [--accounts FILE] ACCOUNT...

List the API tokens of each account: id, label, created, last used, expires.

  --accounts FILE    read account ids from FILE (one a line, # comments; - for stdin)
  --json             {"tokens":[...],"errors":[...]} (see the README for the fields)
  --csv              one line per token, with a header line
]==],
  revoke = [==[
usage: atladmin revoke [--dry-run] [--json] ACCOUNT TOKEN_ID...

Revoke API tokens of one account. Prints one line per token: revoked, or why not.

  --dry-run          revoke nothing: check that each token exists and say what would happen
  --json             {"results":[{"account_id","token_id","action","error"}...]}
]==],
  audit = [==[
usage: atladmin audit (--org ORG_ID | --accounts FILE | ACCOUNT...)
         [--unused-days N] [--never-used] [--expiring-days N] [--label PATTERN]
         [--active-only] [--revoke [--yes]] [--dry-run] [--json|--csv] [--concurrency N]

Find API tokens that are stale, unused or about to expire, and optionally revoke them.

where to look:
  --org ORG_ID       every managed account of an organization. Uses the org-wide API token
                     listing (API Access API); falls back to one listing per account when that
                     API answers 403/404, or always with --per-user.
  --per-user         with --org: enumerate users and list each account's tokens
  --accounts FILE    account ids from FILE (one a line, # comments; - for stdin)
  ACCOUNT...         account ids

which tokens (a token is reported when it matches any of the first three; --label narrows;
with none of them every token is listed):
  --unused-days N    not used for N days (never used: created more than N days ago)
  --never-used       never used at all
  --expiring-days N  expires within N days (or has expired)
  --label PATTERN    label matches a shell pattern (* and ?, case-insensitive)
  --active-only      only accounts whose status is active

what to do:
  --revoke           revoke the reported tokens; asks for confirmation on a terminal and
                     refuses without one unless --yes is given
  --yes              do not ask
  --dry-run          check permissions (apiToken.delete) and say what --revoke would do
  --json | --csv     machine-readable output (see the README)
  --concurrency N    requests in flight when listing per account (default 4)

Accounts whose tokens cannot be read or revoked are named on stderr with the reason, and the
audit goes on with the others; the exit status is then 1.
]==],
  user = [==[
usage: atladmin user show ACCOUNT [--json]
       atladmin user permissions ACCOUNT [PRIVILEGE...] [--json]
       atladmin user disable ACCOUNT [--message TEXT] [--dry-run]
       atladmin user enable ACCOUNT [--dry-run]

  show          the account's profile
  permissions   what this admin key may do on the account (privilege, allowed, reason)
  disable       deactivate the account (--message: the reason shown to the user)
  enable        reactivate the account
  --dry-run     change nothing: check lifecycle.enablement and say what would happen
]==],
  fake = [==[
usage: atladmin fake [--state FILE | --sample N] [--port N] [--key KEY] [--page-size N]
                     [--latency-ms N]

Run the fake Admin API server on 127.0.0.1 (until interrupted), to try atladmin out:

  atladmin fake --sample 300 --port 8080 &
  export ATLASSIAN_ADMIN_TOKEN=test-admin-key ATLADMIN_BASE_URL=http://127.0.0.1:8080
  atladmin audit --org sample-org --unused-days 90

--sample N makes an organization "sample-org" of N accounts. The key is --key, else the
state file's "key", else test-admin-key.
]==],
}

-- ---------------------------------------------------------------------------------------------
-- the command's context: output streams, clock, client

local Cmd = {}
Cmd.__index = Cmd

function Cmd:out(s) self.stdout:write(s) end

function Cmd:warn(fmt, ...)
  self:progress_clear()
  self.stdout:flush() -- keeps the order right when both go to one place (2>&1)
  self.stderr:write("atladmin: " .. string.format(fmt, ...) .. "\n")
end

function Cmd:client()
  if self._client then return self._client end
  local key = self.env("ATLASSIAN_ADMIN_TOKEN")
  local key_file = self.opts["key-file"]
  if key_file then
    local f, err
    if key_file == "-" then
      if self.opts.accounts == "-" then usage_error("--key-file - and --accounts - cannot both read stdin") end
      f = self.stdin
    else
      f, err = io.open(key_file, "r")
    end
    if not f then usage_error("cannot read the key file: %s", tostring(err)) end
    key = (f:read("*l") or ""):match("^%s*(.-)%s*$")
    if f ~= self.stdin then f:close() end
    if key == "" then usage_error("the key file %s is empty", key_file) end
  end
  if not key or key == "" then
    usage_error("no admin API key: export ATLASSIAN_ADMIN_TOKEN (or pass --key-file FILE)")
  end
  local options = { token = key }
  local base = self.opts["base-url"] or self.env("ATLADMIN_BASE_URL")
  if base and base ~= "" then options.base_url = base end
  if self.opts.timeout then options.timeout = self.opts.timeout end
  if self.opts.retries then options.retries = self.opts.retries end
  local ok, client = pcall(atladmin.new, options)
  if not ok then usage_error("%s", tostring(client):gsub("^[^:]*:%d+: ", "")) end
  self._client = client
  return client
end

-- A progress bar on stderr, only when stderr is a terminal.
function Cmd:progress(label, done, total)
  if not self.stderr_tty then return end
  local text
  if total and total > 0 then
    local w = 30
    local fill = math.floor(w * done / total)
    text = string.format("%s [%s%s] %d/%d", label, string.rep("#", fill), string.rep(".", w - fill),
                         done, total)
  else
    text = string.format("%s %d", label, done)
  end
  self.stderr:write("\r" .. text .. "\27[K")
  self.stderr:flush()
  self.progress_shown = true
end

function Cmd:progress_clear()
  if self.progress_shown then
    self.stderr:write("\r\27[K")
    self.stderr:flush()
    self.progress_shown = false
  end
end

-- ---------------------------------------------------------------------------------------------
-- errors

-- The reason key of a forbidden.action reply, read from the body the error kept.
local function reason_key(err)
  local body = type(err) == "table" and err.body
  if type(body) ~= "string" then return nil end
  return body:match('"reason"%s*:%s*{[^}]-"key"%s*:%s*"([^"]+)"')
end

-- One short line: "403 forbidden.action: The admin lacks ... (reason: denied)".
local function describe(err)
  if type(err) ~= "table" then return tostring(err) end
  local parts = {}
  if err.status then parts[#parts + 1] = tostring(err.status) end
  if err.key then parts[#parts + 1] = err.key end
  local head = table.concat(parts, " ")
  local msg = err.message or err.kind or "failed"
  local reason = reason_key(err)
  if reason then msg = msg .. " (reason: " .. reason .. ")" end
  if err.kind == "transport" then msg = "network error: " .. msg end
  return head ~= "" and (head .. ": " .. msg) or msg
end

-- The privilege a 403 forbidden.action of each operation stands for.
local PRIVILEGE = { list = "apiToken.read", revoke = "apiToken.delete", profile = "profile.read" }

local function error_record(op, account_id, err, token_id)
  local e = {
    operation = op, account_id = account_id, token_id = token_id,
    status = type(err) == "table" and err.status or nil,
    key = type(err) == "table" and err.key or nil,
    reason = reason_key(err),
    message = type(err) == "table" and (err.message or err.kind) or tostring(err),
  }
  if e.status == 403 and e.key == "forbidden.action" and PRIVILEGE[op] then
    e.privilege = PRIVILEGE[op]
    e.text = PRIVILEGE[op] .. " not granted: " .. describe(err)
  end
  return e
end

local OP_TEXT = {
  list = "cannot read the tokens of", revoke = "cannot revoke a token of",
  permissions = "cannot check permissions on", profile = "cannot read the profile of",
  org_users = "cannot list the users of organization", org_tokens = "cannot list the tokens of organization",
}

function Cmd:report_error(e, err)
  local what = OP_TEXT[e.operation] or e.operation
  local target = e.account_id or e.org_id or "?"
  if e.token_id then target = target .. " (token " .. e.token_id .. ")" end
  self:warn("%s %s: %s", what, target, e.text or describe(err or e))
end

-- ---------------------------------------------------------------------------------------------
-- token records: one shape for both API listings, used by every output format

local function str(v) return type(v) == "string" and v or nil end

local function record_from_user_token(t, account)
  return {
    account_id = account.account_id, account_name = account.name, email = account.email,
    account_status = account.account_status,
    id = str(t.id), label = str(t.label), status = str(t.status),
    created_at = str(t.createdAt), last_used_at = str(t.lastAccess), expires_at = str(t.expiry),
    raw = t,
  }
end

local function record_from_org_token(t)
  local u = type(t.user) == "table" and t.user or {}
  return {
    account_id = str(u.id), account_name = str(u.name), email = str(u.email),
    id = str(t.id), label = str(t.label), status = str(t.status),
    created_at = str(t.createdAt), last_used_at = str(t.lastActiveAt), expires_at = str(t.expiresAt),
    raw = t,
  }
end

local JSON_FIELDS = { "account_id", "account_name", "email", "id", "label", "status", "created_at",
                      "last_used_at", "expires_at" }

local function json_record(r)
  local o = {}
  for _, k in ipairs(JSON_FIELDS) do o[k] = r[k] == nil and report.null or r[k] end
  if r.matched then o.matched = array(r.matched) end
  if r.action then o.action = r.action end
  if r.error then o.error = r.error end
  return o
end

local function json_error(e)
  local o = {}
  for _, k in ipairs({ "operation", "account_id", "org_id", "token_id", "status", "key", "reason", "privilege",
                       "message" }) do
    if e[k] ~= nil then o[k] = e[k] end
  end
  return o
end

local CSV_HEADER = { "account_id", "account_name", "email", "token_id", "label", "status", "created_at",
                     "last_used_at", "expires_at", "matched", "action", "error" }

local function csv_rows(records)
  local out = { report.csv_row(CSV_HEADER) }
  for _, r in ipairs(records) do
    out[#out + 1] = report.csv_row({ r.account_id, r.account_name, r.email, r.id, r.label, r.status,
                                     r.created_at, r.last_used_at, r.expires_at,
                                     r.matched and table.concat(r.matched, ";") or nil, r.action,
                                     r.error }, #CSV_HEADER)
  end
  return table.concat(out)
end

function Cmd:when(s)
  if s == nil then return "never" end
  local t = audit.parse_time(s)
  if not t then return s end
  return audit.relative(t, self.now)
end

function Cmd:format_records(records, errors, kind, extra)
  if self.opts.json then
    local doc = extra or {}
    local list = array()
    for _, r in ipairs(records) do list[#list + 1] = json_record(r) end
    doc.tokens = list
    local errs = array()
    for _, e in ipairs(errors) do errs[#errs + 1] = json_error(e) end
    doc.errors = errs
    self:out(report.json(doc, "  ") .. "\n")
  elseif self.opts.csv then
    self:out(csv_rows(records))
  else
    if #records == 0 then
      self:out(kind == "audit" and "No tokens matched.\n" or "No tokens.\n")
      return
    end
    self:out(self:table_of(records, kind))
  end
end

function Cmd:table_of(records, kind)
    local headers
    local rows = {}
    if kind == "audit" then
      headers = { "ACCOUNT", "TOKEN", "LABEL", "CREATED", "LAST USED", "EXPIRES", "MATCHED", "ACTION" }
      for _, r in ipairs(records) do
        rows[#rows + 1] = { r.email or r.account_name or r.account_id, r.id, r.label, self:when(r.created_at),
                            self:when(r.last_used_at), self:when(r.expires_at),
                            r.matched and table.concat(r.matched, ",") or nil, r.action }
      end
      if not self.show_action then headers[8] = nil end
    else
      headers = { "ACCOUNT", "TOKEN", "LABEL", "CREATED", "LAST USED", "EXPIRES" }
      for _, r in ipairs(records) do
        rows[#rows + 1] = { r.account_id, r.id, r.label, self:when(r.created_at), self:when(r.last_used_at),
                            self:when(r.expires_at) }
      end
    end
    return report.table_text(headers, rows, { 44, 24, 32 })
end

-- ---------------------------------------------------------------------------------------------
-- listing many accounts: the batch API when the client has it, else one call after another

--- each_tokens(client, accounts, concurrency, fn): fn(account_id, tokens_or_nil, err) once per
-- account, in any order.
function M.each_tokens(client, accounts, concurrency, fn)
  if type(client.each_tokens) == "function" then
    for account_id, tokens, err in client:each_tokens(accounts, { concurrency = concurrency }) do
      if tokens then fn(account_id, tokens) else fn(account_id, nil, err) end
    end
    return
  end
  for _, account_id in ipairs(accounts) do
    local tokens, err = client:tokens(account_id)
    fn(account_id, tokens, err)
  end
end

--- revoke_all(client, list, concurrency, fn): fn(i, res_or_nil, err) for each list[i] =
-- {account_id, token_id}: client:revoke_many when the client has it, else one after another.
function M.revoke_all(client, list, concurrency, fn)
  if type(client.revoke_many) == "function" then
    local results = client:revoke_many(list, { concurrency = concurrency })
    for i = 1, #list do
      local r = results[i]
      if r and r.ok then fn(i, r.res or true) else fn(i, nil, r and r.err or "no result") end
    end
    return
  end
  for i, p in ipairs(list) do
    local res, err = client:revoke(p[1], p[2])
    fn(i, res, err)
  end
end

-- ---------------------------------------------------------------------------------------------
-- account ids from arguments and files

local function clean_ids(lines)
  local out, seen = {}, {}
  for i, line in ipairs(lines) do
    local id = line:gsub("#.*$", ""):match("^%s*([^%s,;]+)")
    if i == 1 and id == "account_id" then id = nil end -- the header of a CSV from this command
    if id and not seen[id] then
      seen[id] = true
      out[#out + 1] = id
    end
  end
  return out
end

-- The ids the client would refuse (it raises on them), refused here as usage errors instead.
local function check_id(what, id)
  if id == "" or id == "." or id == ".." or #id > 1024 or id:find("%c") then
    usage_error("not a valid %s: %q", what, id:sub(1, 80))
  end
end

function Cmd:accounts_from(pos, file)
  local lines = {}
  if file then lines = read_lines(file, self.stdin) end
  for _, a in ipairs(pos) do lines[#lines + 1] = a end
  local ids = clean_ids(lines)
  for _, id in ipairs(ids) do check_id("account id", id) end
  return ids
end

-- ---------------------------------------------------------------------------------------------
-- tokens

-- Lists the tokens of each account (concurrently where the client can), appending one record per
-- token to records, in the order of accounts, and one error record per account that failed.
-- info maps account ids to what is known of the account (name, email) for the records.
function Cmd:list_tokens_of(accounts, concurrency, info, records, errors)
  local by_account, done = {}, 0
  M.each_tokens(self:client(), accounts, concurrency, function(account_id, tokens, err)
    done = done + 1
    if #accounts > 1 then self:progress("listing tokens", done, #accounts) end
    if tokens then
      by_account[account_id] = tokens
    else
      local e = error_record("list", account_id, err)
      errors[#errors + 1] = e
      self:report_error(e, err)
    end
  end)
  self:progress_clear()
  for _, account_id in ipairs(accounts) do
    local a = info[account_id] or { account_id = account_id }
    for _, t in ipairs(by_account[account_id] or {}) do
      records[#records + 1] = record_from_user_token(t, a)
    end
  end
end

function Cmd:cmd_tokens(pos)
  if self.opts.json and self.opts.csv then usage_error("tokens: --json and --csv exclude each other") end
  local accounts = self:accounts_from(pos, self.opts.accounts)
  if #accounts == 0 then usage_error("tokens: give at least one ACCOUNT (or --accounts FILE)") end
  local records, errors = {}, {}
  self:list_tokens_of(accounts, 4, {}, records, errors)
  self:format_records(records, errors, "tokens")
  return #errors > 0 and 1 or 0
end

-- ---------------------------------------------------------------------------------------------
-- revoke

function Cmd:cmd_revoke(pos)
  local account = pos[1]
  if not account or #pos < 2 then usage_error("revoke: give an ACCOUNT and at least one TOKEN_ID") end
  check_id("account id", account)
  local ids = {}
  for i = 2, #pos do
    check_id("token id", pos[i])
    ids[#ids + 1] = pos[i]
  end
  local client = self:client()
  local results, failed = array(), 0
  local existing
  if self.opts["dry-run"] then
    local tokens, err = client:tokens(account)
    if not tokens then
      self:report_error(error_record("list", account, err), err)
      failed = failed + 1
    else
      existing = {}
      for _, t in ipairs(tokens) do if type(t.id) == "string" then existing[t.id] = t end end
    end
  end
  for _, id in ipairs(ids) do
    local r = { account_id = account, token_id = id }
    if self.opts["dry-run"] then
      if not existing then
        r.action, r.error = "unknown", "could not list the account's tokens"
      elseif existing[id] then
        r.action = "would_revoke"
        self:line_unless_json("would revoke %s %s (%s)", account, id, tostring(existing[id].label or ""))
      else
        r.action, r.error = "not_found", "no such token on this account"
        failed = failed + 1
        self:warn("would fail: %s has no token %s", account, id)
      end
    else
      local res, err = client:revoke(account, id)
      if res then
        r.action = "revoked"
        self:line_unless_json("revoked %s %s", account, id)
      else
        r.action, r.error = "failed", describe(err)
        failed = failed + 1
        self:report_error(error_record("revoke", account, err, id), err)
      end
    end
    results[#results + 1] = r
  end
  if self.opts.json then self:out(report.json({ results = results }, "  ") .. "\n") end
  return failed > 0 and 1 or 0
end

function Cmd:line_unless_json(fmt, ...)
  if not self.opts.json then self:out(string.format(fmt, ...) .. "\n") end
end

-- ---------------------------------------------------------------------------------------------
-- audit

local function is_api_access_unavailable(err)
  return type(err) == "table" and (err.status == 403 or err.status == 404)
end

-- Gathers token records of the audit's scope; returns records, the number of accounts seen.
function Cmd:gather(errors)
  local o = self.opts
  local client = self:client()
  local records = {}
  local active_only = o["active-only"]

  local function per_account(accounts, info)
    self:list_tokens_of(accounts, o.concurrency or 4, info, records, errors)
    return #accounts
  end

  local function org_user_list(org)
    local accounts, info, n = {}, {}, 0
    for user, err in client:org_users(org) do
      if not user then
        local e = error_record("org_users", nil, err)
        e.org_id = org
        errors[#errors + 1] = e
        self:report_error(e, err)
        break
      end
      n = n + 1
      self:progress("reading users", n)
      if type(user) == "table" and type(user.account_id) == "string" then
        info[user.account_id] = user
        -- app (bot) accounts have no API tokens: listing them would only add errors
        if user.account_type ~= "app" and (not active_only or user.account_status == "active") then
          accounts[#accounts + 1] = user.account_id
        end
      end
    end
    self:progress_clear()
    return accounts, info
  end

  if o.org then
    if not o["per-user"] then
      local got, n = {}, 0
      local fallback_err
      for token, err in client:org_tokens(o.org) do
        if not token then
          if n == 0 and is_api_access_unavailable(err) then
            fallback_err = err
          else
            local e = error_record("org_tokens", nil, err)
            e.org_id = o.org
            errors[#errors + 1] = e
            self:report_error(e, err)
          end
          break
        end
        n = n + 1
        self:progress("reading tokens", n)
        if type(token) == "table" then got[#got + 1] = record_from_org_token(token) end
      end
      self:progress_clear()
      if not fallback_err then
        local seen_accounts = {}
        if active_only then
          local accounts, info = org_user_list(o.org)
          local keep = {}
          for _, id in ipairs(accounts) do keep[id] = true end
          for _, r in ipairs(got) do
            if keep[r.account_id] then
              local u = info[r.account_id]
              r.account_status = u and u.account_status
              records[#records + 1] = r
            end
          end
          return records, #accounts
        end
        for _, r in ipairs(got) do
          records[#records + 1] = r
          if r.account_id then seen_accounts[r.account_id] = true end
        end
        local count = 0
        for _ in pairs(seen_accounts) do count = count + 1 end
        return records, count
      end
      self:warn("the org-wide token listing is not available for %s (%s); listing each account instead",
                o.org, describe(fallback_err))
    end
    local accounts, info = org_user_list(o.org)
    return records, per_account(accounts, info)
  end

  local accounts = self:accounts_from(self.pos, o.accounts)
  local info = {}
  if active_only then
    local kept = {}
    for _, id in ipairs(accounts) do
      local account, err = client:profile(id)
      if not account then
        local e = error_record("profile", id, err)
        errors[#errors + 1] = e
        self:report_error(e, err)
      else
        info[id] = { account_id = id, name = account.name, email = account.email,
                     account_status = account.account_status }
        if account.account_status == nil or account.account_status == "active" then kept[#kept + 1] = id end
      end
    end
    accounts = kept
  end
  return records, per_account(accounts, info)
end

-- The filter as (matched-criteria list or nil) per record.
function Cmd:criteria()
  local o = self.opts
  local crit = {}
  if o["unused-days"] then crit[#crit + 1] = { "unused", audit.unused(o["unused-days"], self.now) } end
  if o["never-used"] then crit[#crit + 1] = { "never_used", audit.never_used() } end
  if o["expiring-days"] then crit[#crit + 1] = { "expiring", audit.expiring(o["expiring-days"], self.now) } end
  local label
  if o.label then
    local ok, f = pcall(audit.label, o.label)
    if not ok then usage_error("audit: --label: %s", tostring(f)) end
    label = f
  end
  return function(r)
    local t = r.raw
    local matched = {}
    if label then
      if not label(t) then return nil end
      matched[#matched + 1] = "label"
    end
    if #crit == 0 then return matched end
    local any = false
    for _, c in ipairs(crit) do
      if c[2](t) then matched[#matched + 1] = c[1]; any = true end
    end
    return any and matched or nil
  end, (#crit > 0 or label ~= nil)
end

-- Checks apiToken.delete on every account that has tokens to revoke; marks the others denied.
function Cmd:check_delete(flagged, errors)
  local client = self:client()
  local accounts, seen = {}, {}
  for _, r in ipairs(flagged) do
    if r.account_id and not seen[r.account_id] then
      seen[r.account_id] = true
      accounts[#accounts + 1] = r.account_id
    end
  end
  local verdict = {}
  for i, account_id in ipairs(accounts) do
    self:progress("checking permissions", i, #accounts)
    local perms, err = client:permissions(account_id, { "apiToken.delete" })
    if not perms then
      verdict[account_id] = { action = "failed", error = "permission check failed: " .. describe(err) }
      local e = error_record("permissions", account_id, err)
      errors[#errors + 1] = e
      self:report_error(e, err)
    else
      local p = perms["apiToken.delete"]
      if type(p) == "table" and p.allowed == true then
        verdict[account_id] = { ok = true }
      else
        local reason = type(p) == "table" and type(p.reason) == "table" and p.reason.key or nil
        local text = "apiToken.delete not granted" .. (reason and (" (reason: " .. reason .. ")") or "")
        verdict[account_id] = { action = "denied", error = text }
        local e = { operation = "revoke", account_id = account_id, privilege = "apiToken.delete", reason = reason,
                    message = text, text = text }
        errors[#errors + 1] = e
        self:report_error(e)
      end
    end
  end
  self:progress_clear()
  for _, r in ipairs(flagged) do
    local v = r.account_id and verdict[r.account_id] or { action = "failed", error = "token has no account id" }
    if not v.ok then r.action, r.error = v.action, v.error end
  end
end

function Cmd:confirm(n_tokens, n_accounts)
  self.stderr:write(string.format("Revoke %d token%s on %d account%s? Type yes to go on: ", n_tokens,
                                  n_tokens == 1 and "" or "s", n_accounts, n_accounts == 1 and "" or "s"))
  self.stderr:flush()
  local answer = self.stdin:read("*l")
  return answer ~= nil and (answer:lower():match("^%s*y") ~= nil)
end

function Cmd:cmd_audit(pos)
  local o = self.opts
  self.pos = pos
  if o.json and o.csv then usage_error("audit: --json and --csv exclude each other") end
  local sources = (o.org and 1 or 0) + ((o.accounts or #pos > 0) and 1 or 0)
  if sources == 0 then usage_error("audit: say where to look: --org ORG_ID, --accounts FILE or ACCOUNT...") end
  if o.org and (o.accounts or #pos > 0) then usage_error("audit: --org excludes --accounts and ACCOUNT arguments") end
  if o["per-user"] and not o.org then usage_error("audit: --per-user goes with --org") end
  if o.yes and not o.revoke then usage_error("audit: --yes goes with --revoke") end
  if o.concurrency and o.concurrency < 1 then usage_error("audit: --concurrency must be at least 1") end
  local filter, narrowed = self:criteria()
  local revoke = o.revoke or o["dry-run"]
  if revoke and not narrowed then
    usage_error("audit: refusing to revoke every token: give --unused-days, --never-used, --expiring-days or --label")
  end
  local interactive = o.revoke and not o.yes and not o["dry-run"]
  if interactive and not self.stdin_tty then
    usage_error("audit: --revoke asks for confirmation and there is no terminal to ask on; add --yes to go ahead")
  end
  self:client()

  local errors = {}
  local records, n_accounts = self:gather(errors)
  local flagged = {}
  for _, r in ipairs(records) do
    local matched = filter(r)
    if matched then
      r.matched = matched
      flagged[#flagged + 1] = r
    end
  end

  local revoked, failed = 0, 0
  if revoke and #flagged > 0 then
    self.show_action = true
    self:check_delete(flagged, errors)
    local todo, accts = {}, {}
    for _, r in ipairs(flagged) do
      if not r.action then
        todo[#todo + 1] = r
        r.action = o["dry-run"] and "would_revoke" or "pending"
        if r.account_id then accts[r.account_id] = true end
      end
    end
    local n_acc = 0
    for _ in pairs(accts) do n_acc = n_acc + 1 end
    local go = not o["dry-run"] and #todo > 0
    if go and interactive then
      for _, r in ipairs(todo) do r.action = "to_revoke" end
      self:progress_clear()
      self.stderr:write(self:table_of(flagged, "audit"))
      go = self:confirm(#todo, n_acc)
      self.confirmed = go
      if not go then
        self.stderr:write("Nothing revoked.\n")
        return 1
      end
    end
    if go then
      local list = {}
      for i, r in ipairs(todo) do list[i] = { r.account_id, r.id } end
      M.revoke_all(self:client(), list, o.concurrency or 4, function(i, res, err)
        local r = todo[i]
        self:progress("revoking", i, #todo)
        if res then
          r.action = "revoked"
          revoked = revoked + 1
        else
          r.action, r.error = "failed", describe(err)
          failed = failed + 1
          local e = error_record("revoke", r.account_id, err, r.id)
          errors[#errors + 1] = e
          self:report_error(e, err)
        end
      end)
      self:progress_clear()
    end
  end

  local summary = { accounts = n_accounts, tokens = #records, matched = #flagged }
  if revoke then
    local would, denied = 0, 0
    for _, r in ipairs(flagged) do
      if r.action == "would_revoke" then would = would + 1 end
      if r.action == "denied" then denied = denied + 1 end
    end
    summary.revoked, summary.failed, summary.denied = revoked, failed, denied
    if o["dry-run"] then summary.would_revoke = would end
  end
  summary.errors = #errors
  if not (self.confirmed and not o.json and not o.csv) then -- people saw the table before saying yes
    self:format_records(flagged, errors, "audit", { now = audit.format_time(self.now), summary = summary })
  end
  local line = string.format("%d token%s of %d account%s, %d matched", #records, #records == 1 and "" or "s",
                             n_accounts, n_accounts == 1 and "" or "s", #flagged)
  if revoke then
    if o["dry-run"] then
      line = line .. string.format(", %d would be revoked (dry run)", summary.would_revoke)
    else
      line = line .. string.format(", %d revoked", revoked)
    end
    if summary.denied > 0 then line = line .. string.format(", %d not allowed", summary.denied) end
    if failed > 0 then line = line .. string.format(", %d failed", failed) end
  end
  if #errors > 0 then line = line .. string.format("; %d problem%s (above)", #errors, #errors == 1 and "" or "s") end
  self.stdout:flush()
  self.stderr:write(line .. "\n")
  return #errors > 0 and 1 or 0
end

-- ---------------------------------------------------------------------------------------------
-- user

local function flatten_permissions(perms)
  local rows = {}
  local names = {}
  for k in pairs(perms) do names[#names + 1] = k end
  table.sort(names)
  for _, name in ipairs(names) do
    local p = perms[name]
    if type(p) == "table" and p.allowed ~= nil then
      rows[#rows + 1] = { name, p.allowed and "yes" or "no", type(p.reason) == "table" and p.reason.key or nil }
    elseif type(p) == "table" then
      local sub = {}
      for k in pairs(p) do sub[#sub + 1] = k end
      table.sort(sub)
      for _, k in ipairs(sub) do
        local q = p[k]
        if type(q) == "table" then
          rows[#rows + 1] = { name .. "." .. k, q.allowed and "yes" or "no",
                              type(q.reason) == "table" and q.reason.key or nil }
        end
      end
    end
  end
  return rows
end

local function plain(v)
  -- turn decoded JSON (with atladmin.null) into something report.json writes
  if v == atladmin.null then return report.null end
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = plain(x) end
  return out
end

function Cmd:cmd_user(pos)
  local action, account = pos[1], pos[2]
  local actions = { show = true, permissions = true, disable = true, enable = true }
  if not action then usage_error("user: say show, permissions, disable or enable (see atladmin user --help)") end
  if not actions[action] then usage_error("user: unknown action %q (show, permissions, disable, enable)", action) end
  if not account then usage_error("user %s: give an ACCOUNT", action) end
  check_id("account id", account)
  if (action == "show" or action == "disable" or action == "enable") and #pos > 2 then
    usage_error("user %s: one ACCOUNT only", action)
  end
  if self.opts["dry-run"] and (action == "show" or action == "permissions") then
    usage_error("user %s: --dry-run goes with disable and enable", action)
  end
  if self.opts.message and action ~= "disable" then usage_error("user %s: --message goes with disable", action) end
  local client = self:client()

  if action == "show" then
    local acc, err = client:profile(account)
    if not acc then
      self:report_error(error_record("profile", account, err), err)
      return 1
    end
    if self.opts.json then
      self:out(report.json({ account = plain(acc) }, "  ") .. "\n")
    else
      local rows, keys = {}, {}
      for k, v in pairs(acc) do if type(v) ~= "table" then keys[#keys + 1] = k end end
      table.sort(keys)
      for _, k in ipairs(keys) do rows[#rows + 1] = { k, tostring(acc[k]) } end
      if type(acc.extended_profile) == "table" then
        local ek = {}
        for k in pairs(acc.extended_profile) do ek[#ek + 1] = k end
        table.sort(ek)
        for _, k in ipairs(ek) do
          local v = acc.extended_profile[k]
          if type(v) ~= "table" then rows[#rows + 1] = { "extended_profile." .. k, tostring(v) } end
        end
      end
      self:out(report.table_text({ "FIELD", "VALUE" }, rows))
    end
    return 0
  end

  if action == "permissions" then
    local wanted
    if #pos > 2 then
      wanted = {}
      for i = 3, #pos do wanted[#wanted + 1] = pos[i] end
    end
    local perms, err = client:permissions(account, wanted)
    if not perms then
      self:report_error(error_record("permissions", account, err), err)
      return 1
    end
    if self.opts.json then
      self:out(report.json({ permissions = plain(perms) }, "  ") .. "\n")
    else
      self:out(report.table_text({ "PRIVILEGE", "ALLOWED", "REASON" }, flatten_permissions(perms)))
    end
    return 0
  end

  -- disable / enable
  local verb = action == "disable" and "deactivate" or "reactivate"
  if self.opts["dry-run"] then
    local perms, err = client:permissions(account, { "lifecycle.enablement" })
    if not perms then
      self:report_error(error_record("permissions", account, err), err)
      return 1
    end
    local p = perms["lifecycle.enablement"]
    if type(p) == "table" and p.allowed == true then
      self:out(string.format("would %s %s (dry run; lifecycle.enablement allowed)\n", verb, account))
      return 0
    end
    local reason = type(p) == "table" and type(p.reason) == "table" and p.reason.key or nil
    self:warn("would fail: cannot %s %s: lifecycle.enablement not granted%s", verb, account,
              reason and (" (reason: " .. reason .. ")") or "")
    return 1
  end
  local res, err
  if action == "disable" then
    res, err = client:disable(account, self.opts.message)
  else
    res, err = client:enable(account)
  end
  if not res then
    self:warn("cannot %s %s: %s", verb, account, describe(err))
    return 1
  end
  self:out(string.format("%sd %s\n", verb, account))
  return 0
end

-- ---------------------------------------------------------------------------------------------
-- fake

function Cmd:cmd_fake(pos)
  if #pos > 0 then usage_error("fake: unexpected argument %s", pos[1]) end
  local o = self.opts
  if o.state and o.sample then usage_error("fake: --state and --sample exclude each other") end
  local bin
  local candidates = {}
  if self.env("ATLADMIN_FAKE") and self.env("ATLADMIN_FAKE") ~= "" then candidates[1] = self.env("ATLADMIN_FAKE") end
  for _, c in ipairs(self.ctx.fake_candidates or {}) do candidates[#candidates + 1] = c end
  for _, c in ipairs(candidates) do
    local f = io.open(c, "r")
    if f then f:close(); bin = c; break end
  end
  if not bin then
    if run_ok("command -v atladmin-fake >/dev/null 2>&1") then
      bin = "atladmin-fake"
    else
      self:warn("atladmin-fake not found: build it with `make fake`, or set ATLADMIN_FAKE to its path")
      return 1
    end
  end
  local cmd = { quote(bin) }
  local pass = { "state", "sample", "port", "key", "page-size", "latency-ms" }
  for _, name in ipairs(pass) do
    if o[name] ~= nil then
      local v = o[name]
      if type(v) == "number" then v = string.format("%d", v) end
      cmd[#cmd + 1] = "--" .. name .. " " .. quote(v)
    end
  end
  self.stdout:flush()
  -- The shell execs the server, so Ctrl-C (SIGINT to the terminal's process group) reaches it
  -- directly while this process waits; setpriv (util-linux) has the kernel send it SIGTERM when
  -- this process dies, so `kill PID` of the command stops the server too instead of orphaning it.
  local line = table.concat(cmd, " ")
  return exit_code_of(os.execute(("if setpriv --pdeathsig TERM true 2>/dev/null; then "
    .. "exec setpriv --pdeathsig TERM %s; else exec %s; fi"):format(line, line)))
end

-- ---------------------------------------------------------------------------------------------
-- entry

local COMMANDS = {
  tokens = { spec = { json = "flag", csv = "flag", accounts = "string" } },
  revoke = { spec = { ["dry-run"] = "flag", json = "flag" } },
  audit = { spec = {
    org = "string", accounts = "string", ["per-user"] = "flag",
    ["unused-days"] = "number", ["never-used"] = "flag", ["expiring-days"] = "number", label = "string",
    ["active-only"] = "flag", revoke = "flag", yes = "flag", ["dry-run"] = "flag", json = "flag",
    csv = "flag", concurrency = "integer",
  } },
  user = { spec = { json = "flag", ["dry-run"] = "flag", message = "string" } },
  fake = { spec = { state = "string", sample = "integer", port = "integer", key = "string",
                    ["page-size"] = "integer", ["latency-ms"] = "integer" } },
}

--- main(argv [, ctx]) -> exit code. ctx may carry stdout, stderr, stdin, env (a getenv-like
-- function), now (epoch seconds), stdin_tty, stderr_tty and fake_candidates (paths).
function M.main(argv, ctx)
  ctx = ctx or {}
  local self = setmetatable({
    ctx = ctx,
    stdout = ctx.stdout or io.stdout, stderr = ctx.stderr or io.stderr, stdin = ctx.stdin or io.stdin,
    env = ctx.env or os.getenv,
  }, Cmd)
  local ok, code = pcall(function()
    -- global options may come before the command
    local i = 1
    local pre = {}
    while argv[i] and argv[i]:sub(1, 1) == "-" do
      local a = argv[i]
      local name = a:match("^%-%-([%w%-]+)")
      if a == "-h" or a == "--help" then
        pre.help = true
      elseif a == "--version" then
        pre.version = true
      elseif name and GLOBAL_OPTS[name] and GLOBAL_OPTS[name] ~= "flag" and not a:find("=", 1, true) then
        pre[#pre + 1] = a
        pre[#pre + 1] = argv[i + 1]
        i = i + 1
      elseif name and GLOBAL_OPTS[name] then
        pre[#pre + 1] = a
      else
        usage_error("unknown option %s (see atladmin --help)", a)
      end
      i = i + 1
    end
    local name = argv[i]
    if pre.version then
      self:out(string.format("atladmin %s (libcurl %s, %s)\n", atladmin._VERSION, atladmin.curl_version(),
                             (jit and jit.version) or _VERSION))
      return 0
    end
    if name == "help" then
      local topic = argv[i + 1]
      self:out(HELP[topic] or HELP.main)
      return HELP[topic or "main"] and 0 or 2
    end
    if not name then
      if pre.help then self:out(HELP.main); return 0 end
      self.stderr:write(HELP.main)
      return 2
    end
    local cmd = COMMANDS[name]
    if not cmd then usage_error("unknown command %q (see atladmin --help)", name) end
    local preopts = parse_args(pre, 1, {}, "atladmin")
    local opts, pos = parse_args(argv, i + 1, cmd.spec, name)
    for k, v in pairs(preopts) do if opts[k] == nil then opts[k] = v end end
    if opts.help or pre.help then
      self:out(HELP[name])
      return 0
    end
    self.opts = opts
    self.now = ctx.now
    if not self.now then
      local ok_now, now = pcall(audit.now)
      if not ok_now then usage_error("%s", tostring(now):gsub("^[^:]*:%d+: ", "")) end
      self.now = now
    end
    self.stdin_tty = ctx.stdin_tty
    if self.stdin_tty == nil then self.stdin_tty = is_tty(0) end
    self.stderr_tty = ctx.stderr_tty
    if self.stderr_tty == nil then self.stderr_tty = is_tty(2) end
    return self["cmd_" .. name](self, pos)
  end)
  self:progress_clear()
  if self._client then self._client:close() end
  if ok then
    self.stdout:flush()
    return code
  end
  if getmetatable(code) == Usage then
    self.stderr:write("atladmin: " .. code.msg .. "\n")
    return 2
  end
  local msg = tostring(code)
  if msg:find("bad argument", 1, true) then -- the library refused a value given on the command line
    self.stderr:write("atladmin: " .. msg:gsub("^[^:]*:%d+: ", "") .. "\n")
    return 2
  end
  self.stderr:write("atladmin: internal error: " .. msg .. "\n")
  return 1
end

return M
