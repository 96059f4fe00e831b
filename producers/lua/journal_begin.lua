-- Journal: start a send (worker/journal.py `Journal.begin`).
-- KEYS[1] record, KEYS[2] ARQ queue. ARGV[1] lease ms, ARGV[2] owner (job id + try), ARGV[3]
-- '1' = take over an ambiguous send (the policy decided to resend it), ARGV[4] the key,
-- ARGV[5] run-at ms to park the job at when it is not its conversation's turn, ARGV[6] the
-- key prefix.
-- -> {'go', attempts} | {'done', state} | {'busy', ms_left} | {'not_its_turn', ''}
--  | {'gone', ''} (the record expired or was evicted: never re-created here, without a TTL)
--  | {'window_closed', reason} (a fresh send whose conversation window has closed)
--  | {'ambiguous', attempts, last send start ms, ms since it became ambiguous}
local now = now_ms()
if redis.call('EXISTS', KEYS[1]) == 0 then return {'gone', ''} end
if redis.call('HEXISTS', KEYS[1], 'outcome') == 1 then
  return {'done', redis.call('HGET', KEYS[1], 'state')}
end
local conv = redis.call('HGET', KEYS[1], 'conv')
if conv and conv ~= '' then
  local head = redis.call('ZRANGE', conv, 0, 0)[1]
  if head and head ~= ARGV[4] then
    -- Parked here, atomically with the head check, so the end of the intent before (which
    -- queues this job at once) always comes later and wins; the job then leaves the score
    -- alone. A park by ARQ's Retry(defer) would add to that score and lose the wake-up.
    local job_id = redis.call('HGET', KEYS[1], 'job_id')
    if job_id then redis.call('ZADD', KEYS[2], ARGV[5], job_id) end
    return {'not_its_turn', ''}
  end
end
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'sending' and state ~= 'unconfirmed' then
  -- A fresh send: is its window still open? (An unsettled one is the policy's to settle.)
  local w = redis.call('HMGET', KEYS[1], 'account', 'win_user', 'win_comment', 'win_human',
    'win_hint')
  local closed = window_refusal(ARGV[6], w[1] or '', w[2] or '', w[3] or '', w[4] == '1',
    tonumber(w[5] or '0') or 0, now)
  if closed then return {'window_closed', closed} end
end
if state == 'sending' or state == 'unconfirmed' then
  if state == 'sending' then
    local lease = tonumber(redis.call('HGET', KEYS[1], 'lease_until') or '0')
    if lease > now then return {'busy', tostring(lease - now)} end
  end
  if ARGV[3] ~= '1' then
    local since = tonumber(redis.call('HGET', KEYS[1], 'unconfirmed_since') or '0')
    if since == 0 then
      since = now
      redis.call('HSET', KEYS[1], 'state', 'unconfirmed', 'unconfirmed_since', now)
      redis.call('HDEL', KEYS[1], 'lease_until')
    end
    return {'ambiguous', redis.call('HGET', KEYS[1], 'attempts') or '0',
            redis.call('HGET', KEYS[1], 'sending_since') or '0', tostring(now - since)}
  end
end
redis.call('HSET', KEYS[1], 'state', 'sending', 'lease_until', now + tonumber(ARGV[1]),
  'owner', ARGV[2], 'sending_since', now)
redis.call('HDEL', KEYS[1], 'unconfirmed_since')
return {'go', tostring(redis.call('HINCRBY', KEYS[1], 'attempts', 1))}
