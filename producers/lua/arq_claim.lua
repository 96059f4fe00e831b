-- ARQ's claim of a poll's due jobs (worker/arq_worker.py `GuardedWorker.start_jobs`) in one
-- round trip, where ARQ spends four per job (WATCH, EXISTS, ZSCORE, MULTI/PSETEX/EXEC) to
-- make the same check atomic: a job is claimed when no worker holds it (its in-progress
-- key), it is still queued and it is due on Redis's clock; its in-progress key is then set
-- as ARQ sets it. With a fetch, each claimed job is also read and its try counted as ARQ's
-- `run_job` would next (GET, INCR, EXPIRE: worker/prefetch.py), in this same round trip.
-- KEYS[1] the queue. ARGV[1] ARQ's in-progress key prefix, ARGV[2] that key's TTL (ms),
-- ARGV[3] how many jobs this worker may start, ARGV[4] ARQ's job key prefix ('' = no
-- fetch), ARGV[5] its try counter's key prefix, ARGV[6] the counter's TTL (s), ARGV[7..]
-- job ids in the poll's order.
-- -> {requeued, job id, score, job, try, ...}: how many jobs scored -inf (a broken writer's
-- ZADD; ARQ cannot run them) were queued again due now instead, then the claimed jobs (job
-- and try false without a fetch or when it failed: a job key of the wrong type, a counter
-- that is no number; ARQ's own fetch then meets that failure).
local function fetch(id)
  local job = redis.pcall('GET', ARGV[4] .. id)
  if type(job) == 'table' and job.err then return false, false end
  local tries = redis.pcall('INCR', ARGV[5] .. id)
  if type(tries) == 'table' and tries.err then return false, false end
  redis.call('EXPIRE', ARGV[5] .. id, ARGV[6])
  return job or false, tries
end

local now = now_ms()
local claimed = {0}
local room = tonumber(ARGV[3])
for i = 7, #ARGV do
  if room <= 0 then break end
  local id = ARGV[i]
  local lease = ARGV[1] .. id
  if redis.call('EXISTS', lease) == 0 then
    local raw = redis.call('ZSCORE', KEYS[1], id)
    local score = raw and tonumber(raw)
    if raw and (score == nil or score == -math.huge) then
      redis.call('ZADD', KEYS[1], 'XX', now, id)
      claimed[1] = claimed[1] + 1
    elseif score and score <= now then
      redis.call('SET', lease, '1', 'PX', ARGV[2])
      local job, tries = false, false
      if ARGV[4] ~= '' then job, tries = fetch(id) end
      claimed[#claimed + 1] = id
      claimed[#claimed + 1] = raw
      claimed[#claimed + 1] = job
      claimed[#claimed + 1] = tries
      room = room - 1
    end
  end
end
return claimed
