-- A worker's tokens from its environment or tokens file, as fingerprints (never tokens):
-- registers new accounts, notices a new token for a known one (which ends needs_reauth and
-- any refreshed copy descending from the old token), and keeps `accounts` complete (it is
-- re-run after a Redis restart). A stored token (`accounts add`) wins over a local one; a
-- removed account stays removed.
-- ARGV: prefix, then triples: account, source ('file' | 'env'), fingerprint
-- -> one verdict per account: added | same | replaced | store_wins | removed
local prefix = ARGV[1]
local now = now_ms()
local verdicts = {}
local changed = false
if (#ARGV - 1) % 3 ~= 0 then
  return redis.error_reply('account_sync takes a prefix, then account/source/fingerprint triples')
end
for i = 2, #ARGV, 3 do
  local bad = account_args(prefix, ARGV[i])
  if bad then return bad end
  if ARGV[i + 1] ~= 'file' and ARGV[i + 1] ~= 'env' then
    return redis.error_reply("the source must be 'file' or 'env'")
  end
  if ARGV[i + 2] == '' then return redis.error_reply('the fingerprint must not be empty') end
end
for i = 2, #ARGV, 3 do
  local account, source, fp = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local key = key_account(prefix, account)
  local e = redis.call('HMGET', key, 'state', 'source', 'fp', 'lineage')
  local verdict
  if not e[1] then
    redis.call('HSET', key, 'source', source, 'state', 'active', 'fp', fp, 'issued_ms', now,
      'estimated', '1', 'added_ms', now, 'updated_ms', now)
    redis.call('SADD', key_account_index(prefix), account)
    verdict, changed = 'added', true
  elseif e[1] == 'removed' then
    verdict = 'removed'
  elseif e[2] == 'store' then
    verdict = 'store_wins'
  elseif e[3] == fp or e[4] == fp then
    verdict = 'same'
  else
    -- A token the fleet has not seen: its age is unknown, so it counts from now.
    redis.call('HDEL', key, 'token', 'lineage', 'expires_ms', 'refresh_next_ms',
      'refresh_result', 'refresh_error', 'refresh_failures', 'reauth_fp', 'reason')
    redis.call('HSET', key, 'source', source, 'state', 'active', 'fp', fp, 'issued_ms', now,
      'estimated', '1', 'updated_ms', now)
    release_reauth_pause(prefix, account)
    verdict, changed = 'replaced', true
  end
  if verdict ~= 'removed' then redis.call('SADD', key_accounts(prefix), account) end
  verdicts[#verdicts + 1] = verdict
end
if changed then registry_changed(prefix) end
return verdicts
