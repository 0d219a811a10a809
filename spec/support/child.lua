-- Runs a Lua chunk in a child interpreter (the one the suite runs under, same module paths),
-- optionally behind a prefix such as `unshare -rn` or `env http_proxy=...`, and returns
-- what it printed and whether it exited 0. For what cannot be done inside this process:
-- another network namespace, another environment, another view of the file system.
local shell = require "spec.support.shell"

local Child = {}

local quote = shell.quote
Child.quote = quote

function Child.works(prefix)
  return shell.execute(prefix .. " true >/dev/null 2>&1")
end

-- prefix: shell words put before the interpreter; code: the chunk.
function Child.run(code, prefix)
  local lua = os.getenv("ATLADMIN_LUA") or "lua5.4"
  local file = os.tmpname()
  local f = assert(io.open(file, "w"))
  f:write(code)
  f:close()
  local p = assert(io.popen(("%s %s %s 2>&1; echo \"exit=$?\""):format(prefix or "", lua, quote(file))))
  local out = p:read("*a")
  p:close()
  os.remove(file)
  local status = tonumber(out:match("exit=(%d+)%s*$"))
  return out:gsub("exit=%d+%s*$", ""), status == 0
end

return Child
