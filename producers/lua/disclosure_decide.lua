-- Disclosure: decide, once per intent, whether its message needs the bot disclosure first
-- (worker/disclosure.py). The decision is kept in the record (`d_state` queued | none,
-- `d_trigger`), so a re-run (a retry, a crash) never decides again: it sends what was
-- decided, or nothing.
-- KEYS[1] record, KEYS[2] ARQ queue. ARGV[1] key, ARGV[2] run-at ms to park at when it is not
-- its conversation's turn, ARGV[3] prefix, ARGV[4] lapse ms, ARGV[5] the conversation's user
-- ('' if unknown).
-- -> {'decided', d_state, trigger} | a preflight reply (preflight.lua)
local now = now_ms()
local early = preflight(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], 'd_', now)
if early then return early end
local state = redis.call('HGET', KEYS[1], 'd_state')
if state then return {'decided', state, redis.call('HGET', KEYS[1], 'd_trigger') or ''} end
local account = redis.call('HGET', KEYS[1], 'account') or ''
local trigger = disclosure_trigger(ARGV[3], account, ARGV[5], tonumber(ARGV[4]), now)
if trigger then
  redis.call('HSET', KEYS[1], 'd_state', 'queued', 'd_trigger', trigger)
  return {'decided', 'queued', trigger}
end
redis.call('HSET', KEYS[1], 'd_state', 'none')
return {'decided', 'none', ''}
