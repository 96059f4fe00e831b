"""The send journal: per intent `queued -> sending (leased) -> sent | failed | ...`.

It lives in the intent's idempotency record (`<prefix>:idem:<key>`, a hash) and is changed only
by the atomic scripts below, so ARQ running a job twice (arq-notes A.3) can never send twice:
a second run finds `sending` under a live lease (busy), or a terminal outcome (done), or an
expired lease (ambiguous: the first run may have reached Graph; a policy decides).

Times come from Redis (`TIME`), so leases mean the same thing on every machine of the fleet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from redis.asyncio import Redis

from ig_outbound.producers.keys import Keys
from ig_outbound.producers.outcome import DEAD_LETTER_STATUSES, Outcome
from ig_outbound.producers.redis_util import resolve

_NOW_MS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS[1] record, KEYS[2] ARQ queue. ARGV[1] lease ms, ARGV[2] owner (job id + try), ARGV[3]
# '1' = take over an ambiguous send (the policy decided to resend it), ARGV[4] the key,
# ARGV[5] run-at ms to park the job at when it is not its conversation's turn.
# -> {'go', attempts} | {'done', state} | {'busy', ms_left} | {'not_its_turn', ''}
#  | {'ambiguous', attempts, last send start ms, ms since it became ambiguous}
_BEGIN = (
    _NOW_MS
    + """
if redis.call('HEXISTS', KEYS[1], 'outcome') == 1 then
  return {'done', redis.call('HGET', KEYS[1], 'state')}
end
local conv = redis.call('HGET', KEYS[1], 'conv')
if conv and conv ~= '' then
  local head = redis.call('ZRANGE', conv, 0, 0)[1]
  if head and head ~= ARGV[4] then
    -- Parked here, atomically with the head check, so the end of the intent before (which
    -- queues this job at once) always comes later and wins; the job then leaves the score
    -- alone. A park by ARQ's Retry(defer) would add to that score and lose the wake-up.
    local job_id = redis.call('HGET', KEYS[1], 'job_id')
    if job_id then redis.call('ZADD', KEYS[2], ARGV[5], job_id) end
    return {'not_its_turn', ''}
  end
end
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'sending' or state == 'unconfirmed' then
  if state == 'sending' then
    local lease = tonumber(redis.call('HGET', KEYS[1], 'lease_until') or '0')
    if lease > now then return {'busy', tostring(lease - now)} end
  end
  if ARGV[3] ~= '1' then
    local since = tonumber(redis.call('HGET', KEYS[1], 'unconfirmed_since') or '0')
    if since == 0 then
      since = now
      redis.call('HSET', KEYS[1], 'state', 'unconfirmed', 'unconfirmed_since', now)
      redis.call('HDEL', KEYS[1], 'lease_until')
    end
    return {'ambiguous', redis.call('HGET', KEYS[1], 'attempts') or '0',
            redis.call('HGET', KEYS[1], 'sending_since') or '0', tostring(now - since)}
  end
end
redis.call('HSET', KEYS[1], 'state', 'sending', 'lease_until', now + tonumber(ARGV[1]),
  'owner', ARGV[2], 'sending_since', now)
redis.call('HDEL', KEYS[1], 'unconfirmed_since')
return {'go', tostring(redis.call('HINCRBY', KEYS[1], 'attempts', 1))}
"""
)

# The request left but no answer came (reconcile policy): `unconfirmed` until settled.
# KEYS[1] record. ARGV[1] owner.
_UNCONFIRM = (
    _NOW_MS
    + """
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1]
   and redis.call('HGET', KEYS[1], 'state') == 'sending' then
  redis.call('HSET', KEYS[1], 'state', 'unconfirmed', 'unconfirmed_since', now)
  redis.call('HDEL', KEYS[1], 'lease_until')
  return 1
end
return 0
"""
)

# The send definitely did not reach Graph (or Graph refused it): leave `sending`.
# KEYS[1] record. ARGV[1] owner, ARGV[2] '1' to count a transient failure.
# -> transient failures so far
_RELEASE = """
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1]
   and redis.call('HGET', KEYS[1], 'state') == 'sending' then
  redis.call('HSET', KEYS[1], 'state', 'retrying')
  redis.call('HDEL', KEYS[1], 'lease_until')
end
if ARGV[2] == '1' then
  return redis.call('HINCRBY', KEYS[1], 'failures', 1)
end
return tonumber(redis.call('HGET', KEYS[1], 'failures') or '0')
"""

# Exactly one terminal outcome per intent, published atomically with the state change; then
# the conversation's next intent (if any) is queued: order is kept by queueing one at a time.
# KEYS[1] record, KEYS[2] outcomes stream, KEYS[3] dead-letter stream, KEYS[4] ARQ queue.
# ARGV[1] status, ARGV[2] outcome JSON, ARGV[3] stream maxlen, ARGV[4] record retention ms,
# ARGV[5] key, ARGV[6] '1' = dead-letter it, ARGV[7] the intent (raw JSON) for the DLQ,
# ARGV[8] key prefix.
# -> 1 published, 0 already had an outcome
_FINISH = (
    _NOW_MS
    + """
if redis.call('HEXISTS', KEYS[1], 'outcome') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'outcome', ARGV[2])
redis.call('HDEL', KEYS[1], 'lease_until')
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'key', ARGV[5], 'status', ARGV[1],
  'outcome', ARGV[2])
if ARGV[6] == '1' then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 'key', ARGV[5], 'status', ARGV[1],
    'outcome', ARGV[2], 'intent', ARGV[7])
