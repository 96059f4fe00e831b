-- ig-outbound atomic enqueue: claim the idempotency key, write the ARQ job (JSON), queue it.
-- One round trip; the documented way for producers in any language (docs/producers.md).
-- `ig-outbound enqueue-script` prints the whole script (generated prelude, libraries, this).
--
-- Order: intents of one conversation (account, recipient) are queued one at a time; the
-- others wait in their conversation's sorted set and the worker queues the next when one
-- ends. Rate: a conversation head due now is queued at its reserved GCRA slot for its
-- account and rate class, so one account's backlog never hides another account's intents.
-- Every argument is checked before the first write: a refusal writes nothing.
--
-- KEYS[1] record   <prefix>:idem:<key>        (hash: idempotency record + send journal)
-- KEYS[2] job      arq:job:<prefix>:<key>     (string: the ARQ job, JSON)
-- KEYS[3] queue    <prefix>:queue             (zset: job ids by run-at ms)
-- KEYS[4] accounts <prefix>:accounts          (set: account ids the fleet has tokens for)
-- ARGV[1] intent JSON (the exact bytes; their SHA-1 is the content digest)
-- ARGV[2] idempotency key     ARGV[3] account id     ARGV[4] key prefix
-- ARGV[5] not_before, epoch ms (0: none)
-- ARGV[6] not_after (the deadline), epoch ms (0: now + ARGV[7])
-- ARGV[7] default deadline, ms from now     ARGV[8] record retention, ms
-- ARGV[9] window_hint, epoch ms (0: none): when the user last wrote, if the producer knows
-- Returns {status, detail[, extra]}: queued | duplicate | conflict | unknown_account |
--   account_removed |
-- window_closed (detail: `window_closed`, `window_unknown`, `private_reply_already_sent`) |
-- invalid (detail: what is wrong, extra: where: `intent`, `not_before`, `not_after`, ...).
-- Every answer is counted in <prefix>:counters (`enqueued`, `refused:<reason>`; the fleet's
-- metrics export them, worker/fleet_metrics.py) once the prefix and keys are known good.
local counted_prefix = nil
local function answer(reply)
  if counted_prefix then
    local field = 'enqueued'
    if reply[1] == 'window_closed' then
      field = 'refused:' .. reply[2]
    elseif reply[1] ~= 'queued' then
      field = 'refused:' .. reply[1]
    end
    redis.call('HINCRBY', key_counters(counted_prefix), field, 1)
  end
  return reply
end
local function refuse(message, loc)
  return answer({'invalid', message, loc or 'intent'})
end
local function whole_ms(text, name, lowest, highest)
  local n = tonumber(text)
  if not n or n ~= n or n ~= math.floor(n) or n < lowest or n > highest then
    return nil, refuse(name .. ' must be whole milliseconds between ' .. lowest .. ' and '
      .. highest, name)
  end
  return n
end

