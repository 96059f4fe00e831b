"""The journal's begin script takes the send's rate slot and lists the running job in the same
call as the lease (one round trip per send): a full window changes nothing, a refused begin
takes no slot, an ambiguous send's slot is the one its take-over sends in."""

from __future__ import annotations

from typing import Any

import pytest

from ig_outbound.producers.rate_class import RateClass
from ig_outbound.producers.redis_util import resolve
from ig_outbound.worker import job as job_module
from ig_outbound.worker import metrics
from ig_outbound.worker.limiter import Slot

from .conftest import ACCOUNT, JobBench, MakeBench, ok

LEASE_S = 25.0


def _slot(bench: JobBench, member: str, *, reserve: bool = False) -> Slot:
    return bench.services.limiter.slot(ACCOUNT, RateClass.LIGHT, member, reserve=reserve)


async def _window(bench: JobBench) -> int:
    return int(await resolve(bench.redis.zcard(bench.keys.rate_window(ACCOUNT, "light"))))


async def _fill_window(bench: JobBench) -> None:
    """Sends that just went, as many as the window takes."""
    limit = _slot(bench, "x").budget.limit
    await bench.services.clock.sync()
    now = bench.services.clock.now_ms()
    window = bench.keys.rate_window(ACCOUNT, "light")
    await resolve(bench.redis.zadd(window, {f"sent{i}": now for i in range(limit)}))


async def test_a_begin_takes_the_slot_the_lease_and_lists_the_job(bench: JobBench) -> None:
    await bench.enqueue("one")
    begin = await bench.services.journal.begin(
        "one", "job#1", LEASE_S, park_until_ms=0, slot=_slot(bench, "m1"), worker_id="w1"
    )
    assert (begin.verdict, begin.attempt) == ("go", 1)
    assert await _window(bench) == 1
    running = bench.keys.running("w1")
    assert await resolve(bench.redis.hgetall(running)) == {b"one": b"job#1"}
    record = await bench.record("one")
    assert (record.state, record.attempts) == ("sending", 1)


async def test_a_full_window_makes_the_begin_wait_and_changes_nothing(bench: JobBench) -> None:
    await bench.enqueue("full")
    await _fill_window(bench)
    before = await _window(bench)
    begin = await bench.services.journal.begin(
        "full", "job#1", LEASE_S, park_until_ms=0, slot=_slot(bench, "m"), worker_id="w1"
    )
    assert begin.verdict == "wait" and 0 < begin.retry_in_s <= 1.2
    assert await _window(bench) == before
    record = await bench.record("full")
    assert (record.state, record.attempts) == ("queued", 0)
    # Listed all the same: a worker that dies while it waits for the slot is reclaimed.
    listed = await resolve(bench.redis.hgetall(bench.keys.running("w1")))
    assert listed == {b"full": b"job#1"}


async def test_a_begin_that_refuses_takes_no_slot(bench: JobBench) -> None:
    await bench.enqueue("head")
    await bench.enqueue("second")  # the same conversation: not its turn yet
    begin = await bench.services.journal.begin(
        "second", "job#1", LEASE_S, park_until_ms=10**13, slot=_slot(bench, "m")
    )
    assert begin.verdict == "not_its_turn"
    busy = await bench.services.journal.begin("head", "a#1", LEASE_S, park_until_ms=0)
    assert busy.verdict == "go"
    again = await bench.services.journal.begin(
        "head", "b#1", LEASE_S, park_until_ms=0, slot=_slot(bench, "m2")
    )
    assert again.verdict == "busy"
    assert await _window(bench) == 0


async def test_an_ambiguous_sends_slot_is_the_one_its_take_over_sends_in(
    bench: JobBench,
) -> None:
    await bench.enqueue("amb")
    first = await bench.services.journal.begin("amb", "dead#1", 0, park_until_ms=0)
    assert first.verdict == "go"  # a run that died mid-send: its lease has lapsed
    seen = await bench.services.journal.begin(
        "amb", "job#2", LEASE_S, park_until_ms=0, slot=_slot(bench, "m")
    )
    assert seen.verdict == "ambiguous"
    assert await _window(bench) == 1
    await _fill_window(bench)  # the window is full now: the take-over still goes
    taken = await bench.services.journal.begin(
        "amb", "job#2", LEASE_S, park_until_ms=0, take_over=True
    )
    assert (taken.verdict, taken.attempt) == ("go", 2)


async def test_a_sent_intent_leaves_the_running_list_in_the_finish_script(
    make_bench: MakeBench,
) -> None:
    bench = await make_bench()
    await bench.enqueue("listed")
    bench.graph.script(ok())
    assert await bench.run("listed") == "sent"
    running = bench.keys.running(bench.services.worker_id)
    assert await resolve(bench.redis.hgetall(running)) == {}
    assert await _window(bench) == 1


