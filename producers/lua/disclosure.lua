-- Library: does this automated message need the bot disclosure first? (worker/disclosure.py)
-- "at the beginning of any conversation or message thread, after a significant lapse of
-- time, or when a chat moves from human interaction to automated experience" (fact sheet §7).
-- Per conversation, <prefix>:disc:<account>:<user> keeps when the last automated and the
-- last human-written message went; an echo of a message no send of ours claimed (someone
-- wrote in the Instagram app) also counts as human.
-- `disclosure_trigger(prefix, account, user, lapse_ms, now)` -> trigger or nil
local function disclosure_trigger(prefix, account, user, lapse_ms, now)
  if user == '' then return 'conversation_start' end  -- whose conversation is unknown
  local state = redis.call('HMGET', key_disclosure(prefix, account, user), 'last_auto_ms',
    'last_human_ms')
  local last_auto = tonumber(state[1])
  if not last_auto then return 'conversation_start' end
  if now - last_auto > lapse_ms then return 'lapse' end
  if (tonumber(state[2]) or 0) > last_auto then return 'human_handover' end
  local claims = key_echo_claims(prefix, account, user)
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', key_echoes(prefix, account, user),
      '(' .. last_auto, '+inf')) do
    local ok, echo = pcall(cjson.decode, member)
    if ok and type(echo) == 'table' and type(echo['mid']) == 'string'
        and not redis.call('ZSCORE', claims, echo['mid']) then
      return 'human_handover'
    end
  end
  return nil
end

-- A message of ours went: the conversation's disclosure state moves on.
local function conversation_sent(prefix, account, user, automated, now)
  if user == '' then return end
  local key = key_disclosure(prefix, account, user)
  redis.call('HSET', key, automated and 'last_auto_ms' or 'last_human_ms', now)
  redis.call('PEXPIRE', key, FACTS_TTL_MS)
end
