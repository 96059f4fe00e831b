-- Library: queue the next pending intent of a conversation (after its head ended or was
-- dropped). Skips entries whose record is gone or already has an outcome.
-- `wake_next(prefix, conv, queue, now)` -> number of entries skipped
local function wake_next(prefix, conv, queue, now)
  local skipped = 0
  for _ = 1, 100 do
    local nxt = redis.call('ZRANGE', conv, 0, 0)[1]
    if not nxt then return skipped end
    local rec = key_record(prefix, nxt)
    local job_id = redis.call('HGET', rec, 'job_id')
    if job_id and redis.call('HEXISTS', rec, 'outcome') == 0 then
      local run_at = tonumber(redis.call('HGET', rec, 'run_at') or '0')
      redis.call('ZADD', queue, math.max(now, run_at), job_id)
      return skipped
    end
    redis.call('ZREM', conv, nxt)  -- gone or already ended: skip it
    skipped = skipped + 1
  end
  return skipped
end
