-- Library: the rate limiter's enforcement (worker/limiter.py), shared by rate_acquire.lua and
-- the journal's begin script, which takes the slot in the same call as the send's lease.
-- `admit(win, tat, pause, slow, waiting, fleet, bulk, limit, window, margin, interval, burst,
--        member, factor, renew, now)`
--   -> nil, sends in the window with this one (admitted: the send is counted) | ms to wait
-- A full window usually means this send came a hair early for its own reserved slot (ARQ's
-- poll, a busy host): it waits for the window's oldest send to age out, keeping its place.
-- Only a send that keeps finding the window full (`renew`) reserves a new slot (gcra.lua) in
-- its lane (`tat`: the interactive or the bulk lane's).
-- Priority: an interactive send that finds the window full marks it (`waiting`, until its
-- wait is over); while marked, a bulk send leaves the next free place to it.
-- `window` is Meta's window + `margin`, the caller's transit allowance; `fleet` holds the
-- fleet's (heartbeat.lua), which widens the window at once should it be wider.
local function admit(win, tat, pause, slow, waiting, fleet, bulk, limit, window, margin,
                     interval, burst, member, factor, renew, now)
  -- One read for the four flags (strings with a TTL) and the lane's TAT; the pause's TTL
  -- only when set.
  local flags = redis.call('MGET', pause, slow, waiting, fleet, tat)
  local fleet_margin = tonumber(flags[4] or '')
  if fleet_margin and fleet_margin > margin and fleet_margin <= MAX_TRANSIT_MS then
    window = window - margin + fleet_margin
  end
  if flags[2] then
    limit = math.max(1, math.floor(limit * factor))
    interval = interval / factor
  end
  if flags[1] then
    local paused = redis.call('PTTL', pause)
    if paused > 0 then return reserve(tat, interval, burst, now + paused) - now end
  end
  local held = (bulk and flags[3]) and 1 or 0
  -- Sends older than the window are dropped only when it looks full: they can only make the
  -- count larger, so a count under the limit admits exactly as a trimmed one would (and the
  -- set never holds more than `limit` entries).
  local count = redis.call('ZCARD', win)
  if count + held >= limit then
    redis.call('ZREMRANGEBYSCORE', win, '-inf', now - window)
    count = redis.call('ZCARD', win)
  end
  if count + held < limit then
    redis.call('ZADD', win, now, member)
    redis.call('PEXPIRE', win, window + 1000)
    local t = tonumber(flags[5] or '0') or 0
    if t <= now then
      redis.call('SET', tat, string.format('%.3f', now + interval), 'PX',
        math.floor(60000 + interval))
    end
    if flags[3] and not bulk then redis.call('DEL', waiting) end
    -- The fleet's own sends in the window (untrimmed entries are older): the job weighs
    -- Meta's usage header against it (someone else spending the account's budget?).
    return nil, redis.call('ZCOUNT', win, '(' .. (now - window), '+inf')
  end
  local oldest = tonumber(redis.call('ZRANGE', win, 0, 0, 'WITHSCORES')[2])
  local wait = math.max(oldest + window - now + 1, 1)
  if count < limit then
    -- (a bulk send held back for a waiting interactive one: after it, about one interval)
    wait = math.max(math.floor(interval), 1)
  elseif not bulk then
    -- Marked until a little after this send's wait (a send that gives up its place lets the
    -- mark lapse; one that is admitted clears it).
    redis.call('SET', waiting, '1', 'PX', wait + 250)
  end
  if not renew then return wait end
  return reserve(tat, interval, burst, now + wait) - now
end
