-- What spec/resty_spec.lua's nginx runs: each location makes atladmin.resty calls and answers
-- luacheck: globals ngx
-- with their results as JSON, so the spec can compare them with the libcurl client's.
local cjson = require "cjson.safe"
local resty = require "atladmin.resty"
local shape = require "spec.support.result_shape"

local M = {}

-- calls in progress in this worker (the spec runs one worker process)
local inflight = 0

local clients = {}

-- one client per worker for the plain fake, one for the TLS fake (?tls=1)
local function get_client()
  local tls = ngx.var.arg_tls == "1"
  if not clients[tls] then
    clients[tls] = resty.new { token = os.getenv("ATLADMIN_SPEC_KEY") or "spec-resty-key",
                               base_url = tls and ngx.var.fake_tls_url or ngx.var.fake_url,
                               retries = 2, backoff_base = 0.01, timeout = 10 }
  end
  return clients[tls]
end

local function reply(t)
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode(t))
end

-- /call?op=tokens&a=ACCOUNT[&b=TOKEN]
function M.call()
  local args = ngx.req.get_uri_args()
  local c = get_client()
  local ok, v, r
  inflight = inflight + 1
  if args.b then
    ok, v, r = pcall(c[args.op], c, args.a, args.b)
  else
    ok, v, r = pcall(c[args.op], c, args.a)
  end
  inflight = inflight - 1
  if not ok then return reply { raised = tostring(v) } end
  reply(shape(args.op, v, r))
end

-- /each?a=ID,ID,...&concurrency=N
function M.each()
  local args = ngx.req.get_uri_args()
  local ids = {}
  for id in args.a:gmatch("[^,]+") do ids[#ids + 1] = id end
  local out = {}
  for acct, tokens, err in get_client():each_tokens(ids, { concurrency = tonumber(args.concurrency) }) do
    out[#out + 1] = { account = acct, count = tokens and #tokens or -1, err = err and err.key or cjson.null }
  end
  reply(out)
end

-- /fast: answered at once, saying how many calls are waiting on the network in this worker
function M.fast()
  ngx.say("fast, in flight: ", inflight)
end

-- /stall?a=ACCOUNT: a call with stall_timeout = 1 and no retries
function M.stall()
  local c = resty.new { token = os.getenv("ATLADMIN_SPEC_KEY") or "spec-resty-key", base_url = ngx.var.fake_url,
                        retries = 0, stall_timeout = 1, timeout = 20 }
  local tokens, err = c:tokens(ngx.var.arg_a and ngx.unescape_uri(ngx.var.arg_a))
  reply { ok = tokens ~= nil, kind = err and err.kind, code = err and err.code, attempts = err and err.attempts }
end

-- /down?port=N: a call to a port nobody listens on
function M.down()
  local c = resty.new { token = "k", base_url = "http://127.0.0.1:" .. ngx.var.arg_port, retries = 1,
                        backoff_base = 0.01 }
  local _, err = c:tokens("557057:x")
  reply { kind = err.kind, code = err.code, attempts = err.attempts, message = err.message }
end

return M
