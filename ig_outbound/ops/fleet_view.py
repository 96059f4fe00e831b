"""What `ig-outbound top` shows, as numbers (no rendering): the fleet's state
(`worker/fleet.py`, one script call) and the outcomes of the last window, read from the
outcomes stream and digested: counts by status, the send rate, the commonest failure reasons,
the busiest accounts against their rate class's limit, and latency percentiles.

The window is measured on Redis's clock: stream entry ids are `<ms>-<seq>` stamped by Redis,
so the window is `XREVRANGE outcomes + <now_ms - window_ms>`, newest first and capped at
`max_entries` so that a huge stream never stalls a refresh. When the cap is hit the rates are
measured over the span actually read (`measured_s`, `truncated`), never over the whole window
(they would read low). Entries that cannot be understood are skipped and counted (`skipped`).

With shards (docs/scaling.md) each shard is read alike (`sample_shards`): the view's figures
are the totals over every shard (counts summed, the oldest ready age the largest, rates over
the shortest span read, percentiles and busiest accounts over every shard's outcomes), and
`shards` holds one row per shard.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from ig_outbound.producers.intent import RECIPIENT_COMMENT_PREFIX
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.outcome import OutcomeStatus
from ig_outbound.producers.rate_class import RateClass, rate_class
from ig_outbound.worker.fleet import Fleet, FleetSnapshot
from ig_outbound.worker.settings import RateSettings, Settings

MAX_ENTRIES = 50_000
FAILURE_REASONS = 5
STATUSES: tuple[str, ...] = tuple(status.value for status in OutcomeStatus)
_SENT = OutcomeStatus.SENT.value


@dataclass(frozen=True)
class AccountRate:
    """One account's sends in one rate class over the window, against that class's limit."""

    account_id: str
    rate_class: RateClass
    sent: int
    per_s: float
    limit_per_s: float

    @property
    def utilisation_pct(self) -> float:
        return 100 * self.per_s / self.limit_per_s

    def as_dict(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "rate_class": self.rate_class.value,
            "sent": self.sent,
            "per_s": round(self.per_s, 3),
            "limit_per_s": round(self.limit_per_s, 3),
            "utilisation_pct": round(self.utilisation_pct, 1),
        }


@dataclass(frozen=True)
class FleetView:
    """One sample of the fleet: its state now and its outcomes over the last window."""

    prefix: str
    snapshot: FleetSnapshot
    window_s: float  # asked for
    measured_s: float  # what the rates are over: the window, or less when `truncated`
    read: int  # stream entries read
    skipped: int  # of those, entries that could not be understood
    truncated: bool  # the read hit its cap: older entries of the window were not read
    outcomes: dict[str, int]  # status -> count, every status present
    failure_reasons: list[tuple[str, int]]  # the commonest, most first
    busiest: list[AccountRate]
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    shards: tuple[ShardRow, ...] = ()  # one per shard when there are shards

    @property
    def sent(self) -> int:
        return self.outcomes[_SENT]

    @property
    def send_rate_per_s(self) -> float:
        return self.sent / self.measured_s

    def as_dict(self) -> dict[str, Any]:
        """Stable keys, rounded numbers (for `ig-outbound top --json`)."""
        return {
            "prefix": self.prefix,
            **self.snapshot.as_dict(),
            "window_s": self.window_s,
            "measured_s": round(self.measured_s, 3),
            "read": self.read,
            "skipped": self.skipped,
            "truncated": self.truncated,
            "outcomes": dict(self.outcomes),
            "send_rate_per_s": round(self.send_rate_per_s, 3),
            "failure_reasons": [{"reason": r, "count": n} for r, n in self.failure_reasons],
            "latency_ms": {"p50": _round(self.latency_p50_ms), "p99": _round(self.latency_p99_ms)},
            "busiest": [row.as_dict() for row in self.busiest],
            **({"shards": [row.as_dict() for row in self.shards]} if self.shards else {}),
        }


@dataclass(frozen=True)
class ShardRow:
    """One shard's part of a view: its state and its outcomes over the window."""

    shard: int
    snapshot: FleetSnapshot
    outcomes: dict[str, int]
    measured_s: float

    @property
    def send_rate_per_s(self) -> float:
        return self.outcomes[_SENT] / self.measured_s

    def as_dict(self) -> dict[str, Any]:
        return {
            "shard": self.shard,
            **self.snapshot.as_dict(),
            "outcomes": dict(self.outcomes),
            "send_rate_per_s": round(self.send_rate_per_s, 3),
        }


