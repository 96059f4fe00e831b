-- GCRA slot reservation (virtual scheduling), shared by the enqueue script and the worker's
-- rate limiter (worker/limiter.py). A TAT key holds the theoretical arrival time in ms.
local function reserve(tat_key, interval, burst, earliest)
  local tat = tonumber(redis.call('GET', tat_key) or '0')
  if tat < earliest then tat = earliest end
  local slot = tat - (burst - 1) * interval
  if slot < earliest then slot = earliest end
  local new_tat = math.max(tat, slot) + interval
  redis.call('SET', tat_key, string.format('%.3f', new_tat), 'PX',
    math.max(math.floor(new_tat - earliest + 60000), 60000))
  return slot
end
