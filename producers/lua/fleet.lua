-- The fleet's state in one call, for the one worker that serves the fleet's metrics
-- (worker/fleet_metrics.py) and for `ig-outbound top`. Reads only (a dead worker's entry
-- stays until a live worker reclaims its jobs: reclaim.lua).
-- KEYS: none. ARGV[1] prefix, ARGV[2] heartbeat staleness ms.
-- -> JSON {now_ms, ready, scheduled, oldest_ready_ms, dead_letters, workers, paused: {cause:
--    n}, slowed, counters: {field: n}}
local prefix, stale_ms = ARGV[1], tonumber(ARGV[2])
local now = now_ms()
local queue = key_queue(prefix)
local oldest = redis.call('ZRANGEBYSCORE', queue, '-inf', now, 'WITHSCORES', 'LIMIT', 0, 1)
local workers = key_workers(prefix)
local paused, slowed = {}, 0
for _, account in ipairs(redis.call('SMEMBERS', key_accounts(prefix))) do
  local cause = redis.call('GET', key_pause(prefix, account))
  if cause then paused[cause] = (paused[cause] or 0) + 1 end
  slowed = slowed + redis.call('EXISTS', key_slow(prefix, account))
end
local counters = {}
local flat = redis.call('HGETALL', key_counters(prefix))
for i = 1, #flat, 2 do counters[flat[i]] = tonumber(flat[i + 1]) end
-- cjson writes an empty table as [] : the caller reads either as empty.
return cjson.encode({
  now_ms = now,
  ready = redis.call('ZCOUNT', queue, '-inf', now),
  scheduled = redis.call('ZCOUNT', queue, '(' .. now, '+inf'),
  oldest_ready_ms = oldest[2] and tonumber(oldest[2]) or cjson.null,
  dead_letters = redis.call('XLEN', key_dead_letters(prefix)),
  workers = redis.call('ZCOUNT', workers, now - stale_ms, '+inf'),
  paused = paused,
  slowed = slowed,
  counters = counters,
})
