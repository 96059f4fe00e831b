-- Re-encrypt one stored token under the first key (`accounts rekey`), unless it changed
-- meanwhile (a refresh wrote a new one, already under the first key).
-- ARGV: prefix, account, old ciphertext, new ciphertext -> 'rekeyed' | 'changed'
local prefix, account = ARGV[1], ARGV[2]
local bad = account_args(prefix, account)
if bad then return bad end
local key = key_account(prefix, account)
if redis.call('HGET', key, 'token') ~= ARGV[3] then return 'changed' end
redis.call('HSET', key, 'token', ARGV[4])
registry_changed(prefix)
return 'rekeyed'
