-- A worker is alive: its entry in <prefix>:workers moves to now (Redis's clock, so workers
-- on machines whose clocks disagree are judged alike). fleet.lua trims stale entries.
-- KEYS[1] workers zset. ARGV[1] worker id.
redis.call('ZADD', KEYS[1], now_ms(), ARGV[1])
return 1
