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

-- A pause set because the account needs a new token (not Meta's throttling) ends with it,
-- and the account's waiting conversation heads (deferred by up to RETRY__ACCOUNT_PAUSE_S
-- while it waited) are due at once: the new token is used now, not a minute later. Only
-- the heads: the rest of each conversation follows them in order. Walks the registry of
-- conversations with pending intents once, for this rare event (a person adds a token).
local REAUTH_PAUSE = 'needs_reauth'
local function release_reauth_pause(prefix, account)
  local pause = key_pause(prefix, account)
  if redis.call('GET', pause) ~= REAUTH_PAUSE then return end
  local now, queue, cursor = now_ms(), key_queue(prefix), '0'
  -- Heads deferred for the pause are due by its end (+1 s); one due later waits for
  -- something else (not_before, a retry's backoff) and keeps its time.
  local paused_until = now + math.max(redis.call('PTTL', pause), 0) + 1000
  redis.call('DEL', pause)
  local mine = key_conversation(prefix, account, '*')
  repeat
    local page = redis.call('ZSCAN', key_conversations(prefix), cursor, 'MATCH', mine,
      'COUNT', 500)
    cursor = page[1]
    for i = 1, #page[2], 2 do
      local head = redis.call('ZRANGE', page[2][i], 0, 0)[1]
      local job_id = head and key_job_id(prefix, head)
      local due = job_id and tonumber(redis.call('ZSCORE', queue, job_id))
      if due and due > now and due <= paused_until then
        redis.call('ZADD', queue, now, job_id)
      end
    end
  until cursor == '0'
end

local function registry_changed(prefix)
  redis.call('INCR', key_accounts_version(prefix))
end
