-- A refresh succeeded: the new token (encrypted) and its expiry replace the old for every
-- worker at once. Only the lease holder may write, and only over the token it refreshed.
-- ARGV: prefix, account, lease value, old fingerprint, ciphertext, new fingerprint,
--       lineage (the local token's fingerprint a refreshed copy descends from, or ''),
--       expires in ms from now
-- -> 'ok' | 'lease_lost' | 'stale' | 'removed'
local prefix, account = ARGV[1], ARGV[2]
local bad = account_args(prefix, account)
if bad then return bad end
if #ARGV < 8 or ARGV[3] == nil or ARGV[4] == nil or ARGV[7] == nil then
  return redis.error_reply('account_refreshed needs lease, old fp, ciphertext, fp, lineage, expiry')
end
if ARGV[5] == '' then return redis.error_reply('the ciphertext must not be empty') end
if ARGV[6] == '' then return redis.error_reply('the fingerprint must not be empty') end
local expires_in = whole_ms(ARGV[8])
if not expires_in or expires_in <= 0 then
  return redis.error_reply('the expiry must be a positive whole number of milliseconds')
end
if redis.call('GET', key_refresh_lease(prefix, account)) ~= ARGV[3] then return 'lease_lost' end
local key = key_account(prefix, account)
local e = redis.call('HMGET', key, 'state', 'fp')
if not e[1] or e[1] == 'removed' then return 'removed' end
if e[2] ~= ARGV[4] then return 'stale' end
local now = now_ms()
redis.call('HDEL', key, 'refresh_next_ms', 'refresh_error', 'refresh_requested', 'reauth_fp',
  'reason')
redis.call('HSET', key, 'state', 'active', 'token', ARGV[5], 'fp', ARGV[6],
  'issued_ms', now, 'expires_ms', now + expires_in, 'estimated', '0',
  'refreshed_ms', now, 'refresh_result', 'ok', 'refresh_failures', '0', 'updated_ms', now)
if ARGV[7] ~= '' then redis.call('HSET', key, 'lineage', ARGV[7]) end
release_reauth_pause(prefix, account)
registry_changed(prefix)
return 'ok'
