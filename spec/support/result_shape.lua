-- The comparable part of a call's returns (value, res) or (nil, err): everything but timings
-- and counters that change from call to call, so two transports' results can be compared.
return function(op, v, r)
  local out = { value = v }
  if (op == "revoke" or op == "enable" or op == "disable") and v ~= nil then out.value, r = nil, v end
  if type(r) == "table" then
    local keep = {}
    for _, k in ipairs { "ok", "kind", "status", "key", "message", "method", "endpoint", "attempts",
                         "retry_after", "code", "body", "already_revoked" } do
      keep[k] = r[k]
    end
    if r.rate_limit then keep.rate_limit = r.rate_limit.limit end
    keep.text = getmetatable(r) and tostring(r) or nil
    out.r = keep
  end
  return out
end
