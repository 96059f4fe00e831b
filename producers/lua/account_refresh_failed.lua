-- A refresh failed: record why and when to try again (the lease holder only).
-- ARGV: prefix, account, lease value, fingerprint refreshed, result, error, next try ms
-- -> 'recorded' | 'lease_lost' | 'stale'
local prefix, account = ARGV[1], ARGV[2]
local bad = account_args(prefix, account)
if bad then return bad end
if #ARGV < 7 or ARGV[3] == nil or ARGV[4] == nil or ARGV[5] == nil or ARGV[6] == nil then
  return redis.error_reply('account_refresh_failed needs lease, fingerprint, result, error, next')
end
if not whole_ms(ARGV[7]) then
  return redis.error_reply('the next try must be a whole number of milliseconds')
end
if redis.call('GET', key_refresh_lease(prefix, account)) ~= ARGV[3] then return 'lease_lost' end
local key = key_account(prefix, account)
if redis.call('HGET', key, 'fp') ~= ARGV[4] then return 'stale' end
local now = now_ms()
redis.call('HINCRBY', key, 'refresh_failures', 1)
redis.call('HDEL', key, 'refresh_requested')
redis.call('HSET', key, 'refresh_result', ARGV[5], 'refresh_error', ARGV[6],
  'refresh_next_ms', ARGV[7], 'refresh_tried_ms', now, 'updated_ms', now)
registry_changed(prefix)
return 'recorded'
