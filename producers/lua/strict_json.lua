-- Library: decode an intent as strictly as Python's json (the worker's parser) reads it.
-- Redis's cjson by default also takes hex numbers, nan/inf, `01`, `+1`, invalid UTF-8 and
-- nesting near 1000 levels; an intent the worker cannot read must be refused here, before
-- anything is written. cjson's own strict mode (switched on for this one decode and back,
-- so other scripts of this Redis see no change) refuses most of it; the rest (`1.`, bytes
-- that are not UTF-8) is checked here. (1e400 both read, as infinity; the intent model
-- refuses it, as it would from any producer.)
-- `strict_json_decode(text)` -> value, nil | nil, what is wrong
local function utf8_problem(s)
  local i = 1
  while true do
    i = string.find(s, '[\128-\255]', i)
    if not i then return nil end
    local c, c2 = string.byte(s, i, i + 1)
    local len = (c >= 0xC2 and c <= 0xDF and 2) or (c >= 0xE0 and c <= 0xEF and 3)
      or (c >= 0xF0 and c <= 0xF4 and 4) or nil
    if not len or not c2 or (c == 0xE0 and c2 < 0xA0) or (c == 0xED and c2 > 0x9F)
        or (c == 0xF0 and c2 < 0x90) or (c == 0xF4 and c2 > 0x8F) then
      return 'invalid UTF-8 at byte ' .. i
    end
    for k = 1, len - 1 do
      local cc = string.byte(s, i + k)
      if not cc or cc < 0x80 or cc > 0xBF then return 'invalid UTF-8 at byte ' .. i end
    end
    i = i + len
  end
end

-- `1.` (a number with a dot and no digit after it): cjson reads it, Python's json does not.
-- Dots are few (URLs, sentences): look at each; only a digit-dot-nondigit outside strings
-- counts, so the strings are taken out first, and only then.
local function trailing_dot(text)
  local i = string.find(text, '.', 1, true)
  while i do
    local before, after = string.byte(text, i - 1, i + 1)
    if before and before >= 48 and before <= 57 and not (after and after >= 48 and after <= 57) then
      local bare = string.gsub(string.gsub(text, '\\.', ''), '"[^"]*"', '""')
      return string.find(bare, '%d%.[^%d]') ~= nil or string.find(bare, '%d%.$') ~= nil
    end
    i = string.find(text, '.', i + 1, true)
  end
  return false
end

local function strict_json_decode(text)
  if string.find(text, '[\128-\255]') then
    local bad = utf8_problem(text)
    if bad then return nil, bad end
  end
  cjson.decode_invalid_numbers(false)
  cjson.decode_max_depth(MAX_INTENT_DEPTH)
  local ok, value = pcall(cjson.decode, text)
  cjson.decode_invalid_numbers(true)
  cjson.decode_max_depth(1000)
  if not ok then return nil, tostring(value) end
  if trailing_dot(text) then return nil, 'a number ends in a dot' end
  return value, nil
end
