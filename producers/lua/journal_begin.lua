-- Journal: start a send (worker/journal.py `Journal.begin`): the intent's message, or the
-- bot disclosure before it (the same state machine in fields prefixed `d_`).
-- KEYS[1] record, KEYS[2] ARQ queue. ARGV[1] lease ms, ARGV[2] owner (job id + try), ARGV[3]
-- '1' = take over an ambiguous send (the policy decided to resend it), ARGV[4] the key,
-- ARGV[5] run-at ms to park the job at when it is not its conversation's turn, ARGV[6] the
-- key prefix, ARGV[7] the phase's field prefix ('' the message, 'd_' the disclosure).
-- -> {'go', attempts} | {'busy', ms_left} | {'ambiguous', attempts, last send start ms, ms
--    since it became ambiguous} | a preflight reply (preflight.lua) | {'done', state} when
--    the phase has ended (a disclosure `sent` or `none`)
local now = now_ms()
local p = ARGV[7]
local early = preflight(KEYS[1], KEYS[2], ARGV[4], ARGV[5], ARGV[6], p, now)
if early then return early end
local state = redis.call('HGET', KEYS[1], p .. 'state')
if p ~= '' and (state == 'sent' or state == 'none') then return {'done', state} end
if state == 'sending' or state == 'unconfirmed' then
  if state == 'sending' then
    local lease = tonumber(redis.call('HGET', KEYS[1], p .. 'lease_until') or '0')
    if lease > now then return {'busy', tostring(lease - now)} end
  end
  if ARGV[3] ~= '1' then
    local since = tonumber(redis.call('HGET', KEYS[1], p .. 'unconfirmed_since') or '0')
    if since == 0 then
      since = now
      redis.call('HSET', KEYS[1], p .. 'state', 'unconfirmed', p .. 'unconfirmed_since', now)
      redis.call('HDEL', KEYS[1], p .. 'lease_until')
    end
    return {'ambiguous', redis.call('HGET', KEYS[1], p .. 'attempts') or '0',
            redis.call('HGET', KEYS[1], p .. 'sending_since') or '0', tostring(now - since)}
  end
end
redis.call('HSET', KEYS[1], p .. 'state', 'sending', p .. 'lease_until',
  now + tonumber(ARGV[1]), p .. 'owner', ARGV[2], p .. 'sending_since', now)
redis.call('HDEL', KEYS[1], p .. 'unconfirmed_since')
return {'go', tostring(redis.call('HINCRBY', KEYS[1], p .. 'attempts', 1))}
