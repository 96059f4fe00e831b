-- Store an account's token (encrypted by the caller) in the registry: `accounts add`.
-- Producers may enqueue for it at once; a needs_reauth or removed state ends here.
-- ARGV: prefix, account, ciphertext, fingerprint, username, expires in ms from now,
--       estimated (1: the expiry is an upper bound, not Graph's figure)
-- -> 'added' | 'replaced'
local prefix, account = ARGV[1], ARGV[2]
local bad = account_args(prefix, account)
if bad then return bad end
local key = key_account(prefix, account)
local now = now_ms()
local added = redis.call('HGET', key, 'added_ms')
local subscribed = redis.call('HGET', key, 'subscribed')
redis.call('DEL', key)
redis.call('HSET', key, 'source', 'store', 'state', 'active', 'token', ARGV[3], 'fp', ARGV[4],
  'username', ARGV[5], 'issued_ms', now, 'expires_ms', now + tonumber(ARGV[6]),
  'estimated', ARGV[7],
  'added_ms', added or now, 'updated_ms', now)
if subscribed then redis.call('HSET', key, 'subscribed', subscribed) end
redis.call('SADD', key_account_index(prefix), account)
redis.call('SADD', key_accounts(prefix), account)
release_reauth_pause(prefix, account)
registry_changed(prefix)
if added then return 'replaced' end
return 'added'
