-- Journal: count something on an intent's record (and optionally fleet-wide), never
-- re-creating a record that expired or was evicted (it would live on without a TTL).
-- KEYS[1] record, KEYS[2] fleet counters hash. ARGV[1] record field, ARGV[2] counters field
-- ('' for none). -> the record's new count, or -1 when the record is gone
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if ARGV[2] ~= '' then redis.call('HINCRBY', KEYS[2], ARGV[2], 1) end
return redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
