"""The dead-letter queue: list, show, replay and purge dead-lettered intents.

Every `failed`, `rejected`, `expired` and `unknown` outcome is also written to the dead-letter
stream (`Keys.dead_letters`) by the worker, atomically with the outcome (worker/journal.py). An
entry holds `key` (the idempotency key; empty for keyless garbage), `status`, `outcome` (the
`Outcome` JSON) and `intent` (the intent JSON exactly as the job carried it; for input that is
not an intent, the raw payload).

Listing
    `DeadLetters.list` returns the **newest entries first**. Pass the last `entry_id` of a page
    as `after=` to get the next (older) page; `status=` and `key=` filter.

Replay
    A replay re-enqueues the dead-lettered intent through the normal enqueue path
    (`SyncOutboundClient.enqueue_many`), so every check runs again: validation, the unknown
    account check, and every policy the worker applies before sending.

    Key: the replay's idempotency key is derived from the original key and the DLQ entry id,
    ``<key>~r<entry_id>`` (e.g. ``order-42:reply:0~r1718000000000-0``). When that would exceed
    the 200-character key limit it becomes ``<key cut short>~h<16 hex of SHA-256(key)>~r<entry_id>``
    (exactly 200 characters). The key is deterministic, so replaying an entry twice is
    idempotent: the second replay is `duplicate` and queues nothing. The mapping entry id ->
    replay key is kept in the hash `Keys.dead_letter_replays` (shown as `replayed_as`); an
    entry found there is answered `duplicate` (with the replay's current state) without a new
    enqueue. Should the enqueue script answer `conflict` for a derived key (an earlier replay of
    the same entry whose deadline rule came out differently), that too is the earlier replay:
    `duplicate`. A replay that dead-letters again can itself be replayed (``k~r<id1>~r<id2>``).

    Content: the intent keeps its content, recipient, options and `metadata` unchanged; only
    the idempotency key changes, and deadlines that have already passed.

    Deadlines: a replay is a new intent enqueued now. A `not_after` (deadline) that has already
    passed is dropped, so the default deadline (`default_deadline_s`) counts from the replay, as
    for any intent without one; otherwise a replay of an `expired` dead letter would expire
    again at once. A `not_before` in the past is dropped too (it would be a no-op). A
    `not_after` or `not_before` still in the future is kept: the producer's limits still hold.
    `window_hint` is kept; the window policy decides again.

    Beware: replaying an `unknown` (ambiguous) dead letter may deliver the message twice if the
    original send did reach Graph; that is the operator's call.

    Refusals: an entry that cannot be replayed yields a `ReplayResult` with status `refused`
    and a machine-readable `error` (``{"error": <code>, "message": ..., ...}``); nothing else
    happens; the other entries of the batch are replayed all the same. Codes:
    `invalid_entry_id` (not `<ms>-<seq>` of two unsigned 64-bit numbers, or refused by
    Redis), `unknown_entry` (no such entry), `no_key` (keyless garbage: nothing to replay),
    `bad_job` (a quarantined job, not an intent), `invalid_intent` (with `problems`, as at
    enqueue), `unknown_account` (no worker holds a token for the account).

    Dry run: runs the same checks read-only and answers `would_queue`, `duplicate` or
    `refused`; nothing is written.

Purge
    `purge` removes entries by id (XDEL), all of them, or those older than a duration
    (XTRIM MINID against Redis' clock), together with their replay bookkeeping. It never
    touches idempotency records or replayed intents. A replay writes its bookkeeping only
    while its entry still exists (one script), so a purge racing a replay leaves no mapping
    of a removed entry behind.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

import redis
from pydantic import ValidationError

from ig_outbound.producers.connection import connect_sync
from ig_outbound.producers.enqueue import SyncOutboundClient
from ig_outbound.producers.errors import IdempotencyConflictError, IntentError
from ig_outbound.producers.intent import MAX_IDEMPOTENCY_KEY, MessageIntent
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.outcome import Outcome
from ig_outbound.producers.scripts import SCRIPTS
from ig_outbound.producers.settings import ClientSettings, get_client_settings
from ig_outbound.producers.validation import parse_intent
from ig_outbound.producers.wire import BAD_JOB_MARKER

ALL: Final = "all"
"""Pass as `entry_ids` to replay or purge every entry."""

Selection = Iterable[str] | Literal["all"]
ReplayStatus = Literal["queued", "duplicate", "refused", "would_queue"]

_ENTRY_ID = re.compile(r"\d{1,20}-\d{1,20}")
# Each half of a stream id is an unsigned 64-bit number: Redis refuses anything larger.
_MAX_ID_PART = 2**64 - 1
_PAGE = 500


def _s(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _id_tuple(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def entry_order(entry_id: str) -> tuple[int, int]:
    """Sort key of an entry id (time, then sequence): to merge lists of several streams."""
    return _id_tuple(entry_id) if valid_entry_id(entry_id) else (0, 0)


def valid_entry_id(entry_id: str) -> bool:
    """True for a full stream entry id (`<ms>-<seq>`, each part an unsigned 64-bit number)."""
    if _ENTRY_ID.fullmatch(entry_id) is None:
        return False
    return max(_id_tuple(entry_id)) <= _MAX_ID_PART


def _check_entry_id(entry_id: str) -> str:
    if not valid_entry_id(entry_id):
        raise ValueError(f"not a stream entry id (<ms>-<seq>): {entry_id[:60]!r}")
    return entry_id


def replay_key(key: str, entry_id: str) -> str:
    """The deterministic idempotency key of the replay of DLQ entry `entry_id` of `key`."""
    plain = f"{key}~r{entry_id}"
    if len(plain) <= MAX_IDEMPOTENCY_KEY:
        return plain
    suffix = f"~h{hashlib.sha256(key.encode()).hexdigest()[:16]}~r{entry_id}"
    return key[: MAX_IDEMPOTENCY_KEY - len(suffix)] + suffix


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered intent. `intent` is the parsed JSON object if it is one, else the
    raw text; `key` is None for keyless garbage; `replayed_as` is the replay's key."""

    entry_id: str
    key: str | None
    status: str
    reason: str | None
    outcome: Outcome | None
    intent: dict[str, Any] | str
    replayed_as: str | None = None

    @property
    def dead_lettered_at(self) -> datetime:
        """When it was dead-lettered (the stream id's time, Redis' clock)."""
        return datetime.fromtimestamp(_id_tuple(self.entry_id)[0] / 1000, UTC)

    def as_dict(self) -> dict[str, Any]:
        return {
            "entry_id": self.entry_id,
            "dead_lettered_at": self.dead_lettered_at.isoformat(),
            "key": self.key,
            "status": self.status,
            "reason": self.reason,
            "replayed_as": self.replayed_as,
            "outcome": self.outcome.model_dump(mode="json") if self.outcome else None,
            "intent": self.intent,
        }


