-- Reconcile an ambiguous send with its echo (worker/job.py, policy `reconcile`): the first
-- echo in the conversation since the send started whose content fingerprint matches and that
-- no other send has claimed is claimed for this one, atomically, so one echo settles at most
-- one send (sends that Graph confirmed claim their own mid in journal_finish). The claim is
-- also written into the claimer's record, so a re-run of the same send (its worker killed
-- between the claim and the outcome) finds its own echo again instead of resending.
-- KEYS[1] echo index, KEYS[2] claims, KEYS[3] the claimer's record ('' : none).
-- ARGV[1] since ms, ARGV[2] fingerprint, ARGV[3] the record field holding the claim.
-- -> the echo's mid, or false
local now = now_ms()
local mine = false
if KEYS[3] ~= '' and ARGV[3] then
  mine = redis.call('HGET', KEYS[3], ARGV[3])
end
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf')) do
  local ok, echo = pcall(cjson.decode, member)
  if ok and type(echo) == 'table' and echo['fp'] == ARGV[2] and type(echo['mid']) == 'string' then
    if mine and mine == echo['mid'] then return echo['mid'] end
    if not redis.call('ZSCORE', KEYS[2], echo['mid']) then
      redis.call('ZADD', KEYS[2], now, echo['mid'])
      redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -ECHOES_KEPT - 1)
      redis.call('PEXPIRE', KEYS[2], ECHO_RETENTION_MS)
      if KEYS[3] ~= '' and redis.call('EXISTS', KEYS[3]) == 1 then
        redis.call('HSET', KEYS[3], ARGV[3], echo['mid'])
      end
      return echo['mid']
    end
  end
end
return false
