-- Library: may this intent's job send now? Shared by the journal's begin script and the
-- disclosure's decision, so both see the same record, turn and window.
-- `preflight(record, queue, key, park_ms, prefix, fields, now)` -> nil (go on) or the reply:
--   {'gone', ''}          the record expired or was evicted (never re-created here)
--   {'done', state}       the intent has its outcome
--   {'not_its_turn', ''}  an earlier intent of the conversation is pending: parked
--   {'window_closed', r}  a fresh send (`fields` says whose state) whose window has closed
--   {'account_removed', ''}  a fresh send of an account removed from the registry
local function preflight(record, queue, key, park_ms, prefix, field_prefix, now)
  if redis.call('EXISTS', record) == 0 then return {'gone', ''} end
  if redis.call('HEXISTS', record, 'outcome') == 1 then
    return {'done', redis.call('HGET', record, 'state')}
  end
  local conv = redis.call('HGET', record, 'conv')
  if conv and conv ~= '' then
    local head = redis.call('ZRANGE', conv, 0, 0)[1]
    if head and head ~= key then
      -- Parked here, atomically with the head check, so the end of the intent before (which
      -- queues this job at once) always comes later and wins; the job then leaves the score
      -- alone. A park by ARQ's Retry(defer) would add to that score and lose the wake-up.
      local job_id = redis.call('HGET', record, 'job_id')
      if job_id then redis.call('ZADD', queue, park_ms, job_id) end
      return {'not_its_turn', ''}
    end
  end
  local state = redis.call('HGET', record, field_prefix .. 'state')
  if state ~= 'sending' and state ~= 'unconfirmed' then
    -- A fresh send: is its window still open? (An unsettled one is the policy's to settle.)
    local w = redis.call('HMGET', record, 'account', 'win_user', 'win_comment', 'win_human',
      'win_hint')
    -- (`accounts` loses the id only on removal; its tombstone tells that from a lost set.)
    if redis.call('SISMEMBER', key_accounts(prefix), w[1] or '') == 0
        and redis.call('HGET', key_account(prefix, w[1] or ''), 'state') == 'removed' then
      return {'account_removed', ''}
    end
    local closed = window_refusal(prefix, w[1] or '', w[2] or '', w[3] or '', w[4] == '1',
      tonumber(w[5] or '0') or 0, now)
    if closed then return {'window_closed', closed} end
  end
  return nil
end
