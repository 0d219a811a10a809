-- Run as a script by a clean interpreter (see luarocks_spec, install_spec): checks it sees only
-- the install tree it was given, requires atladmin, makes one call, prints what came back.
-- Usage: lua probe.lua URL KEY ACCOUNT
local url, key, account = ...
assert(not pcall(require, "cjson"), "the interpreter sees more than the tree")
local atladmin = require "atladmin"
print("version", atladmin._VERSION)
local client = atladmin.new { token = key, base_url = url, timeout = 5, retries = 0 }
local tokens, err = client:tokens(account)
if not tokens then
  print("error", tostring(err))
  os.exit(1)
end
for _, t in ipairs(tokens) do
  -- whole numbers are integers where the language has them
  print("token", t.id, math.type and math.type(t.uses) or type(t.uses))
end
client:close()
print("done")
