-- atladmin: the module scripts require. The C core (atladmin.core) does HTTP and JSON;
-- this file adds the parts that are better written in Lua.
local core = require "atladmin.core"
require "atladmin.org" -- client:org_users(), client:org_tokens()

local M = {}
for k, v in pairs(core) do M[k] = v end

return M