@dataclass(frozen=True)
class _Entry:
    """The parts of one outcome the view uses."""

    status: str
    reason: str | None
    account_id: str | None
    rate_class: RateClass
    latency_ms: float | None


async def sample(
    redis: Redis,
    keys: Keys,
    settings: Settings,
    window_s: float,
    busiest: int,
    *,
    max_entries: int = MAX_ENTRIES,
) -> FleetView:
    """The fleet now and its last `window_s` seconds of outcomes, with the `busiest` accounts."""
    return await sample_shards([redis], keys, settings, window_s, busiest, max_entries=max_entries)


@dataclass(frozen=True)
class _Read:
    """What one shard gave: its state and the window's outcome entries."""

    snapshot: FleetSnapshot
    read: int
    truncated: bool
    measured_s: float
    entries: list[_Entry]


async def _read(
    redis: Redis, keys: Keys, settings: Settings, window_s: float, max_entries: int
) -> _Read:
    snapshot = await Fleet(redis, keys).read(settings.worker.heartbeat_stale_s)
    start_ms = snapshot.now_ms - int(window_s * 1000)
    raw = await redis.xrevrange(keys.outcomes, max="+", min=str(start_ms), count=max_entries)
    truncated = len(raw) >= max_entries
    measured_s = window_s
    if truncated:
        oldest_ms = _entry_ms(raw[-1][0])
        if oldest_ms is not None:
            # At least a millisecond: a rate over nothing would divide by zero.
            measured_s = max(snapshot.now_ms - oldest_ms, 1) / 1000
    entries = [e for e in (_parse(fields) for _, fields in raw) if e is not None]
    return _Read(snapshot, len(raw), truncated, measured_s, entries)


async def sample_shards(
    shards: Sequence[Redis],
    keys: Keys,
    settings: Settings,
    window_s: float,
    busiest: int,
    *,
    max_entries: int = MAX_ENTRIES,
) -> FleetView:
    """`sample` over every shard (in shard order): totals, and a row per shard when there
    are more than one."""
    if window_s <= 0 or busiest < 0 or max_entries < 1 or not shards:
        raise ValueError("window_s must be > 0, busiest >= 0, max_entries >= 1, shards given")
    reads = [await _read(r, keys, settings, window_s, max_entries) for r in shards]
    entries = [e for r in reads for e in r.entries]
    measured_s = min(r.measured_s for r in reads)
    rows = tuple(
        ShardRow(i, r.snapshot, _by_status(r.entries), r.measured_s) for i, r in enumerate(reads)
    )
    return FleetView(
        prefix=keys.prefix,
        snapshot=_total([r.snapshot for r in reads]),
        window_s=window_s,
        measured_s=measured_s,
        read=sum(r.read for r in reads),
        skipped=sum(r.read - len(r.entries) for r in reads),
        truncated=any(r.truncated for r in reads),
        outcomes=_by_status(entries),
        failure_reasons=_failure_reasons(entries),
        busiest=_busiest(entries, settings.rate, measured_s, busiest),
        latency_p50_ms=_percentile(entries, 0.50),
        latency_p99_ms=_percentile(entries, 0.99),
        shards=rows if len(rows) > 1 else (),
    )


