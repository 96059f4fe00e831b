-- Rate limiter: admit one send into its account's window, or say how long to wait
-- (worker/limiter.py `RateLimiter.acquire`; the send job takes its slot in the journal's
-- begin script instead, with the same `admit`, rate_window.lua).
-- KEYS: window, tat (the lane's), pause, slow, waiting, the fleet's transit allowance.
-- ARGV: limit per window, window ms, interval ms, burst, member, slowdown factor, '1' =
-- reserve a new slot if the window is full, the lane ('bulk', else interactive), the
-- transit allowance in the window ms, ARGV[10] the member whose place this one replaces
-- ('' = none): given back once this one is admitted (a stale slot taken again, job.py).
-- -> {'go', 0} | {'wait', ms}
local wait = admit(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], ARGV[8] == 'bulk',
  tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[9]) or 0, tonumber(ARGV[3]),
  tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6]), ARGV[7] == '1', now_ms())
if wait then return {'wait', string.format('%d', wait)} end
if ARGV[10] and ARGV[10] ~= '' then redis.call('ZREM', KEYS[1], ARGV[10]) end
return {'go', '0'}
