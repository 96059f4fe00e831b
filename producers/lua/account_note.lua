-- Set fields of a live registry entry (webhook subscription result, a refresh request) and
-- tell the workers. Only the fields named in NOTE_FIELDS may be written this way.
-- ARGV: prefix, account, then field/value pairs ('' deletes) -> 'noted' | 'not_found' | 'removed'
local NOTE_FIELDS = {subscribed = true, subscribe_error = true, refresh_requested = true,
  username = true}
local prefix, account = ARGV[1], ARGV[2]
local bad = account_args(prefix, account)
if bad then return bad end
if (#ARGV - 2) % 2 ~= 0 then
  return redis.error_reply('account_note takes field/value pairs')
end
for i = 3, #ARGV, 2 do
  if not NOTE_FIELDS[ARGV[i]] then return redis.error_reply('not a note field: ' .. ARGV[i]) end
end
local key = key_account(prefix, account)
local state = redis.call('HGET', key, 'state')
if not state then return 'not_found' end
if state == 'removed' then return 'removed' end
for i = 3, #ARGV, 2 do
  if ARGV[i + 1] == '' then
    redis.call('HDEL', key, ARGV[i])
  else
    redis.call('HSET', key, ARGV[i], ARGV[i + 1])
  end
end
redis.call('HSET', key, 'updated_ms', now_ms())
registry_changed(prefix)
return 'noted'