if #KEYS ~= 4 or #ARGV ~= 9 then
  return refuse('expected 4 keys and 9 arguments, got ' .. #KEYS .. ' and ' .. #ARGV, 'call')
end
local key, account, prefix = ARGV[2], ARGV[3], ARGV[4]
if #key == 0 or #key > MAX_IDEMPOTENCY_KEY or string.find(key, '[^\33-\126]') then
  return refuse('the key must be 1-' .. MAX_IDEMPOTENCY_KEY .. ' printable ASCII characters',
    'idempotency_key')
end
if not string.find(account, '^%d+$') or #account > 64 then
  return refuse('the account id must be 1-64 digits', 'account_id')
end
if not string.find(prefix, '^[%w_%.%-]+$') or #prefix > 32 then
  return refuse('the key prefix must be 1-32 characters of [A-Za-z0-9_.-]', 'prefix')
end
if KEYS[1] ~= key_record(prefix, key) or KEYS[2] ~= key_arq_job(prefix, key)
    or KEYS[3] ~= key_queue(prefix) or KEYS[4] ~= key_accounts(prefix) then
  return refuse('KEYS must be the record, job, queue and accounts keys of this key and prefix',
    'keys')
end
counted_prefix = prefix
local err, not_before, not_after, default_deadline, retention, hint
not_before, err = whole_ms(ARGV[5], 'not_before', 0, MAX_EPOCH_MS)
if err then return err end
not_after, err = whole_ms(ARGV[6], 'not_after', 0, MAX_EPOCH_MS)
if err then return err end
default_deadline, err = whole_ms(ARGV[7], 'default_deadline', 1, MAX_EPOCH_MS)
if err then return err end
retention, err = whole_ms(ARGV[8], 'retention', MIN_RETENTION_MS, MAX_EPOCH_MS)
if err then return err end
hint, err = whole_ms(ARGV[9], 'window_hint', 0, MAX_EPOCH_MS)
if err then return err end
if #ARGV[1] > MAX_INTENT_BYTES then
  return refuse('the intent is ' .. #ARGV[1] .. ' bytes of JSON; the limit is '
    .. MAX_INTENT_BYTES)
end
local intent, problem = strict_json_decode(ARGV[1])
if problem then return refuse('the intent is not valid JSON: ' .. problem) end
if type(intent) ~= 'table' then return refuse('the intent is not a JSON object') end
if intent['idempotency_key'] ~= key then
  return refuse('idempotency_key in the intent differs from the key argument',
    'idempotency_key')
end
if intent['account_id'] ~= account then
  return refuse('account_id in the intent differs from the account argument', 'account_id')
end
local priority = intent['priority']
if priority ~= nil and priority ~= PRIORITY_INTERACTIVE and priority ~= PRIORITY_BULK then
  return refuse('priority must be "' .. PRIORITY_INTERACTIVE .. '" or "' .. PRIORITY_BULK
    .. '"', 'priority')
end
local bulk = priority == PRIORITY_BULK

-- Times: Redis's clock only (producers need none). Every key the intent depends on must
-- outlive it: the record, the job and the conversation entry live until after its deadline.
local now = now_ms()
local deadline = not_after > 0 and not_after or now + default_deadline
if not_before > 0 and not_before >= deadline then
  return refuse('not_before must be earlier than the deadline (not_after, or the default '
    .. 'deadline from now)', 'not_before')
end
if deadline - now > retention then
  return refuse('the deadline is further away than the idempotency retention ('
    .. math.floor(retention / 1000) .. ' s): the record would be forgotten first', 'not_after')
end

local digest = redis.sha1hex(ARGV[1])
local existing = redis.call('HGET', KEYS[1], 'digest')
if existing then
  if existing == digest then
    return answer({'duplicate', redis.call('HGET', KEYS[1], 'state') or 'queued'})
  end
  return answer({'conflict', existing})
end
if redis.call('SISMEMBER', KEYS[4], account) == 0 then
  if redis.call('HGET', key_account(prefix, account), 'state') == 'removed' then
    return answer({'account_removed', account})
  end
  return answer({'unknown_account', account})
end
local run_at = math.max(not_before, now)

-- The conversation (for ordering) and its window.
local r = intent['recipient']
local rkey, private_reply, user, comment = nil, false, '', ''
if type(r) == 'table' then
  if type(r['id']) == 'string' then
    rkey, user = RECIPIENT_ID_PREFIX .. r['id'], r['id']
  elseif type(r['comment_id']) == 'string' then
    rkey, private_reply, comment = RECIPIENT_COMMENT_PREFIX .. r['comment_id'], true,
      r['comment_id']
  end
end
local human = intent['tag'] == HUMAN_AGENT_TAG
local closed = window_refusal(prefix, account, user, comment, human, hint, now)
if closed then return answer({'window_closed', closed}) end
local conv = ''
local is_head = true
if rkey then
  conv = key_conversation(prefix, account, rkey)
  -- Order: one after the conversation's last pending intent (a read, where a global
  -- counter would be one more write per intent).
  local last = redis.call('ZRANGE', conv, -1, -1, 'WITHSCORES')
  is_head = #last == 0
  redis.call('ZADD', conv, is_head and 1 or tonumber(last[2]) + 1, key)
  -- Never shorten: an intent enqueued earlier with a longer retention still needs it (GT;
  -- a new conversation has no TTL yet, which GT would read as an infinite one).
  if is_head then
    redis.call('PEXPIRE', conv, retention)
    -- The sweeper's list of conversations to look after (worker/sweeper.py). A conversation
    -- that has pending intents is listed already: it leaves the list only once empty.
    redis.call('ZADD', key_conversations(prefix), 'NX', now, conv)
  else
    redis.call('PEXPIRE', conv, retention, 'GT')
  end
end

-- A head due now goes at its reserved slot (workers publish the spacing in <prefix>:rates),
-- in its lane: a bulk backlog's reservations never push an interactive intent's slot back.
local score = run_at
if is_head and run_at == now then
  local content = intent['content']
  local kind = type(content) == 'table' and content['kind'] or nil
  local class = rate_class(kind, private_reply)
  local rates = key_rates(prefix)
  local spacing = redis.call('HMGET', rates, class .. '_interval_ms', class .. '_burst')
  local interval = tonumber(spacing[1] or '0')
  if interval and interval > 0 then
    local burst = tonumber(spacing[2] or '1')
    local pause = math.max(redis.call('PTTL', key_pause(prefix, account)), 0)
    local tat = bulk and key_rate_tat_bulk(prefix, account, class)
      or key_rate_tat(prefix, account, class)
    score = reserve(tat, interval, burst, now + pause)
  end
end

local job_id = key_job_id(prefix, key)
redis.call('HSET', KEYS[1], 'digest', digest, 'state', 'queued', 'job_id', job_id,
  'account', account, 'enqueued_ms', now, 'attempts', 0, 'conv', conv, 'run_at', run_at,
  'deadline', deadline, 'win_user', user, 'win_comment', comment,
  'win_human', human and '1' or '', 'win_hint', hint,
  'auto', intent['automated'] == false and '0' or '1')
redis.call('PEXPIRE', KEYS[1], retention)
local job = '{"t":null,"f":' .. cjson.encode(SEND_JOB_NAME) .. ',"a":[' .. ARGV[1] ..
  '],"k":{},"et":' .. string.format('%d', now) .. '}'
redis.call('SET', KEYS[2], job, 'PX', math.max(deadline - now, 0) + JOB_TTL_MARGIN_MS)
if is_head then
  redis.call('ZADD', KEYS[3], score, job_id)
  return answer({'queued', job_id})
end
-- Parked at its deadline, so it still ends `expired` on time if the earlier intents take
-- longer; the worker queues it sooner when they end.
redis.call('ZADD', KEYS[3], math.max(deadline, now) + 1, job_id)
return answer({'queued', job_id, 'after_earlier_intents'})
