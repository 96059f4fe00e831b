"""A worker's life and death: SIGTERM drains, Redis goes away and comes back, SIGKILL mid-send.

Each test runs its own stack (`stack` fixture: Redis with AOF, the emulator, worker
processes with `fast_settings`, i.e. job timeout 4 s, so ARQ re-runs a killed worker's job once
its in-progress key expires, 4 + 10 = 14 s after pickup).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from ig_outbound.harness.chaos import ChaosStack
from ig_outbound.harness.processes import WorkerProcess
from ig_outbound.harness.wait import wait_until
from ig_outbound.producers.outcome import Outcome

pytestmark = pytest.mark.slow


def _keys(label: str, n: int) -> list[str]:
    run = uuid.uuid4().hex[:8]
    return [f"{label}-{run}-{i}" for i in range(n)]


def _no_outcome(stack: ChaosStack, keys: list[str]) -> list[str]:
    return [k for k in keys if "outcome" not in stack.record(k)]


def _assert_books_balance(stack: ChaosStack, keys: list[str]) -> None:
    ledger = stack.ledger(keys)
    assert ledger.violations() == []
    assert ledger.status_counts() == {"sent": len(keys)}


def test_sigterm_drains_in_flight_sends_before_exit(stack: ChaosStack) -> None:
    """SIGTERM while several sends wait on Graph: the worker finishes them, then exits 0."""
    stack.control.set_faults(latency_ms=1500, seed=1)  # each send takes ~1.5 s
    worker = stack.start_worker(graph={"read_timeout_s": 3})
    stack.wait_registered()
    keys = _keys("drain", 6)
    stack.enqueue([stack.intent(k, i) for i, k in enumerate(keys)])
    wait_until(
        lambda: all(stack.record(k).get("state") == "sending" for k in keys),
        20,
        "all six sends to be in flight",
    )
    assert stack.deliveries()[0] == {}, "the sends are still in flight at SIGTERM"

    code = stack.stop_worker(worker, grace_s=30)

    assert code == 0, stack.log_tail()
    # Nobody else runs: whatever is there was done by the draining worker before it exited.
    assert [stack.record(k).get("state") for k in keys] == ["sent"] * len(keys)
    deliveries, _ = stack.deliveries()
    assert {k: deliveries[k] for k in keys} == dict.fromkeys(keys, 1)
    assert stack.db.hget(stack.keys.counters, "ambiguous_sends") is None
    _assert_books_balance(stack, keys)


def _outage_with_intents_queued(stack: ChaosStack, keys: list[str], down_s: float) -> None:
    stack.enqueue([stack.intent(k, i) for i, k in enumerate(keys)])
    wait_until(lambda: stack.outcome_count() >= 20, 30, "the first outcomes")
    stack.redis.stop()  # SIGTERM: Redis writes its AOF and exits
    time.sleep(down_s)
    stack.redis.start()  # same port, same data directory


def test_worker_survives_a_redis_outage(stack: ChaosStack) -> None:
    """Redis down for 3 s under a running worker: the same process lives on, loses nothing."""
    stack.control.set_faults(latency_ms=20, latency_jitter_ms=20, seed=2)
    worker = stack.start_worker(worker={"max_jobs": 10})
    stack.wait_registered()
    keys = _keys("outage", 300)

    _outage_with_intents_queued(stack, keys, down_s=3.0)

    wait_until(lambda: not worker.alive() or not _no_outcome(stack, keys), 90, "the queue to drain")
    assert worker.alive(), f"worker {worker.pid} died in the outage\n{stack.log_tail()}"
    _assert_books_balance(stack, keys)


def test_a_redis_outage_loses_nothing_when_dead_workers_are_restarted(
    stack: ChaosStack,
) -> None:
    """Redis down for 3 s with intents queued and in flight; a supervisor restarts any worker
    that exits (as systemd or Kubernetes would): every intent still ends `sent`, once."""
    stack.control.set_faults(latency_ms=20, latency_jitter_ms=20, seed=3)
    stack.start_worker(worker={"max_jobs": 10})
    stack.wait_registered()
    keys = _keys("outage-supervised", 300)

    _outage_with_intents_queued(stack, keys, down_s=3.0)

    restarts = 0

    def supervised_until_done() -> bool:
        nonlocal restarts
        for dead in [w for w in stack.workers if not w.alive()]:
            stack.kill_worker(dead)  # reap it and close its log
            stack.start_worker(worker={"max_jobs": 10})
            restarts += 1
        return not _no_outcome(stack, keys)

    try:
        wait_until(supervised_until_done, 120, "every intent's outcome", 0.1)
    except TimeoutError:
        pytest.fail(f"{len(_no_outcome(stack, keys))} intents without outcome\n{stack.log_tail()}")
    print(f"\nredis outage: {len(keys)} intents, {restarts} worker restart(s) needed")
    _assert_books_balance(stack, keys)


@pytest.mark.parametrize(
    ("policy", "status", "deliveries", "ambiguous"),
    [("resend", "sent", 2, 1), ("fail", "unknown", 1, 0)],
)
def test_sigkill_mid_send_ends_in_exactly_one_outcome(
    stack: ChaosStack, policy: str, status: str, deliveries: int, ambiguous: int
) -> None:
    """kill -9 while the POST waits for Graph's answer (Graph got the message): the
    replacement finds the dead worker's heartbeat stopped and takes its job back (ARQ's
    in-progress key deleted, the send lease lapsed); the re-run finds an ambiguous send.
    `resend` resends it and counts it; `fail` ends it `unknown`."""
    changes: dict[str, Any] = {"ambiguous_policy": policy, "graph": {"read_timeout_s": 3}}
    worker = stack.start_worker(**changes)
    stack.wait_registered()
    (key,) = _keys(f"sigkill-{policy}", 1)
    # Graph takes the message, then its answer hangs for 60 s.
    stack.control.script([{"status": 200, "code": None, "hang_s": 60}])
    stack.enqueue([stack.intent(key)])
    wait_until(lambda: stack.deliveries()[0][key] == 1, 20, "Graph to receive the message")

    killed_at = time.monotonic()
    stack.kill_worker(worker)
    record = stack.record(key)
    assert (record.get("state"), record.get("attempts")) == ("sending", "1"), record
    replacement: WorkerProcess = stack.start_worker(**changes)

    wait_until(lambda: stack.record(key).get("state") != "sending", 60, "the re-run")
    picked_up = time.monotonic() - killed_at
    wait_until(lambda: "outcome" in stack.record(key), 60, "the outcome")
    done = time.monotonic() - killed_at
    print(
        f"\nSIGKILL mid-send ({policy}): picked up again {picked_up:.1f} s and finished "
        f"{done:.1f} s after the kill (reclaimed 3 s after its last heartbeat; ARQ alone: "
        "14 s)"
    )
    assert replacement.alive()

    ledger = stack.ledger([key])
    assert ledger.statuses == {key: status}
    assert ledger.stream[key] == 1, "exactly one outcome on the stream"
    assert ledger.deliveries[key] == deliveries
    assert ledger.ambiguous == {key: ambiguous}
    assert ledger.ambiguous_counter == ambiguous
    assert ledger.violations() == []
    if policy == "fail":
        outcome = Outcome.model_validate_json(stack.record(key)["outcome"])
        assert outcome.reason == "ambiguous_send"


def test_a_paused_worker_is_reclaimed_and_its_late_send_is_counted_not_doubled_silently(
    stack: ChaosStack,
) -> None:
    """SIGSTOP a worker mid-send for longer than its heartbeat's staleness: a live worker
    takes the job back and resends it as an ambiguous send (counted). SIGCONT: the paused
    worker's request completes late; the journal keeps one outcome and stays consistent,
    and the woken worker beats again."""
    import os
    import signal

    changes: dict[str, Any] = {"ambiguous_policy": "resend", "graph": {"read_timeout_s": 30}}
    paused = stack.start_worker(**changes)
    stack.wait_registered()
    (key,) = _keys("sigstop", 1)
    # Graph takes the message and answers 8 s later: the send is in flight meanwhile.
    stack.control.script([{"status": 200, "code": None, "hang_s": 8}])
    stack.enqueue([stack.intent(key)])
    wait_until(lambda: stack.deliveries()[0][key] == 1, 20, "Graph to receive the message")
    live = stack.start_worker(**changes)
    wait_until(lambda: stack.live_workers() == 2, 20, "the second worker's heartbeat")
    assert paused.pid is not None
    os.kill(paused.pid, signal.SIGSTOP)
    try:
        wait_until(lambda: "outcome" in stack.record(key), 30, "the reclaimed send's outcome")
        assert stack.deliveries()[0][key] == 2  # resent by the live worker ...
        assert stack.record(key).get("ambiguous") == "1"  # ... and counted
    finally:
        os.kill(paused.pid, signal.SIGCONT)
    # The woken worker's answer arrives (Graph answered it after 8 s); nothing changes.
    wait_until(lambda: stack.live_workers() == 2, 20, "the woken worker to beat again")
    time.sleep(9)
    assert paused.alive() and live.alive()
    ledger = stack.ledger([key])
    assert ledger.statuses == {key: "sent"}
    assert ledger.stream[key] == 1, "exactly one outcome on the stream"
    assert ledger.deliveries[key] == 2
    assert ledger.ambiguous_counter == 1
    assert ledger.violations() == []


def test_a_redis_outage_longer_than_the_staleness_reclaims_no_live_worker(
    stack: ChaosStack,
) -> None:
    """Redis away for 6 s (twice the heartbeat staleness) while two workers each hold a send
    in flight: when it is back, every last beat is old, yet no live worker's job is taken
    back (a worker judges others dead only after its own beats went through for longer than
    the staleness): each message reaches Graph once, nothing counted ambiguous."""
    changes: dict[str, Any] = {
        "ambiguous_policy": "resend",
        "graph": {"read_timeout_s": 30},
        "worker": {"job_timeout_s": 40},  # the sends outlive the outage
    }
    workers = [stack.start_worker(**changes) for _ in range(2)]
    stack.wait_registered()
    wait_until(lambda: stack.live_workers() == 2, 20, "both heartbeats")
    keys = _keys("outage-reclaim", 2)
    # Graph takes each message, then answers 12 s later: both sends stay in flight.
    stack.control.script([{"status": 200, "code": None, "hang_s": 12}] * 2)
    stack.enqueue([stack.intent(k, i) for i, k in enumerate(keys)])
    wait_until(
        lambda: all(stack.deliveries()[0][k] == 1 for k in keys), 20, "both messages at Graph"
    )
    stack.redis.restart(down_s=6.0)
    wait_until(lambda: not _no_outcome(stack, keys), 60, "both outcomes")
    assert all(w.alive() for w in workers), stack.log_tail()
    deliveries, _ = stack.deliveries()
    assert {k: deliveries[k] for k in keys} == dict.fromkeys(keys, 1)
    assert "dead_workers_reclaimed" not in stack.log_tail(200_000)
    _assert_books_balance(stack, keys)