@dataclass(frozen=True)
class ReplayResult:
    """What a replay did with one entry (see the module docstring for statuses and codes)."""

    entry_id: str
    status: ReplayStatus
    original_key: str | None = None
    new_key: str | None = None
    job_id: str | None = None
    state: str | None = None
    error: dict[str, Any] | None = None
    intent: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.status != "refused"

    def as_dict(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "entry_id": self.entry_id,
            "status": self.status,
            "original_key": self.original_key,
            "new_key": self.new_key,
        }
        if self.job_id is not None:
            row["job_id"] = self.job_id
        if self.state is not None:
            row["state"] = self.state
        if self.error is not None:
            row["error"] = self.error
        if self.intent is not None:
            row["intent"] = self.intent
        return row


def _refused(
    entry_id: str, code: str, message: str, key: str | None = None, **extra: Any
) -> ReplayResult:
    error = {"error": code, "message": message, **extra}
    return ReplayResult(entry_id=entry_id, status="refused", original_key=key, error=error)


def _parse_entry(entry_id: object, raw_fields: Any) -> DeadLetter:
    fields = {_s(k): _s(v) for k, v in dict(raw_fields or {}).items()}
    outcome: Outcome | None = None
    if "outcome" in fields:
        try:
            outcome = Outcome.model_validate_json(fields["outcome"])
        except ValidationError:
            outcome = None
    text = fields.get("intent", "")
    intent: dict[str, Any] | str = text
    try:
        loaded = json.loads(text)
    except ValueError:
        loaded = None
    if isinstance(loaded, dict):
        intent = loaded
    return DeadLetter(
        entry_id=_s(entry_id),
        key=fields.get("key") or None,
        status=fields.get("status", ""),
        reason=outcome.reason if outcome else None,
        outcome=outcome,
        intent=intent,
    )


