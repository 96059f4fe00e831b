-- Crash recovery in seconds: take back the jobs of workers whose heartbeat stopped
-- (worker/fleet.py `Fleet.reclaim`, run by every live worker each heartbeat; idempotent).
-- ARQ keeps a running job hidden behind its in-progress key until that key expires (job
-- timeout + 10 s); a dead worker's key is deleted here so the next poll runs the job again,
-- and the journal's send lease it held is lapsed, so the re-run sees an interrupted send
-- (ambiguous: resent and counted, or reconciled by its echo), never a busy one.
-- A paused worker (SIGSTOP) that wakes up finds its jobs reclaimed: its send, if it goes
-- out, is the one the re-run counted as ambiguous; its journal writes check the owner.
-- KEYS: none. ARGV[1] prefix, ARGV[2] heartbeat staleness ms.
-- -> {workers reclaimed, jobs reclaimed}
local prefix, stale_ms = ARGV[1], tonumber(ARGV[2])
local now = now_ms()
local workers = key_workers(prefix)
local queue = key_queue(prefix)
local dead = redis.call('ZRANGEBYSCORE', workers, '-inf', '(' .. (now - stale_ms))
local jobs = 0
for _, worker in ipairs(dead) do
  local running = key_running(prefix, worker)
  local held = redis.call('HGETALL', running)
  for i = 1, #held, 2 do
    local key, owner = held[i], held[i + 1]
    redis.call('DEL', key_arq_in_progress(prefix, key))
    local record = key_record(prefix, key)
    for _, p in ipairs({'', 'd_'}) do
      local f = redis.call('HMGET', record, p .. 'state', p .. 'owner')
      if f[1] == 'sending' and f[2] == owner then
        redis.call('HSET', record, p .. 'lease_until', now)
      end
    end
    -- ARQ left its job id queued while it ran; should it be missing, queue it now.
    local job_id = key_job_id(prefix, key)
    if redis.call('EXISTS', key_arq_job(prefix, key)) == 1
        and not redis.call('ZSCORE', queue, job_id) then
      redis.call('ZADD', queue, now, job_id)
    end
    jobs = jobs + 1
  end
  redis.call('DEL', running)
  redis.call('ZREM', workers, worker)
end
return {#dead, jobs}
