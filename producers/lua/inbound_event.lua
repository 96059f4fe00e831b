-- Record one inbound webhook event, exactly once (producers/inbound.py `record_inbound`):
-- de-duplicate (Meta redelivers; keyed on the event's identity), keep the window facts
-- (the user's last message; a comment), index an echo for reconciling ambiguous sends, and
-- publish the normalised event on the inbound stream for upstream consumers. Events of an
-- account no worker serves are not recorded.
-- ARGV[1] prefix, ARGV[2] account, ARGV[3] user, ARGV[4] type, ARGV[5] event id,
-- ARGV[6] timestamp ms, ARGV[7] event JSON, ARGV[8] '1' if it opens the user's window,
-- ARGV[9] comment id ('' if none), ARGV[10] echo index member ('' unless an echo),
-- ARGV[11] inbound stream maxlen, ARGV[12] de-duplication TTL ms.
-- -> 'recorded' | 'duplicate' | 'unknown_account'
local prefix, account, user, ts = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[6])
if redis.call('SISMEMBER', key_accounts(prefix), account) == 0 then return 'unknown_account' end
if not redis.call('SET', key_inbound_seen(prefix, account, ARGV[5]), '1', 'NX', 'PX',
    ARGV[12]) then
  return 'duplicate'
end
if ARGV[8] == '1' and user ~= '' then
  -- Webhooks arrive out of order: only a later message moves the window's start.
  local last = key_user_last_message(prefix, account, user)
  if tonumber(redis.call('GET', last) or '0') < ts then
    redis.call('SET', last, ts, 'PX', FACTS_TTL_MS)
  end
end
if ARGV[9] ~= '' then
  local comment = key_comment(prefix, ARGV[9])
  redis.call('HSET', comment, 'account', account, 'user', user)
  redis.call('HSETNX', comment, 'created_ms', ts)
  redis.call('PEXPIRE', comment, FACTS_TTL_MS)
end
if ARGV[10] ~= '' and user ~= '' then
  local echoes = key_echoes(prefix, account, user)
  redis.call('ZADD', echoes, ts, ARGV[10])
  redis.call('ZREMRANGEBYSCORE', echoes, '-inf', ts - ECHO_RETENTION_MS)
  redis.call('ZREMRANGEBYRANK', echoes, 0, -ECHOES_KEPT - 1)
  redis.call('PEXPIRE', echoes, ECHO_RETENTION_MS)
end
redis.call('XADD', key_inbound(prefix), 'MAXLEN', '~', ARGV[11], '*', 'type', ARGV[4],
  'account', account, 'user', user, 'timestamp_ms', ARGV[6], 'event_id', ARGV[5],
  'event', ARGV[7])
return 'recorded'
