-- Remove an account: producers refuse it from now on, and its queued intents end `failed`
-- (`account_removed`) when they come up (the journal's begin checks). The entry stays as a
-- tombstone so no worker's tokens file brings the account back; `accounts add` does.
-- ARGV: prefix, account, reason -> 'removed' | 'not_found' | 'already_removed'
local prefix, account = ARGV[1], ARGV[2]
local bad = account_args(prefix, account)
if bad then return bad end
if #ARGV < 3 or ARGV[3] == '' then return redis.error_reply('a removal needs a reason') end
local key = key_account(prefix, account)
local state = redis.call('HGET', key, 'state')
if not state then return 'not_found' end
if state == 'removed' then return 'already_removed' end
local now = now_ms()
redis.call('HDEL', key, 'token', 'lineage', 'reauth_fp', 'refresh_next_ms', 'refresh_requested')
redis.call('HSET', key, 'state', 'removed', 'reason', ARGV[3], 'removed_ms', now,
  'updated_ms', now)
redis.call('SREM', key_accounts(prefix), account)
release_reauth_pause(prefix, account)
registry_changed(prefix)
return 'removed'
