-- Library: argument checks shared by the account registry scripts.
local function account_args(prefix, account)
  if not string.find(prefix, '^[%w_%.%-]+$') or #prefix > 32 then
    return redis.error_reply('the key prefix must be 1-32 characters of [A-Za-z0-9_.-]')
  end
  if not string.find(account, '^%d+$') or #account > 64 then
    return redis.error_reply('the account id must be 1-64 digits')
  end
  return nil
end

-- A whole number of milliseconds (finite, non-negative integer), or nil.
local function whole_ms(text)
  if type(text) ~= 'string' then return nil end
  local n = tonumber(text)
  if not n or n ~= n or n == math.huge or n < 0 or n ~= math.floor(n) then return nil end
  return n
end

-- A pause set because the account needs a new token (not Meta's throttling) ends with it.
local REAUTH_PAUSE = 'needs_reauth'
local function release_reauth_pause(prefix, account)
  local pause = key_pause(prefix, account)
  if redis.call('GET', pause) == REAUTH_PAUSE then redis.call('DEL', pause) end
end

local function registry_changed(prefix)
  redis.call('INCR', key_accounts_version(prefix))
end
