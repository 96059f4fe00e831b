-- Library: may this intent's job send now? Shared by the journal's begin script and the
-- disclosure's decision, so both see the same record, turn and window.
-- `preflight(record, queue, key, park_ms, prefix, fields, now)` -> nil, r (go on; `r` is the
-- record as read, see RECORD_FIELDS) or the reply:
--   {'gone', ''}          the record expired or was evicted (never re-created here)
--   {'done', state}       the intent has its outcome
--   {'not_its_turn', ''}  an earlier intent of the conversation is pending: parked
--   {'window_closed', r}  a fresh send (`fields` says whose state) whose window has closed
--   {'account_removed', ''}  a fresh send of an account removed from the registry
-- The record is read once (one HMGET): the fields below, then the phase's own.
local RECORD_FIELDS = {'outcome', 'state', 'conv', 'job_id', 'account', 'win_user',
  'win_comment', 'win_human', 'win_hint', 'digest'}
local PHASE_FIELDS = {'state', 'lease_until', 'unconfirmed_since', 'attempts', 'sending_since'}

local function read_record(record, field_prefix)
  local names = {}
  for i, name in ipairs(RECORD_FIELDS) do names[i] = name end
  for _, name in ipairs(PHASE_FIELDS) do names[#names + 1] = field_prefix .. name end
  local values = redis.call('HMGET', record, unpack(names))
  local r, found = {phase = {}}, false
  for i, name in ipairs(RECORD_FIELDS) do
    r[name] = values[i]
    found = found or values[i] ~= false
  end
  for i, name in ipairs(PHASE_FIELDS) do
    local v = values[#RECORD_FIELDS + i]
    r.phase[name] = v
    found = found or v ~= false
  end
  -- None of these fields: gone, unless a stray field keeps the hash (EXISTS decides, rarely).
  r.exists = found or redis.call('EXISTS', record) == 1
  return r
end

local function preflight(record, queue, key, park_ms, prefix, field_prefix, now)
  local r = read_record(record, field_prefix)
  if not r.exists then return {'gone', ''} end
  if r.outcome then return {'done', r.state} end
  local conv = r.conv
  if conv and conv ~= '' then
    local head = redis.call('ZRANGE', conv, 0, 0)[1]
    if head and head ~= key then
      -- Parked here, atomically with the head check, so the end of the intent before (which
      -- queues this job at once) always comes later and wins; the job then leaves the score
      -- alone. A park by ARQ's Retry(defer) would add to that score and lose the wake-up.
      if r.job_id then redis.call('ZADD', queue, park_ms, r.job_id) end
      return {'not_its_turn', ''}
    end
  end
  local state = r.phase.state
  if state ~= 'sending' and state ~= 'unconfirmed' then
    -- A fresh send: is its window still open? (An unsettled one is the policy's to settle.)
    local account = r.account or ''
    -- (`accounts` loses the id only on removal; its tombstone tells that from a lost set.)
    if redis.call('SISMEMBER', key_accounts(prefix), account) == 0
        and redis.call('HGET', key_account(prefix, account), 'state') == 'removed' then
      return {'account_removed', ''}
    end
    local closed = window_refusal(prefix, account, r.win_user or '', r.win_comment or '',
      r.win_human == '1', tonumber(r.win_hint or '0') or 0, now)
    if closed then return {'window_closed', closed} end
  end
  return nil, r
end
