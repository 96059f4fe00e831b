-- Sweeper: move on conversations whose head can no longer end by itself (worker/sweeper.py).
-- Runs in one worker at a time (a lease), over at most ARGV[3] conversations per call, from
-- the registry <prefix>:convs (conversation key -> first enqueue ms), from rank ARGV[2]
-- (entries removed meanwhile shift the ranks: what a pass skips, the next one sees).
-- For each conversation's head (its oldest pending intent):
--   record gone or already ended       -> drop it from the conversation, wake the next
--   job gone and not running           -> reported as lost (the caller ends it with an outcome)
--   job present but not queued/running -> queued again now
--   deadline long past, still pending  -> queued again now (the worker expires it)
-- An empty conversation leaves the registry.
-- KEYS[1] registry, KEYS[2] ARQ queue. ARGV[1] prefix, ARGV[2] first rank,
-- ARGV[3] batch size, ARGV[4] grace ms after a deadline.
-- -> {next rank ('' when done), lost keys..., '|', 'looked_at,dropped,requeued,emptied'}
local now = now_ms()
local prefix = ARGV[1]
local first, batch = tonumber(ARGV[2]), tonumber(ARGV[3])
local rows = redis.call('ZRANGE', KEYS[1], first, first + batch - 1)
local lost, dropped, requeued, emptied = {}, 0, 0, 0
for _, conv in ipairs(rows) do
  local head = redis.call('ZRANGE', conv, 0, 0)[1]
  if not head then
    redis.call('ZREM', KEYS[1], conv)
    emptied = emptied + 1
  else
    local rec = key_record(prefix, head)
    local job_id = redis.call('HGET', rec, 'job_id')
    if not job_id or redis.call('HEXISTS', rec, 'outcome') == 1 then
      redis.call('ZREM', conv, head)
      dropped = dropped + 1
      dropped = dropped + wake_next(prefix, conv, KEYS[2], now)
    elseif redis.call('EXISTS', key_arq_in_progress(prefix, head)) == 0 then
      local deadline = tonumber(redis.call('HGET', rec, 'deadline') or '0')
      if redis.call('EXISTS', key_arq_job(prefix, head)) == 0 then
        lost[#lost + 1] = head
      elseif not redis.call('ZSCORE', KEYS[2], job_id)
          or (deadline > 0 and now > deadline + tonumber(ARGV[4])) then
        redis.call('ZADD', KEYS[2], now, job_id)
        requeued = requeued + 1
      end
    end
  end
end
local cursor = ''
if #rows >= batch then cursor = tostring(first + batch - emptied) end
local reply = {cursor}
for _, key in ipairs(lost) do reply[#reply + 1] = key end
reply[#reply + 1] = '|'
reply[#reply + 1] = #rows .. ',' .. dropped .. ',' .. requeued .. ',' .. emptied
return reply
