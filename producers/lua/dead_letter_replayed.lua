-- A replay's bookkeeping (producers/dlq.py): DLQ entry id -> the key its replay was enqueued
-- under, written only while the entry still exists, so a purge that removed the entry (and
-- its mapping) while the replay was being enqueued leaves no orphan mapping behind.
-- KEYS[1] dead-letter stream, KEYS[2] replay mapping (hash).
-- ARGV[1] entry id, ARGV[2] replay key.
-- -> 1 written, 0 the entry is gone
if #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1], 'COUNT', 1) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
