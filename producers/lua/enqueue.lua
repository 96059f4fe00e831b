-- ig-outbound atomic enqueue: claim the idempotency key, write the ARQ job (JSON), queue it.
-- One round trip; the documented way for producers in any language (docs/producers.md).
--
-- KEYS[1] record   <prefix>:idem:<key>        (hash: idempotency record + send journal)
-- KEYS[2] job      arq:job:<prefix>:<key>     (string: the ARQ job, JSON)
-- KEYS[3] queue    <prefix>:queue             (zset: job ids by run-at ms)
-- KEYS[4] accounts <prefix>:accounts          (set: account ids the fleet has tokens for)
-- ARGV[1] intent JSON (the exact bytes; their SHA-1 is the content digest)
-- ARGV[2] idempotency key     ARGV[3] account id
-- ARGV[4] run-at ms (0 = now) ARGV[5] record retention ms   ARGV[6] job TTL ms
-- ARGV[7] job id              ARGV[8] job name
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
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local score = tonumber(ARGV[4])
if score == nil or score < now_ms then score = now_ms end
redis.call('HSET', KEYS[1], 'digest', digest, 'state', 'queued', 'job_id', ARGV[7],
  'account', ARGV[3], 'enqueued_ms', now_ms, 'attempts', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[5])
local job = '{"t":null,"f":' .. cjson.encode(ARGV[8]) .. ',"a":[' .. ARGV[1] ..
  '],"k":{},"et":' .. string.format('%d', now_ms) .. '}'
redis.call('SET', KEYS[2], job, 'PX', ARGV[6])
redis.call('ZADD', KEYS[3], score, ARGV[7])
return {'queued', ARGV[7]}