async def test_sends_older_than_the_window_do_not_count(bench: JobBench) -> None:
    await bench.enqueue("late")
    limit = _slot(bench, "x").budget.limit
    window = bench.keys.rate_window(ACCOUNT, "light")
    old = bench.services.clock.now_ms() - 60_000
    await resolve(bench.redis.zadd(window, {f"old{i}": old for i in range(limit)}))
    begin = await bench.services.journal.begin(
        "late", "job#1", LEASE_S, park_until_ms=0, slot=_slot(bench, "m")
    )
    assert begin.verdict == "go"
    assert await _window(bench) == 1  # the stale ones were trimmed


async def _nearly_fill_window(bench: JobBench) -> int:
    """Sends that just went, one fewer than the window takes; returns how many."""
    limit = _slot(bench, "x").budget.limit
    await bench.services.clock.sync()
    now = bench.services.clock.now_ms()
    window = bench.keys.rate_window(ACCOUNT, "light")
    await resolve(bench.redis.zadd(window, {f"sent{i}": now for i in range(limit - 1)}))
    return limit - 1


async def test_a_bulk_job_leaves_the_last_place_to_a_waiting_interactive_send(
    bench: JobBench,
) -> None:
    await bench.enqueue("bulk", priority="bulk", recipient={"id": "1254477777700991"})
    await bench.enqueue("reply", recipient={"id": "1254477777700992"})
    before = await _nearly_fill_window(bench)
    waiting = bench.keys.rate_waiting(ACCOUNT, "light")
    await resolve(bench.redis.set(waiting, "1", px=60_000))  # an interactive send waits
    # The bulk job sleeps once, then gives its place up for a new slot in the bulk lane.
    retry = await bench.retry("bulk")
    assert retry.defer_score is not None
    assert bench.graph.requests == [] and await _window(bench) == before
    assert await resolve(bench.redis.exists(bench.keys.rate_tat_bulk(ACCOUNT, "light"))) == 1
    # The interactive job takes the place, and its mark is gone.
    bench.graph.script(ok())
    await bench.run("reply")
    assert len(bench.graph.requests) == 1 and await _window(bench) == before + 1
    assert await resolve(bench.redis.exists(waiting)) == 0


async def test_a_slot_gone_stale_before_the_request_leaves_is_taken_again(
    bench: JobBench, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pacing at send time: this process stalls between the slot's admission and the
    request (simulated: its clock jumps 5 s on the begin's answer), so the send gives its
    place back and takes one again; the window counts it once, at the new time."""
    await bench.enqueue("stalled")
    journal = bench.services.journal
    real_begin = journal.begin

    async def begin_then_stall(*args: Any, **kwargs: Any) -> Any:
        answer = await real_begin(*args, **kwargs)
        bench.services.clock.offset_ms += 5_000
        return answer

    monkeypatch.setattr(journal, "begin", begin_then_stall)
    retaken = metrics.STALE_SLOTS_RETAKEN._value.get()
    bench.graph.script(ok())
    await bench.run("stalled")
    assert len(bench.graph.requests) == 1
    assert metrics.STALE_SLOTS_RETAKEN._value.get() == retaken + 1
    entries = await resolve(
        bench.redis.zrange(bench.keys.rate_window(ACCOUNT, "light"), 0, -1, withscores=True)
    )
    assert len(entries) == 1  # the first place was given back
    [(_, admitted)] = entries
    await bench.services.clock.sync()  # (Redis's real clock again)
    assert admitted >= bench.services.clock.now_ms() - 1_000  # taken again just now


async def test_a_fresh_slot_is_not_taken_again(bench: JobBench) -> None:
    await bench.enqueue("fresh")
    retaken = metrics.STALE_SLOTS_RETAKEN._value.get()
    bench.graph.script(ok())
    await bench.run("fresh")
    assert metrics.STALE_SLOTS_RETAKEN._value.get() == retaken
    assert await _window(bench) == 1


async def test_a_stale_slot_that_finds_the_window_full_keeps_its_place(
    bench: JobBench, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old place is given back only once a new one is taken: when none can be had in
    time, the send goes with the one it holds, still counted (never uncounted)."""
    await bench.enqueue("stuck")
    journal = bench.services.journal
    real_begin = journal.begin

    async def begin_then_stall_in_a_full_window(*args: Any, **kwargs: Any) -> Any:
        answer = await real_begin(*args, **kwargs)
        await _nearly_fill_window(bench)  # with this send's own place: full
        bench.services.clock.offset_ms += 5_000
        return answer

    monkeypatch.setattr(journal, "begin", begin_then_stall_in_a_full_window)
    monkeypatch.setattr(job_module, "STALE_SLOT_WAIT_MAX_S", 0.0)
    limit = _slot(bench, "x").budget.limit
    bench.graph.script(ok())
    await bench.run("stuck")
    assert len(bench.graph.requests) == 1
    assert await _window(bench) == limit  # its first place still counts it
