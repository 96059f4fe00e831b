-- Journal: exactly one terminal outcome per intent, published atomically with the state
-- change; then the conversation's next intent (if any) is queued: order is kept by queueing
-- one at a time.
-- KEYS[1] record, KEYS[2] outcomes stream, KEYS[3] dead-letter stream, KEYS[4] ARQ queue.
-- ARGV[1] status, ARGV[2] outcome JSON, ARGV[3] stream maxlen, ARGV[4] record retention ms,
-- ARGV[5] key, ARGV[6] '1' = dead-letter it, ARGV[7] the intent (raw JSON) for the DLQ,
-- ARGV[8] key prefix.
-- -> 1 published, 0 already had an outcome
if redis.call('HEXISTS', KEYS[1], 'outcome') == 1 then return 0 end
local now = now_ms()
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'outcome', ARGV[2])
redis.call('HDEL', KEYS[1], 'lease_until')
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'key', ARGV[5], 'status', ARGV[1],
  'outcome', ARGV[2])
if ARGV[6] == '1' then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 'key', ARGV[5], 'status', ARGV[1],
    'outcome', ARGV[2], 'intent', ARGV[7])
end
local conv = redis.call('HGET', KEYS[1], 'conv')
if conv and conv ~= '' then
  local was_head = redis.call('ZRANGE', conv, 0, 0)[1] == ARGV[5]
  redis.call('ZREM', conv, ARGV[5])
  -- Only the head's end lets the next one go (a parked one may expire before its turn).
  for _ = 1, (was_head and 100 or 0) do
    local nxt = redis.call('ZRANGE', conv, 0, 0)[1]
    if not nxt then break end
    local rec = key_record(ARGV[8], nxt)
    local job_id = redis.call('HGET', rec, 'job_id')
    if job_id and redis.call('HEXISTS', rec, 'outcome') == 0 then
      local run_at = tonumber(redis.call('HGET', rec, 'run_at') or '0')
      redis.call('ZADD', KEYS[4], math.max(now, run_at), job_id)
      break
    end
    redis.call('ZREM', conv, nxt)  -- gone or already ended: skip it
  end
end
return 1
