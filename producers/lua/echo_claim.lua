-- Reconcile an ambiguous send with its echo (worker/job.py, policy `reconcile`): the first
-- echo in the conversation since the send started whose content fingerprint matches and that
-- no other send has claimed is claimed for this one, atomically, so one echo settles at most
-- one send (sends that Graph confirmed claim their own mid in journal_finish).
-- KEYS[1] echo index, KEYS[2] claims. ARGV[1] since ms, ARGV[2] fingerprint.
-- -> the echo's mid, or false
local now = now_ms()
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf')) do
  local ok, echo = pcall(cjson.decode, member)
  if ok and type(echo) == 'table' and echo['fp'] == ARGV[2] and type(echo['mid']) == 'string'
      and not redis.call('ZSCORE', KEYS[2], echo['mid']) then
    redis.call('ZADD', KEYS[2], now, echo['mid'])
    redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -ECHOES_KEPT - 1)
    redis.call('PEXPIRE', KEYS[2], ECHO_RETENTION_MS)
    return echo['mid']
  end
end
return false
