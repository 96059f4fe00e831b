-- Journal: the send definitely did not reach Graph (or Graph refused it): leave `sending`.
-- KEYS[1] record. ARGV[1] owner, ARGV[2] '1' to count a transient failure.
-- -> transient failures so far (0 when the record is gone: it is never re-created here)
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1]
   and redis.call('HGET', KEYS[1], 'state') == 'sending' then
  redis.call('HSET', KEYS[1], 'state', 'retrying')
  redis.call('HDEL', KEYS[1], 'lease_until')
end
if ARGV[2] == '1' then
  return redis.call('HINCRBY', KEYS[1], 'failures', 1)
end
return tonumber(redis.call('HGET', KEYS[1], 'failures') or '0')
