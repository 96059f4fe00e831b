-- Journal: the request left but no answer came (reconcile policy): `unconfirmed` until settled.
-- KEYS[1] record. ARGV[1] owner. -> 1 marked, 0 not this owner's send any more
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1]
   and redis.call('HGET', KEYS[1], 'state') == 'sending' then
  redis.call('HSET', KEYS[1], 'state', 'unconfirmed', 'unconfirmed_since', now_ms())
  redis.call('HDEL', KEYS[1], 'lease_until')
  return 1
end
return 0
