-- atladmin.batch: many calls at once on a Queue (client:queue, in C), with a concurrency bound:
-- client:each_tokens(accounts, opts) streams results as they complete; client:revoke_many(pairs,
-- opts) returns one result per pair. Installed as client methods by require "atladmin".
local M = {}

local DEFAULT_CONCURRENCY = 8

local function check_opts(opts, what)
  if opts == nil then return DEFAULT_CONCURRENCY end
  if type(opts) ~= "table" then error(what .. ": options must be a table", 3) end
  for k in pairs(opts) do
    if k ~= "concurrency" then error(what .. ": unknown option '" .. tostring(k) .. "'", 3) end
  end
  return opts.concurrency or DEFAULT_CONCURRENCY
end

-- A function returning the next account id, or nil at the end, from an array or a function.
local function source(accounts, what)
  if type(accounts) == "function" then return accounts end
  if type(accounts) ~= "table" then
    error(what .. ": accounts must be an array of account ids or an iterator function", 3)
  end
  local i = 0
  return function()
    i = i + 1
    return accounts[i]
  end
end

-- for account_id, tokens, err, res in client:each_tokens(accounts [, {concurrency = 8}]) do
-- Results come in completion order. Only a window of 2 x concurrency requests is queued at a
-- time, so memory stays flat however many accounts the iterator yields. An account that fails
-- gives (account_id, nil, err); the others go on.
function M.each_tokens(client, accounts, opts)
  local concurrency = check_opts(opts, "each_tokens")
  local nextid = source(accounts, "each_tokens")
  local q = client:queue { concurrency = concurrency }
  local window = 2 * concurrency
  local ready, head, tail = {}, 1, 0
  local exhausted = false
  -- the queue is also the loop's closing value: on Lua 5.4 a `break` out of the loop closes it
  -- at once (elsewhere the collector does)
  return function()
    while head > tail do
      while not exhausted and q:pending() < window do
        local id = nextid()
        if id == nil then exhausted = true else q:tokens(id) end
      end
      if q:pending() == 0 then
        q:close()
        return nil
      end
      local done = q:step(3600)
      ready, head, tail = done, 1, #done
    end
    local d = ready[head]
    ready[head] = nil
    head = head + 1
    if d.err then return d.account_id, nil, d.err end
    return d.account_id, d.value, nil, d.res
  end, nil, nil, q
end

-- client:revoke_many({{account_id, token_id}, ...} [, {concurrency = 8}]) -> results
-- results[i] = {account_id=, token_id=, ok = true, res = res} or {..., ok = false, err = err},
-- in the order of the input; one failure never stops the others.
function M.revoke_many(client, pairs_, opts)
  local concurrency = check_opts(opts, "revoke_many")
  if type(pairs_) ~= "table" then error("revoke_many: expected an array of {account_id, token_id}", 2) end
  for i = 1, #pairs_ do
    local p = pairs_[i]
    if type(p) ~= "table" or type(p[1]) ~= "string" or type(p[2]) ~= "string" then
      error("revoke_many: item " .. i .. " must be {account_id, token_id} (two strings)", 2)
    end
  end
  local q = client:queue { concurrency = concurrency }
  local results, index = {}, {}
  local n, nexti = #pairs_, 1
  local window = 2 * concurrency
  while nexti <= n or q:pending() > 0 do
    while nexti <= n and q:pending() < window do
      local p = pairs_[nexti]
      index[q:revoke(p[1], p[2])] = nexti
      nexti = nexti + 1
    end
    for _, d in ipairs(q:step(3600)) do
      local i = index[d.id]
      index[d.id] = nil
      results[i] = { account_id = d.account_id, token_id = d.token_id, ok = d.err == nil,
                     res = d.res, err = d.err }
    end
  end
  q:close()
  return results
end

function M.install(Client)
  Client.each_tokens = M.each_tokens
  Client.revoke_many = M.revoke_many
end

return M
