"""The send journal: per intent `queued -> sending (leased) -> sent | failed | ...`.

It lives in the intent's idempotency record (`<prefix>:idem:<key>`, a hash) and is changed
only by atomic scripts (`producers/lua/journal_*.lua`), so ARQ running a job twice
(arq-notes A.3) can never send twice:
a second run finds `sending` under a live lease (busy), or a terminal outcome (done), or an
expired lease (ambiguous: the first run may have reached Graph; a policy decides).

Times come from Redis (`TIME`), so leases mean the same thing on every machine of the fleet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from redis.asyncio import Redis

from ig_outbound.producers.keys import Keys
from ig_outbound.producers.outcome import DEAD_LETTER_STATUSES, DisclosureInfo, Outcome
from ig_outbound.producers.redis_util import resolve
from ig_outbound.producers.scripts import (
    DEAD_LETTER_UNKEYED,
    DISCLOSURE_DECIDE,
    DISCLOSURE_SETTLE,
    JOURNAL_BEGIN,
    JOURNAL_COUNT,
    JOURNAL_FINISH,
    JOURNAL_RELEASE,
    JOURNAL_UNCONFIRM,
)
from ig_outbound.worker.limiter import Slot


@dataclass(frozen=True)
class Begin:
    """Answer of `Journal.begin`: go ahead (`attempt` is this send's number) or not."""

    verdict: Literal[
        "go",
        "done",
        "busy",
        "wait",
        "ambiguous",
        "not_its_turn",
        "gone",
        "window_closed",
        "decided",
        "account_removed",
    ]
    attempt: int = 0
    state: str | None = None
    # For `busy`: the lease's time left; for `wait`: until the rate slot (nothing changed).
    retry_in_s: float = 0.0
    # For `ambiguous`: when the unconfirmed send started, and how long it has been unsettled.
    sending_since_ms: int = 0
    ambiguous_for_s: float = 0.0
    # For `decided`: what triggers the disclosure (state `queued`), if anything.
    trigger: str | None = None
    # For `go` with a slot: the fleet's sends in the account's rate window, this one included.
    sends_in_window: int | None = None
    # For `go`: when it was said (Redis ms): the slot's admission time.
    at_ms: int | None = None


@dataclass(frozen=True)
class Record:
    """The fields of an idempotency record the worker reads."""

    exists: bool
    state: str | None
    enqueued_ms: int | None
    attempts: int
    failures: int
    ambiguous: int
    deadline_ms: int | None = None


# The journal's phases: the field prefix of their state in the record.
Phase = Literal["", "d_"]
MESSAGE: Phase = ""
DISCLOSURE: Phase = "d_"


def _preflight_verdict(verdict: str, detail: str) -> Begin:
    """A reply of `producers/lua/preflight.lua` (or the end of a phase) as a `Begin`."""
    if verdict == "done":
        return Begin("done", state=detail)
    if verdict == "not_its_turn":
        return Begin("not_its_turn")
    if verdict == "gone":
        return Begin("gone")
    if verdict == "window_closed":
        return Begin("window_closed", state=detail)
    if verdict == "account_removed":
        return Begin("account_removed")
    raise ValueError(f"unexpected journal verdict {verdict!r}")


def _s(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Journal:
    """Atomic operations on idempotency records."""

    def __init__(
        self, redis: Redis, keys: Keys, *, maxlen: int, dlq_maxlen: int, retention_s: int
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._maxlen = maxlen
        self._dlq_maxlen = dlq_maxlen
        self._retention_ms = retention_s * 1000
        self._begin = redis.register_script(JOURNAL_BEGIN.source)
        self._release = redis.register_script(JOURNAL_RELEASE.source)
        self._unconfirm = redis.register_script(JOURNAL_UNCONFIRM.source)
        self._finish = redis.register_script(JOURNAL_FINISH.source)
        self._dead_letter_only = redis.register_script(DEAD_LETTER_UNKEYED.source)
        self._count = redis.register_script(JOURNAL_COUNT.source)
        self._decide = redis.register_script(DISCLOSURE_DECIDE.source)
        self._settle = redis.register_script(DISCLOSURE_SETTLE.source)

    async def read(self, key: str) -> Record:
        raw = await resolve(self._redis.hgetall(self._keys.record(key)))
        fields = {_s(k): _s(v) for k, v in raw.items()}
        enqueued = fields.get("enqueued_ms")
        deadline = fields.get("deadline")
        return Record(
            exists=bool(fields),
            state=fields.get("state"),
            enqueued_ms=int(enqueued) if enqueued and enqueued.isdigit() else None,
            attempts=int(fields.get("attempts", "0") or 0),
            failures=int(fields.get("failures", "0") or 0),
            ambiguous=int(fields.get("ambiguous", "0") or 0),
            deadline_ms=int(deadline) if deadline and deadline.isdigit() else None,
        )

    async def begin(
        self,
        key: str,
        owner: str,
        lease_s: float,
        *,
        park_until_ms: int,
        take_over: bool = False,
        phase: Phase = MESSAGE,
        slot: Slot | None = None,
        worker_id: str = "",
    ) -> Begin:
        """Start a send of `phase` (the message, or the disclosure before it). Not its
        conversation's turn: the job is re-queued at `park_until_ms` (the caller must then
        leave the queue score alone: `Retry(defer=None)`). `slot`: the send's place in its
        rate window, taken in the same call (`wait` when the window is full; an `ambiguous`
        answer has taken it, so its take-over passes none). `worker_id`: the job is listed
        as running on that worker (whatever the answer) until `finish` or the caller drops it.
        """
        reply = await self._begin(
            keys=[self._keys.record(key), self._keys.queue],
            args=[
                int(lease_s * 1000), owner, "1" if take_over else "0", key, park_until_ms,
                self._keys.prefix, phase, worker_id,
                *(slot.args() if slot is not None else [""]),
            ],
        )  # fmt: skip
        verdict, detail = _s(reply[0]), _s(reply[1])
        if verdict == "go":
            in_window = _s(reply[2]) if len(reply) > 2 else ""
            at_ms = _s(reply[3]) if len(reply) > 3 else ""
            return Begin(
                "go",
                attempt=int(detail),
                sends_in_window=int(in_window) if in_window else None,
                at_ms=int(at_ms) if at_ms else None,
            )
        if verdict == "busy":
            return Begin("busy", retry_in_s=int(detail) / 1000)
        if verdict == "wait":
            return Begin("wait", retry_in_s=max(int(detail), 1) / 1000)
        if verdict != "ambiguous":
            return _preflight_verdict(verdict, detail)
        return Begin(
            "ambiguous",
            attempt=int(detail),
            sending_since_ms=int(_s(reply[2])),
            ambiguous_for_s=int(_s(reply[3])) / 1000,
        )

    async def unconfirm(self, key: str, owner: str, *, phase: Phase = MESSAGE) -> None:
        """Mark this run's send as unconfirmed (left, unanswered) for reconciliation."""
        await self._unconfirm(keys=[self._keys.record(key)], args=[owner, phase])

    async def mark_ambiguous(self, key: str) -> None:
        """Count an ambiguous send on the record and fleet-wide."""
        await self.count(key, "ambiguous", fleet_field="ambiguous_sends")

    async def count(self, key: str, field: str, *, fleet_field: str = "") -> int:
        """Add one to a count on the record (and to a fleet-wide counter); -1 if the record
        is gone (it is not re-created: it would live on without a TTL)."""
        reply = await self._count(
            keys=[self._keys.record(key), self._keys.counters], args=[field, fleet_field]
        )
        return int(reply)

    async def release(
        self, key: str, owner: str, *, count_failure: bool, phase: Phase = MESSAGE
    ) -> int:
        """The send did not happen: back to `retrying`. Returns transient failures so far."""
        reply = await self._release(
            keys=[self._keys.record(key)], args=[owner, "1" if count_failure else "0", phase]
        )
        return int(reply)

    async def decide_disclosure(
        self, key: str, *, park_until_ms: int, lapse_ms: int, user: str
    ) -> Begin:
        """Decide once whether this intent's message needs the disclosure first: `Begin` with
        verdict `decided` and `state` `queued` (its trigger in `trigger`), `none` or `sent`;
        or a preflight verdict (`gone`, `done`, `not_its_turn`, `window_closed`)."""
        reply = await self._decide(
            keys=[self._keys.record(key), self._keys.queue],
            args=[key, park_until_ms, self._keys.prefix, lapse_ms, user],
        )
        verdict = _s(reply[0])
        if verdict != "decided":
            return _preflight_verdict(verdict, _s(reply[1]))
        return Begin("decided", state=_s(reply[1]), trigger=_s(reply[2]) or None)

    async def settle_disclosure(self, key: str, *, mid: str | None, user: str) -> None:
        """The disclosure was sent: keep it with the record, claim its echo, move the
        conversation's state on (at most once)."""
        await self._settle(keys=[self._keys.record(key)], args=[self._keys.prefix, mid or "", user])

    async def disclosure_trigger(self, key: str) -> str | None:
        raw = await resolve(self._redis.hget(self._keys.record(key), "d_trigger"))
        return None if raw is None else _s(raw)

    async def disclosure(self, key: str) -> DisclosureInfo | None:
        """The disclosure sent before this intent's message, if one was."""
        raw = await resolve(
            self._redis.hmget(
                self._keys.record(key), ["d_state", "d_trigger", "d_mid", "d_sent_ms"]
            )
        )
        state, trigger, mid, sent_ms = (None if v is None else _s(v) for v in raw)
        if state != "sent" or trigger is None:
            return None
        sent_at = None if not sent_ms else datetime.fromtimestamp(int(sent_ms) / 1000, UTC)
        return DisclosureInfo(trigger=trigger, message_id=mid or None, sent_at=sent_at)

    async def finish(
        self,
        outcome: Outcome,
        intent_json: str,
        *,
        keep_conversation: bool = False,
        worker_id: str = "",
        retire_job: bool = False,
    ) -> bool:
        """Publish the one terminal outcome; False if the intent already had one.
        `keep_conversation`: a sent message moves its conversation's disclosure state on.
        `worker_id`: the job leaves that worker's running list (either way).
        `retire_job`: the caller is the intent's own ARQ job, whose keys and queue entry go
        in the same call (either way; ARQ's finish is then skipped, worker/arq_worker.py)."""
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
                intent_json if dead else "",  # only a dead letter keeps the intent
                self._keys.prefix,
                self._dlq_maxlen,
                outcome.message_id or "",
                outcome.recipient_id or "",
                "1" if keep_conversation else "",
                worker_id,
                "1" if retire_job else "",
            ],
        )
        return bool(int(reply))

    async def dead_letter_unkeyed(self, outcome_json: str, raw: str) -> None:
        """Dead-letter input whose key cannot be read (nothing else can record it)."""
        await self._dead_letter_only(
            keys=[self._keys.dead_letters], args=[self._dlq_maxlen, outcome_json, raw]
        )