end
local conv = redis.call('HGET', KEYS[1], 'conv')
if conv and conv ~= '' then
  local was_head = redis.call('ZRANGE', conv, 0, 0)[1] == ARGV[5]
  redis.call('ZREM', conv, ARGV[5])
  -- Only the head's end lets the next one go (a parked one may expire before its turn).
  for _ = 1, (was_head and 100 or 0) do
    local nxt = redis.call('ZRANGE', conv, 0, 0)[1]
    if not nxt then break end
    local rec = ARGV[8] .. ':idem:' .. nxt
    local job_id = redis.call('HGET', rec, 'job_id')
    if job_id and redis.call('HEXISTS', rec, 'outcome') == 0 then
      local run_at = tonumber(redis.call('HGET', rec, 'run_at') or '0')
      redis.call('ZADD', KEYS[4], math.max(now, run_at), job_id)
      break
    end
    redis.call('ZREM', conv, nxt)  -- gone or already ended: skip it
  end
end
return 1
"""
)

# A dead letter for input with no readable key (so no record and no outcome can exist).
_DEAD_LETTER_ONLY = """
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'key', '', 'status', 'rejected',
  'outcome', ARGV[2], 'intent', ARGV[3])
return 1
"""


@dataclass(frozen=True)
class Begin:
    """Answer of `Journal.begin`: go ahead (`attempt` is this send's number) or not."""

    verdict: Literal["go", "done", "busy", "ambiguous", "not_its_turn"]
    attempt: int = 0
    state: str | None = None
    retry_in_s: float = 0.0
    # For `ambiguous`: when the unconfirmed send started, and how long it has been unsettled.
    sending_since_ms: int = 0
    ambiguous_for_s: float = 0.0


@dataclass(frozen=True)
class Record:
    """The fields of an idempotency record the worker reads."""

    exists: bool
    state: str | None
    enqueued_ms: int | None
    attempts: int
    failures: int
    ambiguous: int


def _s(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Journal:
    """Atomic operations on idempotency records."""

    def __init__(self, redis: Redis, keys: Keys, *, maxlen: int, retention_s: int) -> None:
        self._redis = redis
        self._keys = keys
        self._maxlen = maxlen
        self._retention_ms = retention_s * 1000
        self._begin = redis.register_script(_BEGIN)
        self._release = redis.register_script(_RELEASE)
        self._unconfirm = redis.register_script(_UNCONFIRM)
        self._finish = redis.register_script(_FINISH)
        self._dead_letter_only = redis.register_script(_DEAD_LETTER_ONLY)

    async def read(self, key: str) -> Record:
        raw = await resolve(self._redis.hgetall(self._keys.record(key)))
        fields = {_s(k): _s(v) for k, v in raw.items()}
        enqueued = fields.get("enqueued_ms")
        return Record(
            exists=bool(fields),
            state=fields.get("state"),
            enqueued_ms=int(enqueued) if enqueued and enqueued.isdigit() else None,
            attempts=int(fields.get("attempts", "0") or 0),
            failures=int(fields.get("failures", "0") or 0),
            ambiguous=int(fields.get("ambiguous", "0") or 0),
        )

    async def begin(
        self, key: str, owner: str, lease_s: float, *, park_until_ms: int, take_over: bool = False
    ) -> Begin:
        """Start a send. Not its conversation's turn: the job is re-queued at `park_until_ms`
        (the caller must then leave the queue score alone: `Retry(defer=None)`)."""
        reply = await self._begin(
            keys=[self._keys.record(key), self._keys.queue],
            args=[int(lease_s * 1000), owner, "1" if take_over else "0", key, park_until_ms],
        )
        verdict, detail = _s(reply[0]), _s(reply[1])
        if verdict == "go":
            return Begin("go", attempt=int(detail))
        if verdict == "done":
            return Begin("done", state=detail)
        if verdict == "busy":
            return Begin("busy", retry_in_s=int(detail) / 1000)
        if verdict == "not_its_turn":
            return Begin("not_its_turn")
        return Begin(
            "ambiguous",
            attempt=int(detail),
            sending_since_ms=int(_s(reply[2])),
            ambiguous_for_s=int(_s(reply[3])) / 1000,
        )

    async def unconfirm(self, key: str, owner: str) -> None:
        """Mark this run's send as unconfirmed (left, unanswered) for reconciliation."""
        await self._unconfirm(keys=[self._keys.record(key)], args=[owner])

    async def mark_ambiguous(self, key: str) -> None:
        """Count an ambiguous send on the record and fleet-wide."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(self._keys.record(key), "ambiguous", 1)
            pipe.hincrby(self._keys.counters, "ambiguous_sends", 1)
            await pipe.execute()

    async def release(self, key: str, owner: str, *, count_failure: bool) -> int:
        """The send did not happen: back to `retrying`. Returns transient failures so far."""
        reply = await self._release(
            keys=[self._keys.record(key)], args=[owner, "1" if count_failure else "0"]
        )
        return int(reply)

    async def finish(self, outcome: Outcome, intent_json: str) -> bool:
        """Publish the one terminal outcome; False if the intent already had one."""
        dead = outcome.status in DEAD_LETTER_STATUSES
        reply = await self._finish(
            keys=[
                self._keys.record(outcome.key),
                self._keys.outcomes,
                self._keys.dead_letters,
                self._keys.queue,
            ],
            args=[
                outcome.status.value,
                outcome.model_dump_json(),
                self._maxlen,
                self._retention_ms,
                outcome.key,
                "1" if dead else "0",
                intent_json,
                self._keys.prefix,
            ],
        )
        return bool(int(reply))

    async def dead_letter_unkeyed(self, outcome_json: str, raw: str) -> None:
        """Dead-letter input whose key cannot be read (nothing else can record it)."""
        await self._dead_letter_only(
            keys=[self._keys.dead_letters], args=[self._maxlen, outcome_json, raw]
        )