class DeadLetters:
    """The dead-letter stream of one key prefix (sync; built on `redis.Redis`)."""

    def __init__(self, client: redis.Redis, settings: ClientSettings | None = None) -> None:
        self.settings = settings or get_client_settings()
        self.keys = Keys(self.settings.key_prefix)
        self._redis = client
        self._note_replay = client.register_script(SCRIPTS["dead_letter_replayed"].source)

    @classmethod
    def connect(cls, url: str | None = None, settings: ClientSettings | None = None) -> DeadLetters:
        settings = settings or get_client_settings()
        return cls(connect_sync(settings, url), settings)

    def close(self) -> None:
        self._redis.close()

    def __enter__(self) -> DeadLetters:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reading ----------------------------------------------------------------------------

    def list(
        self,
        count: int = 50,
        status: str | None = None,
        after: str | None = None,
        key: str | None = None,
    ) -> builtins.list[DeadLetter]:
        """Up to `count` entries, newest first, older than entry id `after` if given, with
        this `status` / idempotency `key` if given."""
        if after is not None:
            _check_entry_id(after)
        if count < 1:
            return []
        page = count if status is None and key is None else max(count, _PAGE)
        upper = "+" if after is None else f"({after}"
        found: builtins.list[DeadLetter] = []
        while len(found) < count:
            batch: Any = self._redis.xrevrange(self.keys.dead_letters, upper, "-", count=page)
            for entry_id, fields in batch:
                letter = _parse_entry(entry_id, fields)
                if (status is None or letter.status == status) and (
                    key is None or letter.key == key
                ):
                    found.append(letter)
                    if len(found) == count:
                        break
            if len(batch) < page:
                break
            upper = f"({_s(batch[-1][0])}"
        return self._with_replays(found)

    def show(self, entry_id: str) -> DeadLetter | None:
        """One entry by its stream id, or None if there is none."""
        _check_entry_id(entry_id)
        found: Any = self._redis.xrange(self.keys.dead_letters, entry_id, entry_id, count=1)
        if not found:
            return None
        return self._with_replays([_parse_entry(*found[0])])[0]

    def _iter_all(self) -> Iterator[DeadLetter]:
        """Every entry there is now, oldest first, page by page (not the entries added while
        iterating: a replay that dead-letters again is not replayed in the same run)."""
        last: Any = self._redis.xrevrange(self.keys.dead_letters, "+", "-", count=1)
        if not last:
            return
        upper, lower = _s(last[0][0]), "-"
        while True:
            batch: Any = self._redis.xrange(self.keys.dead_letters, lower, upper, count=_PAGE)
            letters = [_parse_entry(i, f) for i, f in batch]
            yield from self._with_replays(letters)
            if len(batch) < _PAGE:
                return
            lower = f"({_s(batch[-1][0])}"

    def _with_replays(self, letters: builtins.list[DeadLetter]) -> builtins.list[DeadLetter]:
        if not letters:
            return letters
        raw: Any = self._redis.hmget(
            self.keys.dead_letter_replays, [letter.entry_id for letter in letters]
        )
        return [
            DeadLetter(
                entry_id=letter.entry_id,
                key=letter.key,
                status=letter.status,
                reason=letter.reason,
                outcome=letter.outcome,
                intent=letter.intent,
                replayed_as=None if value is None else _s(value),
            )
            for letter, value in zip(letters, raw, strict=True)
        ]

    def _fetch(self, entry_ids: builtins.list[str]) -> builtins.list[DeadLetter | ReplayResult]:
        """The entries by id, in order; a refusal for a bad or unknown id."""
        out: builtins.list[DeadLetter | ReplayResult] = []
        for entry_id in entry_ids:
            if not valid_entry_id(entry_id):
                out.append(_refused(entry_id, "invalid_entry_id", "not a stream entry id"))
                continue
            try:
                letter = self.show(entry_id)
            except redis.ResponseError as exc:  # one id Redis refuses must not sink the rest
                message = f"Redis refused the entry id: {str(exc)[:200]}"
                out.append(_refused(entry_id, "invalid_entry_id", message))
                continue
            out.append(
                letter
                if letter is not None
                else _refused(entry_id, "unknown_entry", "no such dead-letter entry")
            )
        return out

    # --- replay -----------------------------------------------------------------------------

    def replay(self, entry_ids: Selection, *, dry_run: bool = False) -> builtins.list[ReplayResult]:
        """Re-enqueue dead-lettered intents (see the module docstring); one result per entry,
        in order (`ALL`: every entry, oldest first)."""
        if entry_ids == ALL:
            letters: Iterable[DeadLetter | ReplayResult] = self._iter_all()
        else:
            ids = [entry_ids] if isinstance(entry_ids, str) else builtins.list(entry_ids)
            letters = self._fetch(ids)
        results: builtins.list[ReplayResult] = []
        chunk: builtins.list[tuple[DeadLetter, MessageIntent]] = []
        for item in letters:
            planned = item if isinstance(item, ReplayResult) else self._plan(item)
            if isinstance(planned, ReplayResult):
                results.extend(self._run(chunk, dry_run))
                chunk = []
                results.append(planned)
                continue
            assert isinstance(item, DeadLetter)
            chunk.append((item, planned))
            if len(chunk) >= _PAGE:
                results.extend(self._run(chunk, dry_run))
                chunk = []
        results.extend(self._run(chunk, dry_run))
        return results

    def _plan(self, letter: DeadLetter) -> MessageIntent | ReplayResult:
        """The intent to enqueue for this entry, or why there is none."""
        eid, key = letter.entry_id, letter.key
        if key is None:
            return _refused(eid, "no_key", "keyless garbage: there is no intent to replay")
        if letter.replayed_as is not None:
            return ReplayResult(
                entry_id=eid,
                status="duplicate",
                original_key=key,
                new_key=letter.replayed_as,
                state=self._state(letter.replayed_as),
            )
        raw = letter.intent
        if not isinstance(raw, dict):
            return _refused(eid, "invalid_intent", "the dead letter holds no JSON object", key)
        if BAD_JOB_MARKER in raw:
            reason = str(raw[BAD_JOB_MARKER])[:300]
            return _refused(eid, "bad_job", f"a quarantined job, not an intent: {reason}", key)
        new_key = replay_key(key, eid)
        try:
            intent = parse_intent({**raw, "idempotency_key": new_key})
        except IntentError as exc:
            problems = [p.as_dict() for p in exc.problems]
            return _refused(eid, "invalid_intent", str(exc), key, problems=problems)
        return _drop_past_limits(intent, datetime.now(UTC))

    def _run(
        self, chunk: builtins.list[tuple[DeadLetter, MessageIntent]], dry_run: bool
    ) -> builtins.list[ReplayResult]:
        if not chunk:
            return []
        if dry_run:
            return [self._check(letter, intent) for letter, intent in chunk]
        client = SyncOutboundClient(self._redis, self.settings)
        answers = client.enqueue_many([intent for _, intent in chunk])
        results: builtins.list[ReplayResult] = []
        for (letter, intent), answer in zip(chunk, answers, strict=True):
            new_key = intent.idempotency_key
            base = ReplayResult(
                entry_id=letter.entry_id,
                status="refused",
                original_key=letter.key,
                new_key=new_key,
                intent=intent.model_dump(mode="json"),
            )
            if answer.status == "queued":
                result = replace(base, status="queued", job_id=answer.job_id)
            elif answer.status == "duplicate" or isinstance(answer.error, IdempotencyConflictError):
                result = replace(base, status="duplicate", state=self._state(new_key))
            else:
                error = answer.error.as_dict() if answer.error else {"error": "refused"}
                results.append(replace(base, error=error))
                continue
            self._remember(letter.entry_id, new_key)
            results.append(result)
        return results

    def _remember(self, entry_id: str, new_key: str) -> None:
        """Map the entry to its replay, only if the entry is still there: a purge since the
        replay was planned removed it and its mapping, and must not leave one behind."""
        self._note_replay(
            keys=[self.keys.dead_letters, self.keys.dead_letter_replays], args=[entry_id, new_key]
        )

    def _check(self, letter: DeadLetter, intent: MessageIntent) -> ReplayResult:
        """A dry run: the enqueue script's decisions, read-only."""
        new_key = intent.idempotency_key
        base = ReplayResult(
            entry_id=letter.entry_id,
            status="would_queue",
            original_key=letter.key,
            new_key=new_key,
            intent=intent.model_dump(mode="json"),
        )
        state = self._state(new_key)
        if state is not None:
            return replace(base, status="duplicate", state=state)
        if not self._redis.sismember(self.keys.accounts, intent.account_id):
            message = f"no worker holds a token for account {intent.account_id!r}"
            return replace(
                base, status="refused", error={"error": "unknown_account", "message": message}
            )
        return base

    def _state(self, key: str) -> str | None:
        raw: Any = self._redis.hget(self.keys.record(key), "state")
        return None if raw is None else _s(raw)

    # --- purge ------------------------------------------------------------------------------

    def purge(
        self, entry_ids: Selection | None = None, *, older_than: timedelta | None = None
    ) -> int:
        """Remove entries by id, all (`ALL`), or those dead-lettered more than `older_than`
        ago, with their replay bookkeeping. Returns how many entries were removed."""
        if (entry_ids is None) == (older_than is None):
            raise ValueError("give entry ids, ALL, or older_than (exactly one)")
        stream, replays = self.keys.dead_letters, self.keys.dead_letter_replays
        if older_than is not None:
            return self._purge_older_than(older_than)
        if entry_ids == ALL:
            with self._redis.pipeline(transaction=True) as pipe:
                pipe.xtrim(stream, maxlen=0, approximate=False)
                pipe.delete(replays)
                removed, _ = pipe.execute()
            return int(removed)
        assert entry_ids is not None
        ids = [entry_ids] if isinstance(entry_ids, str) else builtins.list(entry_ids)
        for entry_id in ids:
            _check_entry_id(entry_id)
        if not ids:
            return 0
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.xdel(stream, *ids)
            pipe.hdel(replays, *ids)
            removed, _ = pipe.execute()
        return int(removed)

    def _purge_older_than(self, older_than: timedelta) -> int:
        if older_than < timedelta(0):
            raise ValueError("older_than must not be negative")
        clock: Any = self._redis.time()
        seconds, micros = clock
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        cutoff_ms = max(now_ms - int(older_than / timedelta(milliseconds=1)), 0)
        removed: Any = self._redis.xtrim(
            self.keys.dead_letters, minid=f"{cutoff_ms}-0", approximate=False
        )
        # Bookkeeping of older entries (also of entries the worker's MAXLEN trimmed away).
        stale = [
            _s(name)
            for name, _ in self._redis.hscan_iter(self.keys.dead_letter_replays, count=500)
            if valid_entry_id(_s(name)) and _id_tuple(_s(name))[0] < cutoff_ms
        ]
        for start in range(0, len(stale), _PAGE):
            self._redis.hdel(self.keys.dead_letter_replays, *stale[start : start + _PAGE])
        return int(removed)


def _drop_past_limits(intent: MessageIntent, now: datetime) -> MessageIntent:
    """The deadline rule of a replay: drop a `not_after` / `not_before` already passed."""
    changes: dict[str, Any] = {}
    if intent.not_after is not None and intent.not_after <= now:
        changes["not_after"] = None
    if intent.not_before is not None and intent.not_before <= now:
        changes["not_before"] = None
    if not changes:
        return intent
    return parse_intent({**intent.model_dump(mode="json"), **changes})
