"""The books of the inbound loop, read from Redis: what the gateway put on the inbound
stream, which replies the auto-responder's rule owes for it, and their outcomes. Shared by
the demo and the tests of the loop."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ig_outbound.producers.examples.auto_responder import replies_for
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.outcome import Outcome

# Events our own account caused: Instagram tells us about them, nobody answers them.
BUSINESS_TYPES = frozenset({"echo"})


@dataclass(frozen=True)
class InboundEntry:
    """One entry of the inbound stream (docs/inbound.md)."""

    entry_id: str
    type: str
    account: str
    user: str
    timestamp_ms: int  # when it happened (Meta's time)
    event_id: str
    event: dict[str, Any]

    @property
    def recorded_ms(self) -> int:
        """When the gateway recorded it (Redis's time, from the entry id)."""
        return int(self.entry_id.split("-", 1)[0])


class InboundTail:
    """Reads the inbound stream incrementally: `read()` adds the entries since the last
    call to `entries` and returns them all."""

    def __init__(self, db: Any, stream: str) -> None:
        self.db, self.stream = db, stream  # a decoded sync client
        self.entries: list[InboundEntry] = []
        self._last = "-"

    def read(self, count: int = 5000) -> list[InboundEntry]:
        while True:
            start = "-" if self._last == "-" else f"({self._last}"
            batch = self.db.xrange(self.stream, min=start, max="+", count=count)
            if not batch:
                return self.entries
            self.entries.extend(_entry(entry_id, fields) for entry_id, fields in batch)
            self._last = batch[-1][0]


def _entry(entry_id: str, fields: dict[str, str]) -> InboundEntry:
    return InboundEntry(
        entry_id=entry_id,
        type=fields.get("type", ""),
        account=fields.get("account", ""),
        user=fields.get("user", ""),
        timestamp_ms=int(fields.get("timestamp_ms") or 0),
        event_id=fields.get("event_id", ""),
        event=json.loads(fields.get("event") or "{}"),
    )


def user_events(entries: Iterable[InboundEntry]) -> list[InboundEntry]:
    """What users did (not what our accounts did: echoes)."""
    return [e for e in entries if e.type not in BUSINESS_TYPES and not e.event.get("from_business")]


def reply_keys(entries: Iterable[InboundEntry]) -> list[str]:
    """The idempotency keys of every reply the auto-responder's rule owes these events."""
    return [i["idempotency_key"] for e in entries for i in replies_for(e.event)]


def read_outcomes(
    db: Any, keys: Keys, idempotency_keys: Sequence[str], chunk: int = 1000
) -> tuple[dict[str, Outcome | None], list[str]]:
    """Per key with a record: its outcome (None while pending); and the keys with no
    record (never accepted: refused at enqueue, or not enqueued yet)."""
    outcomes: dict[str, Outcome | None] = {}
    missing: list[str] = []
    for i in range(0, len(idempotency_keys), chunk):
        part = idempotency_keys[i : i + chunk]
        with db.pipeline(transaction=False) as pipe:
            for key in part:
                pipe.hmget(keys.record(key), "state", "outcome")
            rows = pipe.execute()
        for key, (state, outcome) in zip(part, rows, strict=True):
            if state is None and outcome is None:
                missing.append(key)
            else:
                outcomes[key] = None if outcome is None else Outcome.model_validate_json(outcome)
    return outcomes, missing
