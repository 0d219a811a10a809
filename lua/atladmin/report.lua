-- atladmin.report: the command's output formats: aligned tables for people, JSON and CSV
-- (stable, documented in the README) for pipes.
local M = {}

local ARRAY = {}

--- array(t): mark t to be written as a JSON array even when empty.
function M.array(t) return setmetatable(t or {}, ARRAY) end

--- null: written as JSON null.
M.null = setmetatable({}, { __tostring = function() return "null" end })

local escapes = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n",
                  ["\r"] = "\\r", ["\t"] = "\\t" }

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return escapes[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function json_number(n)
  if n ~= n or n == math.huge or n == -math.huge then return "null" end
  if n == math.floor(n) and n > -2 ^ 53 and n < 2 ^ 53 then return string.format("%d", n) end
  return string.format("%.17g", n)
end

local function encode(v, out, indent, depth)
  local t = type(v)
  if v == nil or v == M.null then
    out[#out + 1] = "null"
  elseif t == "boolean" then
    out[#out + 1] = tostring(v)
  elseif t == "number" then
    out[#out + 1] = json_number(v)
  elseif t == "string" then
    out[#out + 1] = json_string(v)
  elseif t == "table" then
    if depth > 64 then error("atladmin.report.json: nesting too deep", 0) end
    local pad = indent and ("\n" .. indent:rep(depth + 1)) or ""
    local close = indent and ("\n" .. indent:rep(depth)) or ""
    local sep = indent and ": " or ":"
    if getmetatable(v) == ARRAY or v[1] ~= nil then
      if #v == 0 then out[#out + 1] = "[]"; return end
      out[#out + 1] = "["
      for i = 1, #v do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = pad
        encode(v[i], out, indent, depth + 1)
      end
      out[#out + 1] = close .. "]"
    else
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = tostring(k) end
      table.sort(keys)
      if #keys == 0 then out[#out + 1] = "{}"; return end
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = pad .. json_string(k) .. sep
        local val = v[k]
        if val == nil then val = v[tonumber(k)] end
        encode(val, out, indent, depth + 1)
      end
      out[#out + 1] = close .. "}"
    end
  else
    out[#out + 1] = json_string(tostring(v))
  end
end

--- json(value [, indent]) -> text; object keys sorted so the output is stable.
function M.json(value, indent)
  local out = {}
  encode(value, out, indent, 0)
  return table.concat(out)
end

--- csv_row(values) -> one RFC 4180 line (CRLF-free: "\n" ends it); nil becomes an empty field.
function M.csv_row(values, n)
  local out = {}
  for i = 1, n or #values do
    local v = values[i]
    if v == nil or v == M.null then
      v = ""
    else
      v = tostring(v)
    end
    if v:find('[,"\r\n]') or v:match("^%s") or v:match("%s$") then
      v = '"' .. v:gsub('"', '""') .. '"'
    end
    out[i] = v
  end
  return table.concat(out, ",") .. "\n"
end

-- Display width of a UTF-8 string (code points; good enough for names and labels).
local function width(s)
  local _, n = s:gsub("[^\128-\191]", "")
  return n
end

local function clip(s, max)
  if not max or width(s) <= max then return s end
  local out, n = {}, 0
  for ch in s:gmatch("[%z\1-\127\194-\244][\128-\191]*") do
    if n >= max - 3 then break end
    out[#out + 1] = ch
    n = n + 1
  end
  return table.concat(out) .. "..."
end

--- table_text(headers, rows [, max_widths]) -> aligned columns separated by two spaces.
function M.table_text(headers, rows, max_widths)
  local ncol = #headers
  local cells, widths = {}, {}
  for c = 1, ncol do widths[c] = width(headers[c]) end
  for r, row in ipairs(rows) do
    cells[r] = {}
    for c = 1, ncol do
      local s = row[c]
      s = (s == nil or s == M.null) and "-" or tostring(s)
      s = s:gsub("[%c]", " ")
      s = clip(s, max_widths and max_widths[c])
      cells[r][c] = s
      if width(s) > widths[c] then widths[c] = width(s) end
    end
  end
  local lines = {}
  local function line(vals)
    local parts = {}
    for c = 1, ncol do
      local s = vals[c]
      parts[c] = c < ncol and (s .. string.rep(" ", widths[c] - width(s))) or s
    end
    lines[#lines + 1] = (table.concat(parts, "  "):gsub("%s+$", ""))
  end
  line(headers)
  for _, row in ipairs(cells) do line(row) end
  return table.concat(lines, "\n") .. "\n"
end

return M
