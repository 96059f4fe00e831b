-- Journal: the send definitely did not reach Graph (or Graph refused it): leave `sending`.
-- KEYS[1] record. ARGV[1] owner, ARGV[2] '1' to count a transient failure, ARGV[3] the
-- phase's field prefix ('' the message, 'd_' the disclosure).
-- -> transient failures so far (0 when the record is gone: it is never re-created here)
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local p = ARGV[3]
if redis.call('HGET', KEYS[1], p .. 'owner') == ARGV[1]
   and redis.call('HGET', KEYS[1], p .. 'state') == 'sending' then
  redis.call('HSET', KEYS[1], p .. 'state', 'retrying')
  redis.call('HDEL', KEYS[1], p .. 'lease_until')
end
if ARGV[2] == '1' then
  return redis.call('HINCRBY', KEYS[1], p .. 'failures', 1)
end
return tonumber(redis.call('HGET', KEYS[1], p .. 'failures') or '0')
