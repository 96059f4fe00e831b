-- ig-outbound atomic enqueue: claim the idempotency key, write the ARQ job (JSON), queue it.
-- One round trip; the documented way for producers in any language (docs/producers.md).
-- `ig-outbound enqueue-script` prints the whole script (generated prelude, gcra.lua, this).
--
-- Order: intents of one conversation (account, recipient) are queued one at a time; the
-- others wait in <prefix>:conv:<account>:<recipient> and the worker queues the next when one
-- ends. Rate: a conversation head due now is queued at its reserved GCRA slot for its
-- account and rate class, so one account's backlog never hides another account's intents.
-- Keys under <prefix> other than KEYS[1..4] are derived with the prelude's key builders (not
-- Redis Cluster safe, like ARQ).
--
-- KEYS[1] record   <prefix>:idem:<key>        (hash: idempotency record + send journal)
-- KEYS[2] job      arq:job:<prefix>:<key>     (string: the ARQ job, JSON)
-- KEYS[3] queue    <prefix>:queue             (zset: job ids by run-at ms)
-- KEYS[4] accounts <prefix>:accounts          (set: account ids the fleet has tokens for)
-- ARGV[1] intent JSON (the exact bytes; their SHA-1 is the content digest)
-- ARGV[2] idempotency key     ARGV[3] account id
-- ARGV[4] run-at ms (0 = now) ARGV[5] record retention ms   ARGV[6] job TTL ms
-- ARGV[7] job id              ARGV[8] job name            ARGV[9] key prefix
-- ARGV[10] deadline ms (the intent's not_after, or now + the default deadline)
-- Returns {status, detail}: queued | duplicate | conflict | unknown_account | invalid.
local ok, intent = pcall(cjson.decode, ARGV[1])
if not ok or type(intent) ~= 'table' then
  return {'invalid', 'intent is not a JSON object'}
end
if intent['idempotency_key'] ~= ARGV[2] then
  return {'invalid', 'idempotency_key in the intent differs from the key argument'}
end
if intent['account_id'] ~= ARGV[3] then
  return {'invalid', 'account_id in the intent differs from the account argument'}
end
local digest = redis.sha1hex(ARGV[1])
local existing = redis.call('HGET', KEYS[1], 'digest')
if existing then
  if existing == digest then
    return {'duplicate', redis.call('HGET', KEYS[1], 'state') or 'queued'}
  end
  return {'conflict', existing}
end
if redis.call('SISMEMBER', KEYS[4], ARGV[3]) == 0 then
  return {'unknown_account', ARGV[3]}
end
local now = now_ms()
local run_at = tonumber(ARGV[4])
if run_at == nil or run_at < now then run_at = now end
local prefix = ARGV[9]
local account = ARGV[3]

-- The conversation, for ordering.
local r = intent['recipient']
local rkey, private_reply = nil, false
if type(r) == 'table' then
  if type(r['id']) == 'string' then rkey = RECIPIENT_ID_PREFIX .. r['id']
  elseif type(r['comment_id']) == 'string' then
    rkey, private_reply = RECIPIENT_COMMENT_PREFIX .. r['comment_id'], true
  end
end
local conv = ''
local is_head = true
if rkey then
  conv = key_conversation(prefix, account, rkey)
  is_head = redis.call('ZCARD', conv) == 0
  redis.call('ZADD', conv, redis.call('INCR', key_seq(prefix)), ARGV[2])
  redis.call('PEXPIRE', conv, ARGV[5])
end

-- A head due now goes at its reserved slot (workers publish the spacing in <prefix>:rates).
local score = run_at
if is_head and run_at == now then
  local content = intent['content']
  local kind = type(content) == 'table' and content['kind'] or nil
  local class = rate_class(kind, private_reply)
  local rates = key_rates(prefix)
  local interval = tonumber(redis.call('HGET', rates, class .. '_interval_ms') or '0')
  if interval and interval > 0 then
    local burst = tonumber(redis.call('HGET', rates, class .. '_burst') or '1')
    local pause = math.max(redis.call('PTTL', key_pause(prefix, account)), 0)
    score = reserve(key_rate_tat(prefix, account, class), interval, burst, now + pause)
  end
end

redis.call('HSET', KEYS[1], 'digest', digest, 'state', 'queued', 'job_id', ARGV[7],
  'account', account, 'enqueued_ms', now, 'attempts', 0, 'conv', conv, 'run_at', run_at)
redis.call('PEXPIRE', KEYS[1], ARGV[5])
local job = '{"t":null,"f":' .. cjson.encode(ARGV[8]) .. ',"a":[' .. ARGV[1] ..
  '],"k":{},"et":' .. string.format('%d', now) .. '}'
redis.call('SET', KEYS[2], job, 'PX', ARGV[6])
if is_head then
  redis.call('ZADD', KEYS[3], score, ARGV[7])
  return {'queued', ARGV[7]}
end
-- Parked at its deadline, so it still ends `expired` on time if the earlier intents take
-- longer; the worker queues it sooner when they end.
local deadline = tonumber(ARGV[10])
if deadline and deadline > now then
  redis.call('ZADD', KEYS[3], deadline + 1, ARGV[7])
end
return {'queued', ARGV[7], 'after_earlier_intents'}
