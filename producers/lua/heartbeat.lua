-- A worker is alive: its entry in <prefix>:workers moves to now (Redis's clock, so workers
-- on machines whose clocks disagree are judged alike). fleet.lua trims stale entries.
-- It also records the transit allowance this worker measured (worker/transit.py) and answers
-- the largest one among live workers: every worker's rate windows use that one, so a send
-- that may arrive late from any worker is covered by every other worker's window.
-- A worker that has not measured yet (too few sends) says '' and counts for nothing: it sends
-- within the others' allowance (same network path) until it has its own.
-- The fleet's value is also kept in <prefix>:transit:fleet (a few heartbeats long), which
-- every admission reads (rate_window.lua): a wider allowance holds at once fleet-wide.
-- KEYS[1] workers zset, KEYS[2] transit hash, KEYS[3] the fleet's allowance. ARGV[1] worker
-- id, ARGV[2] its allowance ms (an integer, or '' = none yet), ARGV[3] heartbeat staleness ms.
-- -> the fleet's allowance ms (integer), -1 when no live worker has measured one
local worker, mine, stale_ms = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
if (ARGV[2] ~= '' and (not mine or mine < 0 or mine ~= math.floor(mine))) or not stale_ms then
  return redis.error_reply('ERR heartbeat: allowance and staleness must be integers >= 0')
end
local now = now_ms()
redis.call('ZADD', KEYS[1], now, worker)
if mine then
  redis.call('HSET', KEYS[2], worker, mine)
else
  redis.call('HDEL', KEYS[2], worker)
end
local fleet = mine or -1
local flat = redis.call('HGETALL', KEYS[2])
for i = 1, #flat, 2 do
  local beat = redis.call('ZSCORE', KEYS[1], flat[i])
  if beat and tonumber(beat) >= now - stale_ms then
    fleet = math.max(fleet, tonumber(flat[i + 1]) or 0)
  else
    redis.call('HDEL', KEYS[2], flat[i])  -- a dead or departed worker's measurement
  end
end
if fleet >= 0 then
  redis.call('SET', KEYS[3], fleet, 'PX', math.max(2 * stale_ms, 1))
end
return fleet
