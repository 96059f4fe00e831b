"""The fleet's gauges, computed once per interval for the whole fleet, by one worker.

Queue depth, the oldest ready intent's age, the DLQ's size, accounts by state, live workers
and the intents producers enqueued are facts about Redis, not about one worker: computed by
every worker on every scrape they would cost Redis N times over, and summed over the fleet
they would be counted N times. So one worker at a time (a lease in Redis, like the sweeper's)
reads them every `worker.fleet_metrics_interval_s` in one script call
(`producers/lua/fleet.lua`) and only that worker serves them; the others serve none. When it
dies, another takes the lease within an interval and a half. Across a handover two workers
may briefly serve them (or none): aggregate fleet series with `max`, never `sum`
(deploy/prometheus/alerts.yml and the dashboard do);
`ig_outbound_fleet_metrics_timestamp_seconds` says how fresh they are.

With shards (docs/scaling.md) each shard is a fleet of its own, with its own lease holder:
every fleet series then carries the label `shard` (the shard's index; a deployment without
shards serves no such label), so a total over shards is `sum(max by (shard) (...))` (which
is plain `max` without shards) and a handover still counts once.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import Final

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import REGISTRY, Collector
from redis.asyncio import Redis

from ig_outbound.producers.keys import Keys
from ig_outbound.producers.scripts import LEASE_RELEASE
from ig_outbound.worker.fleet import Fleet, FleetSnapshot
from ig_outbound.worker.lease import hold_lease
from ig_outbound.worker.refresher import AccountStates
from ig_outbound.worker.settings import WorkerTuning

# name -> (type, help, label names). The one definition of the fleet's series: the collector
# serves exactly these, and ig_outbound/ops/catalog.py lists them for the rules and the
# dashboard's checks.
FLEET_METRICS: Final[dict[str, tuple[str, str, tuple[str, ...]]]] = {
    "ig_outbound_queue_ready": (
        "gauge", "Intents due now in the queue (ready to run, waiting for a worker).", ()),
    "ig_outbound_queue_scheduled": (
        "gauge",
        "Intents in the queue due later (a retry's backoff, not_before, a rate slot ahead).",
        ()),
    "ig_outbound_queue_oldest_ready_age_seconds": (
        "gauge", "How long the oldest ready intent has been due (0 when none is ready).", ()),
    "ig_outbound_dead_letters": (
        "gauge", "Entries in the dead-letter stream (failed, rejected, expired, unknown).", ()),
    "ig_outbound_accounts": (
        "gauge",
        "Registry accounts by state: active, paused (fleet-wide pause now), needs_reauth "
        "(Graph refused the token: an operator must add a new one), removed, corrupt.",
        ("state",)),
    "ig_outbound_accounts_paused": (
        "gauge", "Accounts paused fleet-wide now, by cause (the Graph error's reason).",
        ("cause",)),
    "ig_outbound_accounts_slowed": (
        "gauge", "Accounts sending at a reduced rate now (Meta's usage header neared 100 %).",
        ()),
    "ig_outbound_tokens_expiring_soon": (
        "gauge", "Accounts whose token expires within accounts.expiring_soon_s (7 days).", ()),
    "ig_outbound_workers_live": (
        "gauge", "Worker processes whose heartbeat is fresh.", ()),
    "ig_outbound_intents_enqueued_total": (
        "counter", "Intents producers enqueued (any language: counted by the enqueue script).",
        ()),
    "ig_outbound_intents_refused_total": (
        "counter",
        "Intents refused at enqueue, by reason (invalid, unknown_account, account_removed, "
        "window_closed, window_unknown, private_reply_already_sent, conflict, duplicate).",
        ("reason",)),
    "ig_outbound_fleet_metrics_timestamp_seconds": (
        "gauge", "When the fleet's gauges were last computed (Unix time, Redis's clock).", ()),
}  # fmt: skip

# Labels every fleet series carries besides its own when there are shards (a fleet per shard).
FLEET_LABELS: Final[tuple[str, ...]] = ("shard",)


class FleetCollector(Collector):
    """Serves the fleet's series while this worker holds the lease, nothing otherwise."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # scrapes come from the exporter's thread
        self._families: list[Metric] = []

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            return list(self._families)

    def serve(
        self, snapshot: FleetSnapshot, states: AccountStates, shard: str | None = None
    ) -> None:
        _gauge = partial(_family_of, GaugeMetricFamily, shard=shard)
        _counter = partial(_counter_of, shard=shard)
        families = [
            _gauge("ig_outbound_queue_ready", snapshot.ready),
            _gauge("ig_outbound_queue_scheduled", snapshot.scheduled),
            _gauge("ig_outbound_queue_oldest_ready_age_seconds", snapshot.oldest_ready_age_s),
            _gauge("ig_outbound_dead_letters", snapshot.dead_letters),
            _gauge("ig_outbound_accounts", None, {"state": states.counts}),
            _gauge("ig_outbound_accounts_paused", None, {"cause": snapshot.paused}),
            _gauge("ig_outbound_accounts_slowed", snapshot.slowed),
            _gauge("ig_outbound_tokens_expiring_soon", states.expiring_soon),
            _gauge("ig_outbound_workers_live", snapshot.workers),
            _counter("ig_outbound_intents_enqueued_total", snapshot.enqueued),
            _counter("ig_outbound_intents_refused_total", None, {"reason": snapshot.refused}),
            _gauge("ig_outbound_fleet_metrics_timestamp_seconds", snapshot.now_ms / 1000),
        ]
        with self._lock:
            self._families = families

    def clear(self) -> None:
        with self._lock:
            self._families = []


