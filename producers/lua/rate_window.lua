-- Library: the rate limiter's enforcement (worker/limiter.py), shared by rate_acquire.lua and
-- the journal's begin script, which takes the slot in the same call as the send's lease.
-- `admit(win, tat, pause, slow, limit, window, interval, burst, member, factor, renew, now)`
--   -> nil, sends in the window with this one (admitted: the send is counted) | ms to wait
-- A full window usually means this send came a hair early for its own reserved slot (ARQ's
-- poll, a busy host): it waits for the window's oldest send to age out, keeping its place.
-- Only a send that keeps finding the window full (`renew`) reserves a new slot (gcra.lua).
local function admit(win, tat, pause, slow, limit, window, interval, burst, member, factor,
                     renew, now)
  -- One read for both flags (both are strings with a TTL); the pause's TTL only when set.
  local flags = redis.call('MGET', pause, slow)
  if flags[2] then
    limit = math.max(1, math.floor(limit * factor))
    interval = interval / factor
  end
  if flags[1] then
    local paused = redis.call('PTTL', pause)
    if paused > 0 then return reserve(tat, interval, burst, now + paused) - now end
  end
  -- Sends older than the window are dropped only when it looks full: they can only make the
  -- count larger, so a count under the limit admits exactly as a trimmed one would (and the
  -- set never holds more than `limit` entries).
  local count = redis.call('ZCARD', win)
  if count >= limit then
    redis.call('ZREMRANGEBYSCORE', win, '-inf', now - window)
    count = redis.call('ZCARD', win)
  end
  if count < limit then
    redis.call('ZADD', win, now, member)
    redis.call('PEXPIRE', win, window + 1000)
    local t = tonumber(redis.call('GET', tat) or '0')
    if t <= now then
      redis.call('SET', tat, string.format('%.3f', now + interval), 'PX',
        math.floor(60000 + interval))
    end
    -- The fleet's own sends in the window (untrimmed entries are older): the job weighs
    -- Meta's usage header against it (someone else spending the account's budget?).
    return nil, redis.call('ZCOUNT', win, '(' .. (now - window), '+inf')
  end
  local oldest = tonumber(redis.call('ZRANGE', win, 0, 0, 'WITHSCORES')[2])
  if not renew then return oldest + window - now + 1 end
  return reserve(tat, interval, burst, oldest + window) - now
end
