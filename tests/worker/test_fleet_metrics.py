"""The fleet's gauges: one worker at a time (a lease) computes them for the whole fleet and
only that worker serves them; when it stops, another takes over. Their numbers are Redis's
facts (queue, DLQ, pauses, heartbeats, the enqueue script's counters). In process, real
Redis."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from ig_outbound.producers.redis_util import resolve
from ig_outbound.worker.fleet import Fleet
from ig_outbound.worker.fleet_metrics import FLEET_METRICS, FleetCollector, FleetMetrics
from ig_outbound.worker.refresher import AccountStates
from tests.worker.conftest import ACCOUNT, JobBench, in_seconds

STATES = AccountStates({"active": 2, "needs_reauth": 1}, expiring_soon=1)


async def _states(now_ms: int) -> AccountStates:
    return STATES


def _fleet_metrics(bench: JobBench, owner: str) -> tuple[FleetMetrics, FleetCollector]:
    collector = FleetCollector()
    fleet = Fleet(bench.redis, bench.keys)
    tuning = bench.services.settings.worker
    return FleetMetrics(bench.redis, bench.keys, fleet, _states, owner, tuning, collector), (
        collector
    )


def _page(collector: FleetCollector) -> str:
    registry = CollectorRegistry()
    registry.register(collector)
    return generate_latest(registry).decode()


async def test_one_worker_serves_the_fleet_and_another_takes_over_when_it_stops(
    bench: JobBench,
) -> None:
    first, first_page = _fleet_metrics(bench, "worker-a")
    second, second_page = _fleet_metrics(bench, "worker-b")
    assert await first.step() is True
    assert await second.step() is False
    assert "ig_outbound_queue_ready" in _page(first_page)
    assert _page(second_page) == ""  # never doubled: the other serves nothing
    await first.stop()
    assert _page(first_page) == ""
    assert await second.step() is True
    assert "ig_outbound_queue_ready" in _page(second_page)
    # The first comes back: the lease is taken, it serves nothing.
    assert await first.step() is False


async def test_the_numbers_are_the_fleets(bench: JobBench) -> None:
    await bench.enqueue("now-1")
    await bench.enqueue("later", not_before=in_seconds(3600))
    await bench.client.enqueue_many(
        [
            {"idempotency_key": "bad", "account_id": ACCOUNT},  # refused by the client
            {
                "idempotency_key": "nobody",
                "account_id": "999",
                "recipient": {"id": "1"},
                "content": {"kind": "sticker"},
            },
        ]
    )
    await resolve(bench.redis.set(bench.keys.pause(ACCOUNT), "token_invalid", px=60_000))
    await resolve(bench.redis.set(bench.keys.slow(ACCOUNT), "1", px=60_000))
    await resolve(bench.redis.xadd(bench.keys.dead_letters, {"key": "x", "status": "failed"}))
    fleet = Fleet(bench.redis, bench.keys)
    await fleet.heartbeat("worker-a")
    await fleet.heartbeat("worker-b")
    metrics, collector = _fleet_metrics(bench, "worker-a")
    assert await metrics.step()
    page = _page(collector)
    # "later" is the conversation's second intent: parked at its deadline, due later.
    for line in (
        "ig_outbound_queue_ready 1.0",
        "ig_outbound_queue_scheduled 1.0",
        "ig_outbound_dead_letters 1.0",
        'ig_outbound_accounts_paused{cause="token_invalid"} 1.0',
        "ig_outbound_accounts_slowed 1.0",
        "ig_outbound_workers_live 2.0",
        'ig_outbound_accounts{state="needs_reauth"} 1.0',
        "ig_outbound_tokens_expiring_soon 1.0",
        "ig_outbound_intents_enqueued_total 2.0",
        'ig_outbound_intents_refused_total{reason="invalid"} 1.0',
        'ig_outbound_intents_refused_total{reason="unknown_account"} 1.0',
    ):
        assert line in page, (line, page)
    served = {
        line.split("{")[0].split(" ")[0]
        for line in page.splitlines()
        if line and not line.startswith("#")
    }
    assert served == set(FLEET_METRICS)


async def test_the_oldest_ready_age_and_stale_workers(bench: JobBench) -> None:
    await bench.enqueue("old")
    now_ms = int((await resolve(bench.redis.time()))[0]) * 1000
    await resolve(bench.redis.zadd(bench.keys.queue, {bench.keys.job_id("old"): now_ms - 90_000}))
    await resolve(bench.redis.zadd(bench.keys.workers, {"gone": now_ms - 3_600_000}))
    fleet = Fleet(bench.redis, bench.keys)
    snapshot = await fleet.read(heartbeat_stale_s=15)
    assert 89 <= snapshot.oldest_ready_age_s <= 92
    assert snapshot.workers == 0  # a stale heartbeat is no live worker
    assert await fleet.reclaim(heartbeat_stale_s=15) == (1, 0)  # and reclaiming forgets it
    assert await resolve(bench.redis.zcard(bench.keys.workers)) == 0
