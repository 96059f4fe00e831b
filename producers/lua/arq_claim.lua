-- ARQ's claim of a poll's due jobs (worker/arq_worker.py `GuardedWorker.start_jobs`) in one
-- round trip, where ARQ spends four per job (WATCH, EXISTS, ZSCORE, MULTI/PSETEX/EXEC) to
-- make the same check atomic: a job is claimed when no worker holds it (its in-progress
-- key), it is still queued and it is due on Redis's clock; its in-progress key is then set
-- as ARQ sets it.
-- KEYS[1] the queue. ARGV[1] ARQ's in-progress key prefix, ARGV[2] that key's TTL (ms),
-- ARGV[3] how many jobs this worker may start, ARGV[4..] job ids in the poll's order.
-- -> {job id, score, ...} of the claimed jobs. A job scored -inf (a broken writer's ZADD;
-- ARQ cannot run it) is queued again due now instead.
local now = now_ms()
local claimed = {}
local room = tonumber(ARGV[3])
for i = 4, #ARGV do
  if room <= 0 then break end
  local id = ARGV[i]
  local lease = ARGV[1] .. id
  if redis.call('EXISTS', lease) == 0 then
    local raw = redis.call('ZSCORE', KEYS[1], id)
    local score = raw and tonumber(raw)
    if raw and (score == nil or score == -math.huge) then
      redis.call('ZADD', KEYS[1], 'XX', now, id)
    elseif score and score <= now then
      redis.call('SET', lease, '1', 'PX', ARGV[2])
      claimed[#claimed + 1] = id
      claimed[#claimed + 1] = raw
      room = room - 1
    end
  end
end
return claimed
