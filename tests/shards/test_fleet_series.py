"""With shards every fleet series carries its shard (each shard's lease holder serves its
own), and the catalog the alerts and the dashboard are checked against says so; without
shards nothing changes."""

from __future__ import annotations

from prometheus_client.core import Metric

from ig_outbound.ops.catalog import label_names
from ig_outbound.worker.fleet import FleetSnapshot
from ig_outbound.worker.fleet_metrics import FLEET_METRICS, FleetCollector
from ig_outbound.worker.refresher import AccountStates
from ig_outbound.worker.settings import Settings

SNAPSHOT = FleetSnapshot(
    now_ms=1_800_000_000_000, ready=3, scheduled=4, oldest_ready_ms=1_799_999_999_000,
    dead_letters=2, workers=1, paused={"throttled": 1}, slowed=0,
    counters={"enqueued": 9, "refused:invalid": 1},
)  # fmt: skip
STATES = AccountStates({"active": 2}, expiring_soon=0)


def _samples(shard: str | None) -> list[tuple[str, dict[str, str]]]:
    collector = FleetCollector()
    collector.serve(SNAPSHOT, STATES, shard)
    metrics: list[Metric] = list(collector.collect())
    return [(s.name, s.labels) for m in metrics for s in m.samples]


def test_with_shards_every_fleet_sample_names_its_shard() -> None:
    samples = _samples("1")
    assert samples and all(labels.get("shard") == "1" for _, labels in samples)
    assert ("ig_outbound_queue_ready", {"shard": "1"}) in samples
    assert ("ig_outbound_accounts_paused", {"cause": "throttled", "shard": "1"}) in samples


def test_without_shards_the_fleet_series_carry_no_shard_label() -> None:
    assert all("shard" not in labels for _, labels in _samples(None))


def test_the_catalog_lists_the_shard_label_of_every_fleet_series() -> None:
    labels = label_names()
    assert all("shard" in labels[name] for name in FLEET_METRICS)


def test_a_worker_labels_its_series_with_the_shard_it_serves() -> None:
    assert Settings().shard_label is None
    two = ["redis://a:6379/0", "redis://b:6379/0"]
    assert Settings(shards=two, worker={"shards": [1]}).shard_label == "1"
