"""A chaos run on a `ChaosStack`: intents enqueued in batches while a random worker is
SIGKILLed and replaced every tick and Redis restarts at planned points; then the surviving
fleet settles every intent and the books are read (`Ledger`).

tests/chaos/test_nothing_lost.py runs a short plan, bench/soak.py a long one.
"""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ig_outbound.harness.chaos import ChaosStack, tail
from ig_outbound.harness.ledger import Ledger
from ig_outbound.harness.wait import wait_until

# Graph during a chaos run, 5-25 ms of latency each call, and: 5 % fail with a 5xx (not
# delivered); 2 % are delivered and then answered with a 5xx; 2 % are delivered and never
# answered in time (the hang outlasts `fast_settings`' 1 s read timeout: the worker cannot
# know whether it arrived). Delivered messages are echoed to the gateway either way.
CHAOS_FAULTS: dict[str, Any] = {
    "error_5xx_rate": 0.05,
    "error_5xx_after_send_rate": 0.02,
    "timeout_rate": 0.02,
    "timeout_hang_s": 2.0,
    "latency_ms": 5.0,
    "latency_jitter_ms": 20.0,
}


@dataclass(frozen=True)
class ChaosPlan:
    intents: int = 2000
    workers: int = 3
    kill_every_s: float = 0.5
    # Kills (and enqueueing) stop after this, or earlier once every intent has its outcome.
    chaos_s: float = 40.0
    # Intents are enqueued in equal batches, one per tick, over this long.
    enqueue_s: float = 20.0
    # Redis restarts, each when the run is k/(n+1) done (by outcomes or by chaos time).
    redis_restarts: int = 1
    redis_down_s: float = 0.5
    # Overall bound, from the first enqueue to the last outcome.
    settle_timeout_s: float = 240.0
    seed: int = 20260601
    # What Graph does wrong during the run (the emulator's fault settings).
    faults: Mapping[str, Any] = field(default_factory=lambda: dict(CHAOS_FAULTS))


@dataclass
class ChaosReport:
    intents: int
    accepted: int
    workers: int
    kills: int
    crashed: int  # workers that exited on their own (restarted too)
    redis_restarts: int
    lost: int
    doubled: int
    extra_deliveries: int
    ambiguous: int
    reconciled: int  # ambiguous sends settled by their echo (no resend)
    echoes: int  # echo webhooks the gateway recorded
    statuses: dict[str, int]
    chaos_s: float
    elapsed_s: float  # first enqueue -> last outcome
    throughput: float  # accepted intents / elapsed
    deliveries: int
    violations: list[str] = field(default_factory=list)
    # Doubled intents by the answer their first delivery got (see `Ledger.doubled_causes`).
    doubled_causes: dict[str, int] = field(default_factory=dict)
    faults_injected: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        return (
            f"intents={self.accepted} kills={self.kills} crashed={self.crashed} "
            f"redis_restarts={self.redis_restarts} lost={self.lost} doubled={self.doubled} "
            f"ambiguous={self.ambiguous} reconciled={self.reconciled} echoes={self.echoes} "
            f"elapsed={self.elapsed_s:.1f}s "
            f"throughput={self.throughput:.0f}/s statuses={self.statuses}"
        )


def run_chaos(
    stack: ChaosStack, plan: ChaosPlan, log: Callable[[str], None] = lambda _: None
) -> tuple[ChaosReport, Ledger]:
    """Run the plan on a started stack; raise `TimeoutError` (listing what is missing) if some
    intent has no outcome within `plan.settle_timeout_s`."""
    run = _ChaosRun(stack, plan, log)
    run.start_fleet()
    run.chaos()
    run.settle()
    # Stop the fleet (SIGTERM drain) so nothing can reach the emulator while we count.
    stack.stop_workers()
    # Grace for requests the emulator had taken in but not recorded yet when the workers
    # exited (no request can start any more; there is no in-flight count to wait for).
    time.sleep(0.2)
    ledger = stack.ledger(run.accepted)
    return run.report(ledger, stack), ledger


