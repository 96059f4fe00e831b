-- Pause an account fleet-wide (worker/pauses.py). Only ever lengthens a pause: a short pause
-- must not cut a longer one Meta asked for.
-- KEYS[1] pause key. ARGV[1] pause ms, ARGV[2] reason. -> 1 lengthened, 0 kept
local left = redis.call('PTTL', KEYS[1])
if left < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[1])
  return 1
end
return 0
