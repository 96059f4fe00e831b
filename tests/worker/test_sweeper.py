"""No orphaned conversation: the sweeper moves on conversations whose head cannot end by
itself (its job key expired, was evicted or dropped; it fell out of the queue; its record
is gone), and the journal never re-creates a record without a TTL. In process, real Redis."""

from __future__ import annotations

from dataclasses import replace

from ig_outbound.producers.redis_util import resolve
from ig_outbound.worker.housekeeping import Sweeper
from tests.worker.conftest import JobBench, in_seconds, ok


async def _conversation(bench: JobBench, n: int = 3) -> list[str]:
    keys = [f"conv-{i}" for i in range(n)]
    for key in keys:
        await bench.enqueue(key)
    return keys


async def test_a_head_whose_job_vanished_ends_failed_and_the_next_is_queued(
    bench: JobBench,
) -> None:
    first, second, third = await _conversation(bench)
    parked_at = await bench.queue_score_ms(second)
    await bench.redis.delete(bench.keys.arq_job(first))  # evicted, expired, dropped ...
    report = await Sweeper(bench.services).sweep()
    assert (report.lost, report.looked_at) == (1, 1)
    outcome = await bench.client.outcome(first)
    assert outcome is not None and (outcome.status, outcome.reason) == ("failed", "job_lost")
    (letter,) = await bench.dead_letters()
    assert letter["key"] == first
    # The conversation moved on: the second intent is due now (it was parked at its deadline).
    assert parked_at is not None
    assert (await bench.queue_score_ms(second) or 0) < parked_at - 3_600_000
    bench.graph.script(ok())
    assert await bench.run(second) == "sent"
    assert await bench.client.state(third) == "queued"


async def test_a_lost_head_past_its_deadline_ends_expired(bench: JobBench) -> None:
    await bench.enqueue("late", not_after=in_seconds(-1))  # accepted; the worker expires it
    await bench.redis.delete(bench.keys.arq_job("late"))
    await Sweeper(bench.services).sweep()
    outcome = await bench.client.outcome("late")
    assert outcome is not None and (outcome.status, outcome.reason) == (
        "expired",
        "deadline_passed",
    )


async def test_a_head_that_fell_out_of_the_queue_is_queued_again(bench: JobBench) -> None:
    (first,) = await _conversation(bench, 1)
    await bench.redis.zrem(bench.keys.queue, bench.keys.job_id(first))
    report = await Sweeper(bench.services).sweep()
    assert report.requeued == 1
    assert await bench.queue_score_ms(first) is not None
    assert await bench.client.outcome(first) is None  # nothing ended: it will be sent


async def test_a_running_or_waiting_head_is_left_alone(bench: JobBench) -> None:
    first, _ = await _conversation(bench, 2)
    await bench.redis.set(bench.keys.arq_in_progress(first), b"1", px=60_000)
    await bench.redis.delete(bench.keys.arq_job(first))  # ARQ's run in flight may look so
    report = await Sweeper(bench.services).sweep()
    assert (report.lost, report.requeued, report.dropped) == (0, 0, 0)
    assert await bench.client.outcome(first) is None


async def test_a_head_whose_record_is_gone_is_dropped_and_the_next_is_queued(
    bench: JobBench,
) -> None:
    first, second, _ = await _conversation(bench)
    await bench.redis.delete(bench.keys.record(first))
    report = await Sweeper(bench.services).sweep()
    assert report.dropped == 1
    assert not await bench.redis.exists(bench.keys.record(first))  # not re-created
    bench.graph.script(ok())
    assert await bench.run(second) == "sent"


async def test_ended_conversations_leave_the_registry(bench: JobBench) -> None:
    (only,) = await _conversation(bench, 1)
    assert await bench.redis.zcard(bench.keys.conversations) == 1
    bench.graph.script(ok())
    assert await bench.run(only) == "sent"
    assert await bench.redis.zcard(bench.keys.conversations) == 0


async def test_a_sweep_walks_the_whole_registry_in_batches(bench: JobBench) -> None:
    for n in range(450):  # 450 one-intent conversations: three script calls of 200
        await bench.client.enqueue(
            {
                "idempotency_key": f"many-{n}",
                "account_id": bench.services.tokens.accounts()[0],
                "recipient": {"id": f"900000{n:05d}"},
                "content": {"kind": "sticker"},
            }
        )
    lost = [f"many-{n}" for n in (0, 199, 200, 449)]
    for key in lost:
        await bench.redis.delete(bench.keys.arq_job(key))
    report = await Sweeper(bench.services).sweep()
    assert (report.looked_at, report.lost) == (450, 4)
    for key in lost:
        outcome = await bench.client.outcome(key)
        assert outcome is not None and outcome.reason == "job_lost"


async def test_a_run_whose_record_is_gone_sends_nothing_and_recreates_it_only_with_a_ttl(
    bench: JobBench,
) -> None:
    await bench.enqueue("evicted")
    await bench.redis.delete(bench.keys.record("evicted"))
    assert await bench.run("evicted") == "failed"
    assert bench.graph.requests == []
    assert await bench.redis.pttl(bench.keys.record("evicted")) > 0  # the outcome's record
    outcome = await bench.client.outcome("evicted")
    assert outcome is not None and outcome.reason == "record_lost"


async def test_counting_on_a_gone_record_does_not_recreate_it(bench: JobBench) -> None:
    journal = bench.services.journal
    assert await journal.count("nobody", "internal_errors") == -1
    assert await journal.release("nobody", "owner", count_failure=True) == 0
    await journal.mark_ambiguous("nobody")
    assert not await bench.redis.exists(bench.keys.record("nobody"))


async def test_only_one_worker_holds_the_sweep_lease(bench: JobBench) -> None:
    # Two workers: the owner of a lease is the worker (its id).
    one = Sweeper(replace(bench.services, worker_id="worker-one"))
    two = Sweeper(replace(bench.services, worker_id="worker-two"))
    assert await one.acquire_lease(5)
    assert not await two.acquire_lease(5)
    assert await one.acquire_lease(5)  # the holder keeps it
    await bench.redis.delete(bench.keys.sweep_lease)  # it died: the lease lapsed
    assert await two.acquire_lease(5)


async def test_replay_bookkeeping_of_trimmed_dead_letters_is_pruned(bench: JobBench) -> None:
    keys, redis = bench.keys, bench.redis
    first = await redis.xadd(keys.dead_letters, {"key": "a"})
    kept = await redis.xadd(keys.dead_letters, {"key": "b"})
    await resolve(
        redis.hset(keys.dead_letter_replays, mapping={first: "a~r", kept: "b~r", "junk": "x"})
    )
    await redis.xdel(keys.dead_letters, first)  # trimmed away by MAXLEN
    assert await Sweeper(bench.services).prune_replays() == 2
    assert await resolve(redis.hgetall(keys.dead_letter_replays)) == {kept: b"b~r"}
