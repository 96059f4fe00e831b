-- Rate limiter: admit one send into its account's window, or say how long to wait
-- (worker/limiter.py `RateLimiter.acquire`).
-- KEYS: window, tat, pause, slow. ARGV: limit per window, window ms, interval ms, burst,
-- member, slowdown factor, '1' = reserve a new slot if the window is full.
-- -> {'go', 0} | {'wait', ms}
-- A full window usually means this send came a hair early for its own reserved slot (ARQ's
-- poll, a busy host): it waits for the window's oldest send to age out, keeping its place.
-- Only a send that keeps finding the window full reserves a new slot (after the backlog).
local now = now_ms()
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local interval = tonumber(ARGV[3])
local burst = tonumber(ARGV[4])
if redis.call('EXISTS', KEYS[4]) == 1 then
  local factor = tonumber(ARGV[6])
  limit = math.max(1, math.floor(limit * factor))
  interval = interval / factor
end
local pause = redis.call('PTTL', KEYS[3])
if pause > 0 then
  return {'wait', string.format('%d', reserve(KEYS[2], interval, burst, now + pause) - now)}
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[5])
  redis.call('PEXPIRE', KEYS[1], window + 1000)
  local tat = tonumber(redis.call('GET', KEYS[2]) or '0')
  if tat <= now then
    redis.call('SET', KEYS[2], string.format('%.3f', now + interval),
      'PX', math.floor(60000 + interval))
  end
  return {'go', '0'}
end
local oldest = tonumber(redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2])
if ARGV[7] ~= '1' then
  return {'wait', string.format('%d', oldest + window - now + 1)}
end
local slot = reserve(KEYS[2], interval, burst, oldest + window)
return {'wait', string.format('%d', slot - now)}