class _ChaosRun:
    """The state of one chaos run: what was enqueued, killed, crashed and restarted."""

    def __init__(self, stack: ChaosStack, plan: ChaosPlan, log: Callable[[str], None]) -> None:
        self.stack, self.plan, self.log = stack, plan, log
        self.rng = random.Random(plan.seed)
        self.accepted: list[str] = []
        self.kills = self.crashed = self.restarts = 0
        self.start = self.chaos_s = self.elapsed = 0.0
        self.pending: list[list[dict[str, Any]]] = []

    def start_fleet(self) -> None:
        self.stack.control.set_faults(**self.plan.faults, seed=self.plan.seed)
        for _ in range(self.plan.workers):
            self.stack.start_worker()
        self.stack.wait_registered()
        run = uuid.uuid4().hex[:8]
        intents = [self.stack.intent(f"chaos-{run}-{i:06d}", i) for i in range(self.plan.intents)]
        ticks = max(int(self.plan.enqueue_s / self.plan.kill_every_s), 1)
        batch = -(-len(intents) // ticks)
        self.pending = [intents[i : i + batch] for i in range(0, len(intents), batch)]

    def progress(self) -> float:
        return self.stack.outcome_count() / self.plan.intents

    def chaos(self) -> None:
        """One tick every `kill_every_s`, bounded by `chaos_s`: enqueue a batch, replace
        crashed workers, maybe restart Redis, kill a random worker and start another."""
        self.start = next_tick = next_log = time.monotonic()
        while time.monotonic() - self.start < self.plan.chaos_s:
            if self.pending:
                self.accepted += self.stack.enqueue(self.pending.pop(0))
            done = self.progress()
            elapsed = time.monotonic() - self.start
            if not self.pending and done >= 1.0 and self.restarts >= self.plan.redis_restarts:
                break
            if time.monotonic() >= next_log:
                self.log(
                    f"t={elapsed:.0f}s enqueued={len(self.accepted)} done={done:.0%} "
                    f"kills={self.kills}"
                )
                next_log += 10
            self.crashed += self.replace_crashed()
            self.maybe_restart_redis(done, elapsed)
            self.stack.kill_worker(self.rng.choice(self.stack.workers))
            self.kills += 1
            self.stack.start_worker()
            next_tick = max(next_tick + self.plan.kill_every_s, time.monotonic())
            time.sleep(max(next_tick - time.monotonic(), 0.0))
        self.chaos_s = time.monotonic() - self.start
        for chunk in self.pending:  # only if the chaos window was shorter than the enqueue plan
            self.accepted += self.stack.enqueue(chunk)
        self.log(
            f"chaos over after {self.chaos_s:.1f}s: {self.kills} kills, "
            f"{self.restarts} Redis restarts"
        )

    def maybe_restart_redis(self, done: float, elapsed: float) -> None:
        due = (self.restarts + 1) / (self.plan.redis_restarts + 1)
        if self.restarts < self.plan.redis_restarts and (
            done >= due or elapsed >= due * self.plan.chaos_s
        ):
            self.log(f"t={elapsed:.1f}s restarting Redis at {done:.0%} done")
            self.stack.redis.restart(down_s=self.plan.redis_down_s)
            self.restarts += 1

    def replace_crashed(self) -> int:
        crashed = [w for w in self.stack.workers if not w.alive()]
        for worker in crashed:
            self.log(f"worker {worker.pid} exited on its own:\n{tail(worker.log_path, 1500)}")
            self.stack.kill_worker(worker)  # reap it and close its log
            self.stack.start_worker()
        return len(crashed)

    def settle(self) -> None:
        """The workers left running finish everything (killed workers' jobs come back once
        ARQ's in-progress keys expire); crashed ones are still replaced meanwhile."""

        def settled() -> bool:
            self.crashed += self.replace_crashed()
            return self.stack.outcome_count() >= len(self.accepted)

        left = self.plan.settle_timeout_s - (time.monotonic() - self.start)
        try:
            wait_until(settled, max(left, 0.0), "every accepted intent's outcome", poll_s=0.1)
        except TimeoutError:
            raise TimeoutError(self.missing()) from None
        self.elapsed = time.monotonic() - self.start

    def missing(self) -> str:
        missing = self.stack.ledger(self.accepted).without_outcome()
        states = Counter(self.stack.record(k).get("state") for k in missing[:200])
        return (
            f"{len(missing)} of {len(self.accepted)} intents have no outcome after "
            f"{self.plan.settle_timeout_s:.0f} s (states of the first 200: {dict(states)}), "
            f"e.g. {missing[:10]}\n{self.stack.log_tail()}"
        )

    def report(self, ledger: Ledger, stack: ChaosStack) -> ChaosReport:
        return ChaosReport(
            intents=self.plan.intents,
            accepted=len(self.accepted),
            workers=self.plan.workers,
            kills=self.kills,
            crashed=self.crashed,
            redis_restarts=self.restarts,
            lost=ledger.lost,
            doubled=ledger.doubled,
            extra_deliveries=ledger.extra_deliveries,
            ambiguous=ledger.ambiguous_counter,
            reconciled=ledger.reasons["reconciled"],
            echoes=stack.echoes(),
            statuses=ledger.status_counts(),
            chaos_s=round(self.chaos_s, 1),
            elapsed_s=round(self.elapsed, 1),
            throughput=round(len(self.accepted) / self.elapsed, 1),
            deliveries=sum(ledger.deliveries.values()),
            violations=ledger.violations(),
            doubled_causes=dict(ledger.doubled_causes()),
            faults_injected=stack.control.stats()["faults_injected"],
        )
