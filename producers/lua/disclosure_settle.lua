-- Disclosure: it was sent (Graph answered with its mid, or its echo reconciled it). Kept in
-- the record (it goes with the intent's outcome), its mid claimed (its echo is ours, not a
-- human's), and the conversation's state moved on.
-- KEYS[1] record. ARGV[1] prefix, ARGV[2] mid ('' if none), ARGV[3] the conversation's user.
-- -> 1 settled now, 0 it was already
if redis.call('HGET', KEYS[1], 'd_state') == 'sent' then return 0 end
local now = now_ms()
redis.call('HSET', KEYS[1], 'd_state', 'sent', 'd_mid', ARGV[2], 'd_sent_ms', now)
redis.call('HDEL', KEYS[1], 'd_lease_until')
local account = redis.call('HGET', KEYS[1], 'account') or ''
if ARGV[3] ~= '' and ARGV[2] ~= '' then
  local claims = key_echo_claims(ARGV[1], account, ARGV[3])
  redis.call('ZADD', claims, now, ARGV[2])
  redis.call('ZREMRANGEBYRANK', claims, 0, -ECHOES_KEPT - 1)
  redis.call('PEXPIRE', claims, ECHO_RETENTION_MS)
end
conversation_sent(ARGV[1], account, ARGV[3], true, now)
return 1
