-- A dead letter for input with no readable key (so no record and no outcome can exist).
-- KEYS[1] dead-letter stream. ARGV[1] stream maxlen, ARGV[2] outcome JSON, ARGV[3] raw input.
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'key', '', 'status', 'rejected',
  'outcome', ARGV[2], 'intent', ARGV[3])
return 1
