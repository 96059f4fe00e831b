-- Journal: start a send (worker/journal.py `Journal.begin`): the intent's message, or the
-- bot disclosure before it (the same state machine in fields prefixed `d_`). One round trip
-- per send: it also registers the running job and takes the send's rate slot.
-- KEYS[1] record, KEYS[2] ARQ queue. ARGV[1] lease ms, ARGV[2] owner (job id + try), ARGV[3]
-- '1' = take over an ambiguous send (the policy decided to resend it), ARGV[4] the key,
-- ARGV[5] run-at ms to park the job at when it is not its conversation's turn, ARGV[6] the
-- key prefix, ARGV[7] the phase's field prefix ('' the message, 'd_' the disclosure),
-- ARGV[8] the worker id ('' = none): the job is listed in <prefix>:running:<worker> (key ->
-- owner, whatever the answer) so a live worker reclaims it should this one die (reclaim.lua),
-- ARGV[9] the account ('' = take no rate slot), ARGV[10] its rate class, ARGV[11..16] the
-- slot (rate_window.lua `admit`): limit, window ms, interval ms, burst, member, slowdown
-- factor, ARGV[17] '1' = reserve a new slot if the window is full, ARGV[18] the lane
-- ('bulk', else interactive), ARGV[19] the transit allowance in the window ms.
-- -> {'go', attempts, the rate window's sends incl. this one ('' without a slot), now ms} |
--    {'busy', ms_left} | {'wait', ms} (no slot: nothing changed) |
--    {'ambiguous', attempts, last send start ms, ms since it became ambiguous} (the slot is
--    taken: a take-over then takes none) | a preflight reply (preflight.lua) | {'done', state}
--    when the phase has ended (a disclosure `sent` or `none`)
local now = now_ms()
local p = ARGV[7]
if ARGV[8] ~= '' then redis.call('HSET', key_running(ARGV[6], ARGV[8]), ARGV[4], ARGV[2]) end
local early, r = preflight(KEYS[1], KEYS[2], ARGV[4], ARGV[5], ARGV[6], p, now)
if early then return early end
local f = r.phase
local state = f.state
if p ~= '' and (state == 'sent' or state == 'none') then return {'done', state} end
local ambiguous = false
if state == 'sending' or state == 'unconfirmed' then
  if state == 'sending' then
    local lease = tonumber(f.lease_until or '0')
    if lease > now then return {'busy', tostring(lease - now)} end
  end
  ambiguous = ARGV[3] ~= '1'
end
local in_window = ''
if ARGV[9] ~= '' then
  local account, class, bulk = ARGV[9], ARGV[10], ARGV[18] == 'bulk'
  local tat = bulk and key_rate_tat_bulk(ARGV[6], account, class)
    or key_rate_tat(ARGV[6], account, class)
  local wait, sends = admit(key_rate_window(ARGV[6], account, class), tat,
    key_pause(ARGV[6], account), key_slow(ARGV[6], account),
    key_rate_waiting(ARGV[6], account, class), key_transit_fleet(ARGV[6]), bulk,
    tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[19]) or 0, tonumber(ARGV[13]),
    tonumber(ARGV[14]), ARGV[15], tonumber(ARGV[16]), ARGV[17] == '1', now)
  if wait then return {'wait', string.format('%d', wait)} end
  in_window = tostring(sends)
end
if ambiguous then
  local since = tonumber(f.unconfirmed_since or '0')
  if since == 0 then
    since = now
    redis.call('HSET', KEYS[1], p .. 'state', 'unconfirmed', p .. 'unconfirmed_since', now)
    redis.call('HDEL', KEYS[1], p .. 'lease_until')
  end
  return {'ambiguous', f.attempts or '0', f.sending_since or '0', tostring(now - since)}
end
local attempts = (tonumber(f.attempts or '0') or 0) + 1
redis.call('HSET', KEYS[1], p .. 'state', 'sending', p .. 'lease_until',
  now + tonumber(ARGV[1]), p .. 'owner', ARGV[2], p .. 'sending_since', now, p .. 'attempts',
  attempts)
if f.unconfirmed_since then redis.call('HDEL', KEYS[1], p .. 'unconfirmed_since') end
return {'go', tostring(attempts), in_window, tostring(now)}
