-- Runs busted so that LeakSanitizer can do its work at exit: busted ends with os.exit(code, true),
-- whose lua_close unloads the module before LSan looks (and LSan then crashes). Here os.exit
-- collects garbage (every __gc runs) and exits without closing the state. Failing specs still
-- exit 1. Usage: lua_host spec/support/asan_runner.lua [busted args]
local real_exit = os.exit
os.exit = function(code, _) -- luacheck: ignore 122
  collectgarbage()
  collectgarbage()
  if code == true or code == nil then code = 0 elseif code == false then code = 1 end
  io.stdout:flush()
  io.stderr:flush()
  real_exit(code, false)
end
require "busted.runner" { standalone = false }
os.exit(0)
