-- Journal: the request left but no answer came (reconcile policy): `unconfirmed` until settled.
-- KEYS[1] record. ARGV[1] owner, ARGV[2] the phase's field prefix ('' or 'd_').
-- -> 1 marked, 0 not this owner's send any more
local p = ARGV[2]
if redis.call('HGET', KEYS[1], p .. 'owner') == ARGV[1]
   and redis.call('HGET', KEYS[1], p .. 'state') == 'sending' then
  redis.call('HSET', KEYS[1], p .. 'state', 'unconfirmed', p .. 'unconfirmed_since', now_ms())
  redis.call('HDEL', KEYS[1], p .. 'lease_until')
  return 1
end
return 0
