-- Test certificates made at test time with the openssl command (nothing secret is committed):
-- a CA and a server certificate it signs, for 127.0.0.1 (or another name when asked).
local shell = require "spec.support.shell"

local TLS = {}

local function sh(cmd)
  return shell.execute(cmd .. " >/dev/null 2>&1")
end

function TLS.available()
  return sh("command -v openssl")
end

-- Makes dir/<name>-ca.pem, dir/<name>-ca.key, dir/<name>-server.pem, dir/<name>-server.key.
-- san: the server certificate's subjectAltName (default "IP:127.0.0.1,DNS:localhost").
function TLS.make(dir, name, san)
  san = san or "IP:127.0.0.1,DNS:localhost"
  local p = dir .. "/" .. name
  local ext = p .. "-ext.cnf"
  local f = assert(io.open(ext, "w"))
  f:write("subjectAltName=" .. san .. "\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n" ..
          "extendedKeyUsage=serverAuth\n")
  f:close()
  local steps = {
    ("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=atladmin spec %s CA' " ..
     "-keyout %s-ca.key -out %s-ca.pem"):format(name, p, p),
    ("openssl req -newkey rsa:2048 -nodes -subj '/CN=atladmin spec %s server' -keyout %s-server.key " ..
     "-out %s-server.csr"):format(name, p, p),
    ("openssl x509 -req -in %s-server.csr -CA %s-ca.pem -CAkey %s-ca.key -CAcreateserial -days 2 " ..
     "-extfile %s -out %s-server.pem"):format(p, p, p, ext, p),
  }
  for _, cmd in ipairs(steps) do
    assert(sh(cmd), "openssl failed: " .. cmd)
  end
  return { ca = p .. "-ca.pem", cert = p .. "-server.pem", key = p .. "-server.key" }
end

function TLS.tmpdir()
  local base = os.tmpname()
  os.remove(base)
  assert(sh("mkdir -p '" .. base .. "'"))
  return base
end

function TLS.rmdir(dir)
  if dir and dir:match("^/tmp/") then sh("rm -rf '" .. dir .. "'") end
end

return TLS
