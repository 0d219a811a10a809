-- luacheck configuration: `luacheck lua spec examples` (CI: .ci/steps/20-luacheck.sh).
-- The code runs unchanged on Lua 5.1-5.4 and LuaJIT, so every version's globals are known.
std = "max"
codes = true

files["spec"] = { std = "+busted" }
-- code meant to run inside OpenResty/ngx_lua
files["lua/atladmin/resty.lua"] = { read_globals = { "ngx" } }
-- code meant to run inside Neovim
files["examples/neovim.lua"] = { read_globals = { "vim" } }
