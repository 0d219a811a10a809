-- examples/demo.lua: the library side of an audit, against whatever ATLADMIN_BASE_URL points
-- at (make demo starts the fake with a sample organization "sample-org").
local atladmin = require "atladmin"
local audit = require "atladmin.audit"

local org = arg[1] or "sample-org"
local client = atladmin.new { base_url = os.getenv("ATLADMIN_BASE_URL") } -- key: $ATLASSIAN_ADMIN_TOKEN

-- 1. Who is in the organization? (pages are fetched as the loop goes)
local users, by_status = 0, {}
for user, err in client:org_users(org) do
  if not user then error(tostring(err)) end
  users = users + 1
  by_status[user.account_status] = (by_status[user.account_status] or 0) + 1
end
print(string.format("%s: %d managed accounts (%d active, %d inactive)", org, users,
                    by_status.active or 0, by_status.inactive or 0))

-- 2. Every API token of the organization in one stream, sorted into buckets.
local now = audit.now()
local stale = audit.unused(90, now)
local never = audit.never_used()
local expiring = audit.expiring(14, now)
local counts = { total = 0, stale = 0, never = 0, expiring = 0 }
local oldest
for token, err in client:org_tokens(org) do
  if not token then error(tostring(err)) end
  counts.total = counts.total + 1
  if stale(token) then counts.stale = counts.stale + 1 end
  if never(token) then counts.never = counts.never + 1 end
  if expiring(token) then counts.expiring = counts.expiring + 1 end
  local _, last = audit.times(token)
  if last and (not oldest or last < oldest.last) then oldest = { token = token, last = last } end
end
print(string.format("%d tokens: %d unused for 90 days, %d never used, %d expiring within 14 days",
                    counts.total, counts.stale, counts.never, counts.expiring))
if oldest then
  print(string.format("longest unused: %q of %s, last used %s", oldest.token.label, oldest.token.user.email,
                      audit.relative(oldest.last, now)))
end

-- 3. What may this key do on one account?
local first = client:org_users(org)()
if first then
  local perms, err = client:permissions(first.account_id, { "apiToken.read", "apiToken.delete" })
  if not perms then error(tostring(err)) end
  print(string.format("on %s: apiToken.read %s, apiToken.delete %s", first.email or first.account_id,
                      perms["apiToken.read"].allowed and "allowed" or "denied",
                      perms["apiToken.delete"].allowed and "allowed" or "denied"))
end
client:close()
