-- atladmin.audit: time parsing, relative times and token filters for audits, on tokens of
-- either shape (client:tokens: lastAccess/expiry; org_tokens: lastActiveAt/expiresAt).
local M = {}

local DAY = 86400
local floor = math.floor

local function is_leap(y) return (y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0 end
local MDAYS = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

-- Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (no os.time: it is local time).
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

local function civil_from_days(z)
  z = z + 719468
  local era = floor(z / 146097)
  local doe = z - era * 146097
  local yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524) - floor(doe / 146096)) / 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100))
  local mp = floor((5 * doy + 2) / 153)
  local d = doy - floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  if m <= 2 then y = y + 1 end
  return y, m, d
end

--- parse_time("2015-05-12T20:20:50.521Z") -> epoch seconds (UTC, fraction kept), or nil, message.
-- Accepts RFC 3339 date-times: a `T` (or space) between date and time, optional fraction,
-- and `Z` or a `+hh:mm`/`-hh:mm`/`+hhmm` offset. A non-string argument raises.
function M.parse_time(s)
  if type(s) ~= "string" then
    error("atladmin.audit.parse_time: expected a string, got " .. type(s), 2)
  end
  local function bad(why)
    return nil, string.format("atladmin.audit: bad time %q (%s)", s:sub(1, 64), why)
  end
  local y, mo, d, h, mi, sec, rest = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)[Tt ](%d%d):(%d%d):(%d%d)(.*)$")
  if not y then return bad("expected YYYY-MM-DDTHH:MM:SS[.fff]Z") end
  y, mo, d, h, mi, sec = tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(sec)
  local frac = 0
  local digits, tail = rest:match("^%.(%d+)(.*)$")
  if digits then
    frac = tonumber("0." .. digits)
    rest = tail
  elseif rest:sub(1, 1) == "." then
    return bad("empty fraction")
  end
  local offset
  if rest == "Z" or rest == "z" then
    offset = 0
  else
    local sign, oh, om = rest:match("^([+-])(%d%d):?(%d%d)$")
    if not sign then return bad(rest == "" and "missing time zone (Z or +hh:mm)" or "bad time zone") end
    oh, om = tonumber(oh), tonumber(om)
    if oh > 23 or om > 59 then return bad("time zone offset out of range") end
    offset = (oh * 3600 + om * 60) * (sign == "-" and -1 or 1)
  end
  if mo < 1 or mo > 12 then return bad("month out of range") end
  local mdays = MDAYS[mo] + ((mo == 2 and is_leap(y)) and 1 or 0)
  if d < 1 or d > mdays then return bad("day out of range") end
  if h > 23 or mi > 59 or sec > 60 then return bad("time of day out of range") end
  local whole = days_from_civil(y, mo, d) * DAY + h * 3600 + mi * 60 + sec - offset
  if frac == 0 then return whole end
  return whole + frac
end

--- format_time(epoch) -> "2015-05-12T20:20:50Z" (or with .mmm when there is a fraction).
function M.format_time(t)
  if type(t) ~= "number" then
    error("atladmin.audit.format_time: expected a number, got " .. type(t), 2)
  end
  local whole = floor(t)
  local days = floor(whole / DAY)
  local secs = whole - days * DAY
  local y, m, d = civil_from_days(days)
  local out = string.format("%04d-%02d-%02dT%02d:%02d:%02d", y, m, d, floor(secs / 3600),
                            floor(secs % 3600 / 60), secs % 60)
  local ms = floor((t - whole) * 1000 + 0.5)
  if ms > 0 and ms < 1000 then out = out .. string.format(".%03d", ms) end
  return out .. "Z"
end

--- now() -> epoch seconds: $ATLADMIN_NOW (epoch seconds or an ISO time) when set, else os.time().
-- Specs and reproducible reports pin "now" with it.
function M.now()
  local v = os.getenv("ATLADMIN_NOW")
  if v and v ~= "" then
    local n = tonumber(v)
    if n then return n end
    local t, err = M.parse_time(v)
    if not t then error("ATLADMIN_NOW: " .. err, 2) end
    return t
  end
  return os.time()
end

local function plural(n, word)
  return n .. " " .. word .. (n == 1 and "" or "s")
end

--- relative(t, now) -> "41 days ago", "in 3 hours", "just now", or "never" when t is nil.
function M.relative(t, now)
  if t == nil then return "never" end
  now = now or M.now()
  local delta = now - t
  local future = delta < 0
  if future then delta = -delta end
  local text
  if delta < 60 then
    return "just now"
  elseif delta < 3600 then
    text = plural(floor(delta / 60), "minute")
  elseif delta < DAY then
    text = plural(floor(delta / 3600), "hour")
  elseif delta < 730 * DAY then
    text = plural(floor(delta / DAY), "day")
  else
    text = plural(floor(delta / (365.25 * DAY)), "year")
  end
  return future and ("in " .. text) or (text .. " ago")
