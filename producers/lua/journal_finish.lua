-- Journal: exactly one terminal outcome per intent, published atomically with the state
-- change; then the conversation's next intent (if any) is queued: order is kept by queueing
-- one at a time.
-- KEYS[1] record, KEYS[2] outcomes stream, KEYS[3] dead-letter stream, KEYS[4] ARQ queue.
-- ARGV[1] status, ARGV[2] outcome JSON, ARGV[3] stream maxlen, ARGV[4] record retention ms,
-- ARGV[5] key, ARGV[6] '1' = dead-letter it, ARGV[7] the intent (raw JSON) for the DLQ,
-- ARGV[8] key prefix, ARGV[9] dead-letter stream maxlen, ARGV[10] the sent message's mid
-- ('' if none), ARGV[11] the recipient's IGSID as Graph answered it ('' if none), ARGV[12]
-- '1' if the conversation's disclosure state is kept (the account discloses), ARGV[13] the
-- worker id whose running list (<prefix>:running:<worker>) the job leaves ('' = none),
-- ARGV[14] '1' = the caller is the intent's own ARQ job, which ends here: its job, lease
-- and try counter go and it leaves the queue, as ARQ's own finish would do one round trip
-- later (the worker then skips that: worker/arq_worker.py).
-- -> 1 published, 0 already had an outcome
if ARGV[13] and ARGV[13] ~= '' then
  redis.call('HDEL', key_running(ARGV[8], ARGV[13]), ARGV[5])
end
if ARGV[14] == '1' then
  redis.call('DEL', key_arq_job(ARGV[8], ARGV[5]), key_arq_in_progress(ARGV[8], ARGV[5]),
    key_arq_retry(ARGV[8], ARGV[5]))
  redis.call('ZREM', KEYS[4], key_job_id(ARGV[8], ARGV[5]))
end
local rec = redis.call('HMGET', KEYS[1], 'outcome', 'account', 'win_user', 'win_comment',
  'auto', 'conv')
if rec[1] then return 0 end
-- Redis's clock only where a time is written (a plain sent outcome needs none).
local now = nil
local function clock()
  if not now then now = now_ms() end
  return now
end
-- (A lease of 0 is none: one write instead of a write and an HDEL.)
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'outcome', ARGV[2], 'lease_until', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'key', ARGV[5], 'status', ARGV[1],
  'outcome', ARGV[2])
if ARGV[6] == '1' then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[9], '*', 'key', ARGV[5], 'status', ARGV[1],
    'outcome', ARGV[2], 'intent', ARGV[7])
end
if ARGV[1] == 'sent' then
  local account = rec[2] or ''
  local user = ARGV[11] ~= '' and ARGV[11] or (rec[3] or '')
  if rec[4] and rec[4] ~= '' then
    -- One private reply per comment: the next one is refused at enqueue and before sending.
    local comment = key_comment(ARGV[8], rec[4])
    redis.call('HSET', comment, 'replied', '1')
    redis.call('PEXPIRE', comment, FACTS_TTL_MS)
  end
  if ARGV[10] ~= '' and user ~= '' and redis.call('EXISTS', key_gateway_alive(ARGV[8])) == 1 then
    -- Its echo (echoes flow while a gateway runs) is this send's: never the proof that
    -- another (ambiguous) send arrived, nor a sign that a human wrote.
    local claims = key_echo_claims(ARGV[8], account, user)
    redis.call('ZADD', claims, clock(), ARGV[10])
    redis.call('ZREMRANGEBYRANK', claims, 0, -ECHOES_KEPT - 1)
    redis.call('PEXPIRE', claims, ECHO_RETENTION_MS)
  end
  if ARGV[12] == '1' then conversation_sent(ARGV[8], account, user, rec[5] ~= '0', clock()) end
end
local conv = rec[6]
if conv and conv ~= '' then
  local first = redis.call('ZRANGE', conv, 0, 1)
  redis.call('ZREM', conv, ARGV[5])
  if first[1] == ARGV[5] and not first[2] then
    -- It was the only one: nothing to wake, and the conversation leaves the registry.
    redis.call('ZREM', key_conversations(ARGV[8]), conv)
    return 1
  end
  -- Only the head's end lets the next one go (a parked one may expire before its turn).
  if first[1] == ARGV[5] then wake_next(ARGV[8], conv, KEYS[4], clock()) end
  if redis.call('ZCARD', conv) == 0 then
    redis.call('ZREM', key_conversations(ARGV[8]), conv)
  end
end
return 1
