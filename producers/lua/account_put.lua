-- Store an account's token (encrypted by the caller) in the registry: `accounts add`.
-- Producers may enqueue for it at once; a needs_reauth or removed state ends here.
-- ARGV: prefix, account, ciphertext, fingerprint, username, expires in ms from now,
--       estimated (1: the expiry is an upper bound, not Graph's figure)
-- -> 'added' | 'replaced'
local prefix, account = ARGV[1], ARGV[2]
local bad = account_args(prefix, account)
if bad then return bad end
if #ARGV < 7 or ARGV[5] == nil then
  return redis.error_reply('account_put needs ciphertext, fingerprint, username, expiry, estimated')
end
if ARGV[3] == '' then return redis.error_reply('the ciphertext must not be empty') end
if ARGV[4] == '' then return redis.error_reply('the fingerprint must not be empty') end
local expires_in = whole_ms(ARGV[6])
if not expires_in then
  return redis.error_reply('the expiry must be a whole number of milliseconds')
end
if ARGV[7] ~= '0' and ARGV[7] ~= '1' then
  return redis.error_reply("estimated must be '0' or '1'")
end
local key = key_account(prefix, account)
local now = now_ms()
local added = redis.call('HGET', key, 'added_ms')
redis.call('HSET', key, 'source', 'store', 'state', 'active', 'token', ARGV[3], 'fp', ARGV[4],
  'username', ARGV[5], 'issued_ms', now, 'expires_ms', now + expires_in,
  'estimated', ARGV[7],
  'added_ms', added or now, 'updated_ms', now)
-- Fields of the old entry that do not survive a new token ('subscribed' does).
redis.call('HDEL', key, 'reason', 'reauth_fp', 'reauth_ms', 'lineage', 'removed_ms',
  'refresh_next_ms', 'refresh_error', 'refresh_result', 'refresh_failures', 'refresh_requested',
  'refreshed_ms', 'refresh_tried_ms', 'subscribe_error')
redis.call('SADD', key_account_index(prefix), account)
redis.call('SADD', key_accounts(prefix), account)
release_reauth_pause(prefix, account)
registry_changed(prefix)
if added then return 'replaced' end
return 'added'
