"""Crash recovery in seconds: a live worker takes back the jobs of a worker whose heartbeat
stopped. ARQ's in-progress key (which would hide the job for job timeout + 10 s) goes, and
the dead run's send lease lapses, so the re-run sees an interrupted send (ambiguous), never
a busy one; a live worker's jobs and another run's lease are left alone. In process, real
Redis, the real send job."""

from __future__ import annotations

import zlib
from typing import Any

from ig_outbound.producers.redis_util import resolve
from ig_outbound.worker.fleet import Fleet, ReclaimGate
from tests.worker.conftest import JobBench, ok

STALE_S = 3.0


async def _running(bench: JobBench, worker: str, key: str, owner: str, beat_ago_ms: int) -> None:
    """`worker` runs `key` as `owner` (ARQ's in-progress key set), its last beat long ago."""
    now_ms = int((await resolve(bench.redis.time()))[0]) * 1000
    await resolve(bench.redis.zadd(bench.keys.workers, {worker: now_ms - beat_ago_ms}))
    await resolve(bench.redis.hset(bench.keys.running(worker), key, owner))
    await resolve(bench.redis.set(bench.keys.arq_in_progress(key), "1", px=30_000))


async def _mid_send(bench: JobBench, key: str, owner: str) -> None:
    """The journal as a run that died mid-send left it: `sending`, lease far ahead (each
    key a conversation of its own: none waits for another's turn)."""
    await bench.enqueue(key, recipient={"id": str(zlib.crc32(key.encode()) + 10**15)})
    begin = await bench.services.journal.begin(key, owner, 25.0, park_until_ms=0)
    assert begin.verdict == "go"


async def test_a_dead_workers_send_is_taken_back_and_resent_as_ambiguous(
    bench: JobBench,
) -> None:
    key = "reclaim-me"
    owner = f"{bench.keys.job_id(key)}#1"
    await _mid_send(bench, key, owner)
    await _running(bench, "dead-worker", key, owner, beat_ago_ms=10_000)
    # Without the reclaim the next run would wait for the lease: busy.
    assert (await bench.services.journal.begin(key, "other#2", 25.0, park_until_ms=0)).verdict == (
        "busy"
    )
    assert await Fleet(bench.redis, bench.keys).reclaim(STALE_S) == (1, 1)
    assert not await resolve(bench.redis.exists(bench.keys.arq_in_progress(key)))
    assert not await resolve(bench.redis.exists(bench.keys.running("dead-worker")))
    assert await resolve(bench.redis.zscore(bench.keys.workers, "dead-worker")) is None
    # The re-run sees an interrupted send: ambiguous (the policy resends it, counted).
    again = await bench.services.journal.begin(key, "other#2", 25.0, park_until_ms=0)
    assert again.verdict == "ambiguous"


async def test_a_live_workers_jobs_and_another_runs_lease_are_left_alone(
    bench: JobBench,
) -> None:
    await _mid_send(bench, "alive", f"{bench.keys.job_id('alive')}#1")
    await _running(bench, "live-worker", "alive", f"{bench.keys.job_id('alive')}#1", 500)
    # A dead worker whose job another run has taken over since (a newer owner).
    await _mid_send(bench, "moved-on", f"{bench.keys.job_id('moved-on')}#2")
    await _running(bench, "dead-worker", "moved-on", f"{bench.keys.job_id('moved-on')}#1", 9_000)
    assert await Fleet(bench.redis, bench.keys).reclaim(STALE_S) == (1, 1)
    assert await resolve(bench.redis.exists(bench.keys.arq_in_progress("alive")))
    assert await resolve(bench.redis.hget(bench.keys.running("live-worker"), "alive"))
    for key in ("alive", "moved-on"):  # neither lease touched: both runs are busy still
        begin = await bench.services.journal.begin(key, "x#9", 25.0, park_until_ms=0)
        assert begin.verdict == "busy", key


async def test_a_job_that_fell_out_of_the_queue_is_queued_again(bench: JobBench) -> None:
    key = "lost-queue"
    await bench.enqueue(key)
    await resolve(bench.redis.zrem(bench.keys.queue, bench.keys.job_id(key)))
    await _running(bench, "dead-worker", key, f"{bench.keys.job_id(key)}#1", 60_000)
    await Fleet(bench.redis, bench.keys).reclaim(STALE_S)
    assert await bench.queue_score_ms(key) is not None


async def test_the_send_job_registers_while_it_runs(bench: JobBench) -> None:
    await bench.enqueue("registered")
    seen: list[dict[bytes, bytes]] = []
    running = bench.keys.running(bench.services.worker_id)
    graph = bench.services.graph
    original = graph.send_message

    async def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(await resolve(bench.redis.hgetall(running)))
        return await original(*args, **kwargs)

    graph.send_message = spy  # type: ignore[method-assign]
    bench.graph.script(ok())
    assert await bench.run("registered") == "sent"
    assert seen == [{b"registered": f"{bench.keys.job_id('registered')}#1".encode()}]
    assert await resolve(bench.redis.hgetall(running)) == {}  # gone once it ended


def test_no_worker_judges_others_dead_right_after_redis_was_away() -> None:
    """After an outage every last beat is old: a worker reclaims only once its own beats have
    gone through for longer than the staleness (every live worker has beaten again by then)."""
    gate = ReclaimGate(stale_s=3.0, interval_s=1.0)
    assert not gate.open(0.0)  # never beaten: it cannot know
    for t in (0.0, 1.0, 2.0, 3.0):
        gate.beat(True, t)
    assert not gate.open(2.0)
    assert gate.open(3.5)
    gate.beat(False, 4.0)  # Redis away: the beat failed
    assert not gate.open(4.5)
    gate.beat(True, 10.0)  # back: the others' beats are 6 s old, but so was this one's
    assert not gate.open(12.0)
    gate.beat(True, 11.0)
    assert gate.open(13.1)
    # A beat that hung (the client retried through an outage) and then went through is a
    # gap too, not a continuous run of beats.
    gate.beat(True, 20.0)
    assert not gate.open(20.5)
    for t in (21.0, 22.0, 23.0, 24.0):
        gate.beat(True, t)
    assert gate.open(24.0)