def _summed(maps: Iterable[dict[str, int]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for mapping in maps:
        total.update(mapping)
    return dict(total)


def _total(snapshots: list[FleetSnapshot]) -> FleetSnapshot:
    """The shards' states as one: counts summed, the oldest ready intent the oldest of all
    (each shard's age on its own clock, measured from the latest clock)."""
    if len(snapshots) == 1:
        return snapshots[0]
    now_ms = max(s.now_ms for s in snapshots)
    oldest_age_ms = max((int(s.oldest_ready_age_s * 1000) for s in snapshots), default=0)
    has_ready = any(s.oldest_ready_ms is not None for s in snapshots)
    return FleetSnapshot(
        now_ms=now_ms,
        ready=sum(s.ready for s in snapshots),
        scheduled=sum(s.scheduled for s in snapshots),
        oldest_ready_ms=now_ms - oldest_age_ms if has_ready else None,
        dead_letters=sum(s.dead_letters for s in snapshots),
        workers=sum(s.workers for s in snapshots),
        paused=_summed(s.paused for s in snapshots),
        slowed=sum(s.slowed for s in snapshots),
        counters=_summed(s.counters for s in snapshots),
    )


def _text(value: object) -> str:
    # redis-py answers bytes unless the client decodes; either may reach here.
    return value.decode() if isinstance(value, bytes) else str(value)


def _entry_ms(entry_id: object) -> int | None:
    try:
        return int(_text(entry_id).split("-", 1)[0])
    except (ValueError, UnicodeDecodeError):
        return None


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _parse(fields: dict[Any, Any]) -> _Entry | None:
    """The outcome of one stream entry, or None when it is not one (never raises)."""
    raw = fields.get(b"outcome", fields.get("outcome"))
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except (ValueError, TypeError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("status") not in STATUSES:
        return None
    recipient = _optional_str(data.get("recipient")) or ""
    return _Entry(
        status=str(data["status"]),
        reason=_optional_str(data.get("reason")),
        account_id=_optional_str(data.get("account_id")),
        rate_class=rate_class(
            _optional_str(data.get("kind")) or "", recipient.startswith(RECIPIENT_COMMENT_PREFIX)
        ),
        latency_ms=_latency(data.get("latency_ms")),
    )


def _latency(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # JSON allows an integer of any size
        return None
    return number if math.isfinite(number) else None


def _by_status(entries: list[_Entry]) -> dict[str, int]:
    counts = Counter(e.status for e in entries)
    return {status: counts.get(status, 0) for status in STATUSES}


def _failure_reasons(entries: list[_Entry]) -> list[tuple[str, int]]:
    """Reasons of every outcome but `sent` (the status when it carries none), commonest
    first, ties by name so the order is stable between refreshes."""
    counts = Counter(e.reason or e.status for e in entries if e.status != _SENT)
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:FAILURE_REASONS]


def limit_per_s(rates: RateSettings, cls: RateClass) -> float:
    """Meta's limit of one account in `cls`, per second (private replies are per hour)."""
    if cls is RateClass.MEDIA:
        return rates.media_per_s
    if cls is RateClass.PRIVATE_REPLY:
        return rates.private_replies_per_h / 3600
    return rates.light_per_s


def _busiest(
    entries: list[_Entry], rates: RateSettings, measured_s: float, accounts: int
) -> list[AccountRate]:
    """The `accounts` accounts closest to a limit (utilisation, then sends, then id), each
    with a row per rate class it sent in, those rows busiest first."""
    sent = Counter((e.account_id, e.rate_class) for e in entries if e.status == _SENT)
    rows = [
        AccountRate(account, cls, n, n / measured_s, limit_per_s(rates, cls))
        for (account, cls), n in sent.items()
        if account is not None
    ]
    rows.sort(key=lambda r: (-r.utilisation_pct, -r.sent, r.account_id, r.rate_class.value))
    chosen: dict[str, int] = {}  # account -> rank, in order of its busiest row
    for row in rows:
        if len(chosen) >= accounts:
            break
        chosen.setdefault(row.account_id, len(chosen))
    return sorted(
        (r for r in rows if r.account_id in chosen), key=lambda r: chosen[r.account_id]
    )  # stable: an account's rows stay busiest first


def _percentile(entries: list[_Entry], q: float) -> float | None:
    """Nearest-rank percentile of the outcomes' latency (None without any)."""
    values = sorted(e.latency_ms for e in entries if e.latency_ms is not None)
    if not values:
        return None
    return values[max(math.ceil(q * len(values)) - 1, 0)]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
