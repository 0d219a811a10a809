-- atladmin.org: lazy iterators over the Organizations API's cursor-paginated listings, added to
-- the client as client:org_users(org_id) and client:org_tokens(org_id [, filters]).
local core = require "atladmin.core"

local M = {}

local function unescape(s)
  s = s:gsub("+", " ")
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

--- next_query(url) -> the query parameters of a links.next URL as a table (repeated names
-- become arrays), or nil when it has none. Only the query is ever used: the scheme, host and
-- path of `next` are ignored, so a page can never steer the admin key to another place.
function M.next_query(url)
  if type(url) ~= "string" then return nil end
  local q = url:match("^[^?#]*%?([^#]*)")
  if not q or q == "" then return nil end
  local out, any = {}, false
  for pair in q:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    k, v = unescape(k), unescape(v)
    if k ~= "" then
      any = true
      local old = out[k]
      if old == nil then
        out[k] = v
      elseif type(old) == "table" then
        old[#old + 1] = v
      else
        out[k] = { old, v }
      end
    end
  end
  return any and out or nil
end

local function key_of(q)
  local names = {}
  for k in pairs(q) do names[#names + 1] = k end
  table.sort(names)
  local parts = {}
  for _, k in ipairs(names) do
    local v = q[k]
    parts[#parts + 1] = k .. "=" .. (type(v) == "table" and table.concat(v, ",") or tostring(v))
  end
  return table.concat(parts, "&")
end

-- An error object shaped like the core's (kind, message, method, endpoint), for pages that
-- arrive but cannot be followed.
local function page_error(res, message)
  return setmetatable({
    kind = "decode", status = res and res.status, message = message,
    method = res and res.method, endpoint = res and res.endpoint,
  }, core.Error)
end

local function iterate(client, page_method, org_id, filters)
  local query = {}
  if filters ~= nil then
    if type(filters) ~= "table" then error("bad argument #2 (filters: expected a table)", 3) end
    for k, v in pairs(filters) do query[k] = v end
  end
  local items, i = {}, 0
  local pending -- an error to give once this page's items are out
  local seen = {}
  return function()
    while true do
      i = i + 1
      if items[i] ~= nil then return items[i] end
      if pending then
        local err = pending
        pending, query = nil, nil
        return false, err
      end
      if query == nil then return nil end
      seen[key_of(query)] = true
      local page, res = client[page_method](client, org_id, query)
      query = nil
      if not page then return false, res end
      if type(page) ~= "table" or type(page.data) ~= "table" then
        return false, page_error(res, "the page has no data array")
      end
      items, i = page.data, 0
      local nq = type(page.links) == "table" and M.next_query(page.links.next) or nil
      if nq then
        -- filters stay on every page; the cursor (and whatever else next carries) wins
        local merged = {}
        if filters then for k, v in pairs(filters) do merged[k] = v end end
        for k, v in pairs(nq) do merged[k] = v end
        if seen[key_of(merged)] then
          pending = page_error(res, "links.next points back to a page already read: pagination stopped")
        else
          query = merged
        end
      end
    end
  end
end

local function check_org(org_id)
  if type(org_id) ~= "string" or org_id == "" then
    error("bad argument #1 (org_id: expected a non-empty string)", 3)
  end
end

--- for user, err in client:org_users(org_id) do ... end
-- Each managed account as the API gives it (account_id, name, email, account_status,
-- account_type, last_active, ...). Pages are fetched as the loop goes; on a failure the loop
-- gets `false, err` once (a nil would end a for loop before the body saw it), then ends.
function M.org_users(client, org_id)
  check_org(org_id)
  return iterate(client, "org_users_page", org_id, nil)
end

--- for token, err in client:org_tokens(org_id [, filters]) do ... end
-- Every user API token of the organization (API Access API): id, label, status, createdAt,
-- expiresAt, lastActiveAt, user = {id, name, email, orgId}. filters are query parameters
-- (q, status, ...) sent with every page.
function M.org_tokens(client, org_id, filters)
  check_org(org_id)
  return iterate(client, "org_tokens_page", org_id, filters)
end

core.Client.org_users = M.org_users
core.Client.org_tokens = M.org_tokens

return M
