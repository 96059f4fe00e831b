-- Graph says an account's token is invalid or expired (190): mark it needs_reauth and
-- pause it fleet-wide, but only if that token is still the account's current one. A token
-- replaced meanwhile (a refresh, `accounts add`, a new tokens file) answers 'stale': the
-- caller retries with the new token instead of stopping the account.
-- ARGV: prefix, account, fingerprint of the token used, reason, pause ms
-- -> 'marked' | 'already' | 'stale' | 'removed' | 'unknown'
local prefix, account = ARGV[1], ARGV[2]
local bad = account_args(prefix, account)
if bad then return bad end
local key = key_account(prefix, account)
local e = redis.call('HMGET', key, 'state', 'fp', 'reauth_fp')
if not e[1] then return 'unknown' end
if e[1] == 'removed' then return 'removed' end
if e[2] ~= ARGV[3] then return 'stale' end
local pause = key_pause(prefix, account)
if redis.call('PTTL', pause) < tonumber(ARGV[5]) then
  redis.call('SET', pause, REAUTH_PAUSE, 'PX', ARGV[5])
end
if e[1] == 'needs_reauth' and e[3] == ARGV[3] then return 'already' end
local now = now_ms()
redis.call('HSET', key, 'state', 'needs_reauth', 'reason', ARGV[4], 'reauth_fp', ARGV[3],
  'reauth_ms', now, 'updated_ms', now)
registry_changed(prefix)
return 'marked'