def _help(name: str) -> str:
    return FLEET_METRICS[name][1]


def _counter_of(
    name: str,
    value: float | None,
    by: dict[str, dict[str, int]] | None = None,
    *,
    shard: str | None,
) -> Metric:
    # The family adds `_total` itself.
    return _family_of(
        CounterMetricFamily, name.removesuffix("_total"), value, by, help_of=name, shard=shard
    )


def _family_of(
    kind: type[GaugeMetricFamily] | type[CounterMetricFamily],
    name: str,
    value: float | None,
    by: dict[str, dict[str, int]] | None = None,
    help_of: str | None = None,
    *,
    shard: str | None,
) -> Metric:
    """One family: a single value, or one sample per value of one label (`by`); labelled
    with its shard when there are shards."""
    text = _help(help_of or name)
    extra = [] if shard is None else [shard]
    names = [] if shard is None else list(FLEET_LABELS)
    if by is None:
        if shard is None:
            return kind(name, text, value=value)
        family = kind(name, text, labels=names)
        family.add_metric(extra, value if value is not None else 0)
        return family
    [(label, values)] = by.items()
    family = kind(name, text, labels=[label, *names])
    for label_value, n in sorted(values.items()):
        family.add_metric([label_value, *extra], n)
    return family


# One per process, registered once: the exporter serves the default registry.
COLLECTOR = FleetCollector()
REGISTRY.register(COLLECTOR)


class FleetMetrics:
    """The fleet's metrics loop of one worker: while it holds the lease it reads the fleet's
    state every interval and serves it; without the lease it serves none."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        fleet: Fleet,
        account_states: Callable[[int], Awaitable[AccountStates]],
        owner: str,
        tuning: WorkerTuning,
        collector: FleetCollector = COLLECTOR,
        shard: str | None = None,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._fleet = fleet
        self._account_states = account_states
        self._owner = owner
        self._tuning = tuning
        self._collector = collector
        self._shard = shard
        self._release = redis.register_script(LEASE_RELEASE.source)

    async def step(self) -> bool:
        """One interval: True if this worker computed (and serves) the fleet's metrics."""
        # The lease outlives the interval: the same worker keeps it while it lives; another
        # takes over within an interval and a half after it dies.
        lease_s = self._tuning.fleet_metrics_interval_s * 1.5
        try:
            leader = await hold_lease(self._redis, self._keys.fleet_lease, self._owner, lease_s)
            if not leader:
                self._collector.clear()
                return False
            snapshot = await self._fleet.read(self._tuning.heartbeat_stale_s)
            states = await self._account_states(snapshot.now_ms)
        except Exception:
            self._collector.clear()  # stale fleet numbers mislead more than none
            raise
        self._collector.serve(snapshot, states, self._shard)
        return True

    async def stop(self) -> None:
        """Stop serving, and hand the lease on at once."""
        self._collector.clear()
        await self._release(keys=[self._keys.fleet_lease], args=[self._owner])
