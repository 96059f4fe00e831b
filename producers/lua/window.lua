-- Library: when does an intent's conversation window close (Meta's messaging windows)?
-- A private reply: 7 days after its comment, once per comment. Any other intent: 24 hours
-- after the user's last message (7 days for HUMAN_AGENT). The start comes from webhook facts
-- (the gateway records them), else from the intent's window_hint. The limits are the
-- workers' settings, published in <prefix>:policy (Meta's values until a worker has run).
-- `window_end(prefix, account, user, comment, human, hint_ms)` -> end_ms | nil (unknown),
--   reason ('window_closed' | 'private_reply_already_sent' | 'window_unknown')
local function window_policy(prefix)
  local p = redis.call('HMGET', key_policy(prefix), 'standard_ms', 'human_agent_ms',
    'private_reply_ms', 'margin_ms', 'unknown')
  return {
    standard = tonumber(p[1]) or DEFAULT_WINDOW_STANDARD_MS,
    human = tonumber(p[2]) or DEFAULT_WINDOW_HUMAN_AGENT_MS,
    private = tonumber(p[3]) or DEFAULT_WINDOW_PRIVATE_REPLY_MS,
    margin = tonumber(p[4]) or DEFAULT_WINDOW_MARGIN_MS,
    unknown = p[5] or DEFAULT_WINDOW_UNKNOWN,
  }
end

local function window_end(prefix, policy, account, user, comment, human, hint_ms)
  if comment ~= '' then
    local c = redis.call('HMGET', key_comment(prefix, comment), 'created_ms', 'replied')
    if c[2] == '1' then return 0, 'private_reply_already_sent' end
    if c[1] then return tonumber(c[1]) + policy.private, 'window_closed' end
    if hint_ms > 0 then return hint_ms + policy.private, 'window_closed' end
    return nil, 'window_unknown'
  end
  local last = tonumber(redis.call('GET', key_user_last_message(prefix, account, user)) or '')
  if not last and hint_ms > 0 then last = hint_ms end
  if not last then return nil, 'window_unknown' end
  return last + (human and policy.human or policy.standard), 'window_closed'
end

-- nil when the window is open (or unknown and the policy lets Graph decide), else the reason.
local function window_refusal(prefix, account, user, comment, human, hint_ms, now)
  local policy = window_policy(prefix)
  local closes, reason = window_end(prefix, policy, account, user, comment, human, hint_ms)
  if not closes then
    if policy.unknown == 'refuse' then return reason end
    return nil
  end
  if now + policy.margin >= closes then return reason end
  return nil
end
