-- examples/demo.lua: an automation script: list the tokens of a few accounts, revoke the ones
-- not used for 180 days (or never), and show what happened.
-- Run: ATLASSIAN_ADMIN_TOKEN=... lua5.4 examples/demo.lua BASE_URL ACCOUNT...
local atladmin = require "atladmin"

local base_url = assert(arg[1], "usage: demo.lua BASE_URL ACCOUNT...")
local client = atladmin.new { base_url = base_url, retries = 2, backoff_base = 0.2 }
local STALE_DAYS = 180

local function epoch(iso)
  local y, mo, d, h, mi, s = iso:match("^(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)")
  if not y then return nil end
  -- days from civil date (UTC), so the local time zone plays no part
  y, mo = tonumber(y), tonumber(mo)
  if mo <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = (mo + 9) % 12
  local doy = math.floor((153 * mp + 2) / 5) + tonumber(d) - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  local days = era * 146097 + doe - 719468
  return days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(s)
end

local now = os.time()
local revoked, failed = 0, 0
for i = 2, #arg do
  local account = arg[i]
  local tokens, err = client:tokens(account)
  if not tokens then
    print(("%s: cannot list tokens: %s"):format(account, tostring(err)))
    failed = failed + 1
  else
    print(("%s: %d token(s)"):format(account, #tokens))
    for _, t in ipairs(tokens) do
      local last = t.lastAccess and epoch(t.lastAccess)
      local idle = last and math.floor((now - last) / 86400)
      local stale = not last or idle >= STALE_DAYS
      print(("  %-22s %-22s last used %s%s"):format(t.id, t.label,
        last and (idle .. " days ago") or "never", stale and "  -> revoke" or ""))
      if stale then
        local res, rerr = client:revoke(account, t.id)
        if res then
          revoked = revoked + 1
        else
          failed = failed + 1
          print(("    not revoked: %s"):format(rerr.key or rerr.message))
        end
      end
    end
  end
end
print(("revoked %d token(s), %d failure(s)"):format(revoked, failed))
for i = 2, #arg do
  local tokens = client:tokens(arg[i])
  print(("%s now has %d token(s)"):format(arg[i], tokens and #tokens or -1))
end
client:close()