end

-- Reads a token of either API shape.
local function field(token, a, b)
  local v = token[a]
  if v == nil then v = token[b] end
  if type(v) ~= "string" then return nil end -- atladmin.null and absent alike
  return v
end

--- times(token) -> created, last_used, expires (epoch seconds or nil), bad (list of fields
-- whose value could not be parsed). Works on client:tokens and org_tokens items alike.
function M.times(token)
  if type(token) ~= "table" then
    error("atladmin.audit.times: expected a token table, got " .. type(token), 2)
  end
  local out, bad = {}, nil
  local names = { { "createdAt", "createdAt" }, { "lastAccess", "lastActiveAt" }, { "expiry", "expiresAt" } }
  for i, pair in ipairs(names) do
    local s = field(token, pair[1], pair[2])
    if s then
      local t = M.parse_time(s)
      if t then out[i] = t else bad = bad or {}; bad[#bad + 1] = pair[1] end
    end
  end
  return out[1], out[2], out[3], bad
end

local function check_days(name, days)
  if type(days) ~= "number" or days ~= days or days < 0 then
    error("atladmin.audit." .. name .. ": days must be a non-negative number", 3)
  end
end

-- Every filter is a function(token) -> boolean. An unparseable time never selects a token:
-- an audit that revokes must err on the side of keeping.

--- unused(days [, now]): not used for `days` days: last used before now - days, or never used
-- and created before then.
function M.unused(days, now)
  check_days("unused", days)
  now = now or M.now()
  local limit = now - days * DAY
  return function(token)
    local created, last, _, bad = M.times(token)
    if bad then return false end
    local since = last or created
    return since ~= nil and since < limit
  end
end

--- never_used(): no recorded use at all.
function M.never_used()
  return function(token)
    local created, last, _, bad = M.times(token)
    if bad then return false end
    return last == nil and created ~= nil
  end
end

--- expiring(days [, now]): has an expiry at or before now + days (already expired included).
function M.expiring(days, now)
  check_days("expiring", days)
  now = now or M.now()
  local limit = now + days * DAY
  return function(token)
    local _, _, expires, bad = M.times(token)
    if bad then return false end
    return expires ~= nil and expires <= limit
  end
end

--- glob_pattern("CI*") -> the anchored, case-insensitive Lua pattern of a shell glob (* and ?).
function M.glob_pattern(glob)
  local out = { "^" }
  for ch in glob:gmatch(".") do
    if ch == "*" then
      out[#out + 1] = ".*"
    elseif ch == "?" then
      out[#out + 1] = "."
    elseif ch:match("%a") then
      out[#out + 1] = "[" .. ch:lower() .. ch:upper() .. "]"
    elseif ch:match("%w") then
      out[#out + 1] = ch
    else
      out[#out + 1] = "%" .. ch
    end
  end
  out[#out + 1] = "$"
  return table.concat(out)
end

--- label(pattern [, opts]): the label matches a shell glob ("CI*", case-insensitive), or with
-- opts.lua = true a Lua pattern (unanchored, as string.find).
function M.label(pattern, opts)
  if type(pattern) ~= "string" then
    error("atladmin.audit.label: pattern must be a string", 2)
  end
  local lua_pattern = (opts and opts.lua) and pattern or M.glob_pattern(pattern)
  local ok, perr = pcall(string.find, "", lua_pattern)
  if not ok then error("atladmin.audit.label: bad pattern: " .. tostring(perr), 2) end
  return function(token)
    local l = token.label
    return type(l) == "string" and l:find(lua_pattern) ~= nil
  end
end

--- any(f1, f2, ...) and all(f1, f2, ...): combine filters. any() of nothing selects nothing,
-- all() of nothing selects everything.
function M.any(...)
  local fs = { ... }
  return function(token)
    for i = 1, #fs do if fs[i](token) then return true end end
    return false
  end
end

function M.all(...)
  local fs = { ... }
  return function(token)
    for i = 1, #fs do if not fs[i](token) then return false end end
    return true
  end
end

--- select(tokens, filter) -> a new array of the tokens the filter selects, order kept.
function M.select(tokens, filter)
  local out = {}
  for _, t in ipairs(tokens) do
    if filter(t) then out[#out + 1] = t end
  end
  return out
end

return M
