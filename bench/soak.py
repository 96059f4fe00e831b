"""Soak: the long version of the crash-safety proof in tests/chaos/test_nothing_lost.py.

    .venv/bin/python -m bench.soak --intents 20000 --minutes 4 [--workers 3] [--json-out FILE]

Real processes only: a private `redis-server` with AOF persistence, the Graph emulator failing
5 % of calls with a 5xx and adding random latency, and `ig-outbound worker` processes. While
intents are enqueued (in batches, spread over most of the chaos window) a random worker is
SIGKILLed and replaced about every 0.5 s, and Redis is restarted (SIGTERM, then started again
on the same port and data directory) at evenly spaced points. When the chaos window ends (or
every intent has its outcome) the remaining workers keep running until every accepted intent
has an outcome (bounded), then they are stopped with SIGTERM and the books are checked:

* every accepted intent has exactly one entry on the outcomes stream and an `outcome` in its
  record (nothing lost, nothing published twice);
* the emulator received each intent at most `1 + ambiguous` times (its record's count of
  ambiguous sends), and every `sent` intent at least once;
* the extra deliveries over all intents are covered by the `ambiguous_sends` counter, and
  that counter equals the sum of the per-record counts.

Each intent's text contains its idempotency key, so every emulator call maps back to one key.
The same harness (`ChaosStack`, `run_chaos`, `Ledger`) runs the suite's short proof; the
worker settings are tuned for speed (`FAST_ENV`: job timeout 4 s, so a killed worker's job is
re-run after 14 s, ARQ's in-progress TTL). The last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from ig_outbound.emulator import EmulatorConfig, EmulatorControl, run_emulator_process
from ig_outbound.emulator.config import AccountConfig, FaultSettings
from ig_outbound.harness.errors import ChaosError
from ig_outbound.harness.processes import RedisServer, WorkerProcess
from ig_outbound.producers.enqueue import SyncOutboundClient
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.outcome import Outcome
from ig_outbound.worker.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PREFIX = "igo-chaos"
TEXT_PREFIX = "chaos intent "

# Worker settings for chaos runs: short job timeout (a SIGKILLed worker's job comes back after
# job timeout + 10 s = 14 s), HTTP timeouts well inside it, and short backoffs.
FAST_ENV: dict[str, str] = {
    "IG_OUTBOUND_WORKER__JOB_TIMEOUT_S": "4",
    "IG_OUTBOUND_WORKER__DRAIN_TIMEOUT_S": "5",
    "IG_OUTBOUND_GRAPH__CONNECT_TIMEOUT_S": "0.5",
    "IG_OUTBOUND_GRAPH__READ_TIMEOUT_S": "1.0",
    "IG_OUTBOUND_GRAPH__WRITE_TIMEOUT_S": "0.5",
    "IG_OUTBOUND_GRAPH__POOL_TIMEOUT_S": "0.5",
    "IG_OUTBOUND_RETRY__BACKOFF_BASE_S": "0.05",
    "IG_OUTBOUND_RETRY__BACKOFF_CAP_S": "0.5",
    "IG_OUTBOUND_RETRY__THROTTLE_PAUSE_S": "0.5",
    "IG_OUTBOUND_RETRY__ACCOUNT_PAUSE_S": "0.5",
}
CHAOS_FAULTS: dict[str, Any] = {
    "error_5xx_rate": 0.05,
    "latency_ms": 5.0,
    "latency_jitter_ms": 20.0,
}


def retrying_redis(url: str) -> Any:
    """A decoded sync client that rides out a Redis restart (typed Any: redis-py's stubs
    type the sync and async clients at once)."""
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=5.0,
        socket_connect_timeout=1.0,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), 30),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )


def wait_until(
    condition: Callable[[], bool], timeout_s: float, what: str, poll_s: float = 0.05
) -> float:
    """Poll `condition` until true; return the seconds it took, raise `TimeoutError` after
    `timeout_s` naming `what`."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout_s:
            raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(poll_s)
    return time.monotonic() - start


def _tail(path: Path | None, chars: int = 3000) -> str:
    if path is None or not path.exists():
        return ""
    return path.read_text(errors="replace")[-chars:]


# --- the stack -----------------------------------------------------------------------------


class ChaosStack:
    """Private Redis (AOF on), the emulator with accounts and users, and worker processes.

    A context manager: leaving it SIGKILLs every worker still running (after a short SIGTERM
    drain), stops the emulator and Redis, and deletes Redis's data directory.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        accounts: int = 4,
        recipients: int = 25,
        worker_env: Mapping[str, str] | None = None,
        faults: Mapping[str, Any] | None = None,
        prefix: str = PREFIX,
    ) -> None:
        self.workdir = workdir
        self.prefix = prefix
        self.keys = Keys(prefix)
        self.tokens = {
            f"1784140{n:010d}": "IGAA" + secrets.token_urlsafe(24) for n in range(1, accounts + 1)
        }
        self.accounts = list(self.tokens)
        self.users = [f"1254477{n:010d}" for n in range(1, recipients + 1)]
        self._faults = FaultSettings(**dict(faults or {}))
        self._extra_env = dict(worker_env or {})
        self.redis = RedisServer(persistent=True)
        self.graph_url = ""
        self.control: EmulatorControl
        self.db: Any = None
        self.workers: list[WorkerProcess] = []
        self._started = 0
        self._exit = ExitStack()

    # lifecycle

    def __enter__(self) -> ChaosStack:
        try:
            self.redis.start()
            self._exit.callback(self.redis.close)
            config = EmulatorConfig(
                accounts=[
                    AccountConfig(ig_id=a, token=t, username=f"chaos{a[-4:]}")
                    for a, t in self.tokens.items()
                ],
                users={a: self.users for a in self.accounts},
                faults=self._faults,
            )
            self.graph_url = self._exit.enter_context(run_emulator_process(config))
            self.control = self._exit.enter_context(EmulatorControl(self.graph_url, timeout=120))
            self._exit.callback(self.stop_workers)
            self.db = retrying_redis(self.redis.url)
            self._exit.callback(self.db.close)
        except BaseException:
            self._exit.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._exit.close()

    @property
    def settings(self) -> Settings:
        return Settings(redis_url=self.redis.url, key_prefix=self.prefix)

    def worker_env(self, **overrides: str) -> dict[str, str]:
        env = {
            "IG_OUTBOUND_REDIS_URL": self.redis.url,
            "IG_OUTBOUND_KEY_PREFIX": self.prefix,
            "IG_OUTBOUND_GRAPH__BASE_URL": self.graph_url,
            "IG_OUTBOUND_TOKENS": json.dumps(self.tokens),
            "IG_OUTBOUND_LOG_LEVEL": "info",
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])
            ),
        }
        return {**env, **self._extra_env, **overrides}

    def start_worker(self, **env_overrides: str) -> WorkerProcess:
        self._started += 1
        log = self.workdir / f"worker-{self._started:04d}.log"
        worker = WorkerProcess(self.worker_env(**env_overrides), log_path=log).start()
        self.workers.append(worker)
        return worker

    def kill_worker(self, worker: WorkerProcess) -> None:
        """SIGKILL (no cleanup at all), then reap it and close its log."""
        worker.kill()
        worker.stop()
        if worker in self.workers:
            self.workers.remove(worker)

    def stop_worker(self, worker: WorkerProcess, grace_s: float = 30.0) -> int | None:
        """SIGTERM (the worker drains its in-flight sends), SIGKILL after `grace_s`."""
        code = worker.stop(grace_s)
        if worker in self.workers:
            self.workers.remove(worker)
        return code

    def stop_workers(self, grace_s: float = 15.0) -> None:
        """SIGTERM every worker at once (they drain together), then reap each."""
        for worker in list(self.workers):
            if worker.alive() and worker.pid is not None:
                os.kill(worker.pid, signal.SIGTERM)
        for worker in list(self.workers):
            self.stop_worker(worker, grace_s)

    def wait_registered(self, timeout_s: float = 60.0) -> None:
        """Wait until a worker has registered the accounts (producers refuse them before)."""
        wait_until(
            lambda: int(self.db.scard(self.keys.accounts)) >= len(self.accounts),
            timeout_s,
            "a worker to register its accounts",
        )

    def log_tail(self, chars: int = 3000) -> str:
        logs = sorted(self.workdir.glob("worker-*.log"))[-3:]
        return "\n".join(f"--- {p.name} ---\n{_tail(p, chars)}" for p in logs)

    # intents and books

    def intent(self, key: str, n: int = 0) -> dict[str, Any]:
        """A text intent whose text contains its key (so emulator calls map back to it)."""
        return {
            "idempotency_key": key,
            "account_id": self.accounts[n % len(self.accounts)],
            "recipient": {"id": self.users[(n // len(self.accounts)) % len(self.users)]},
            "content": {"kind": "text", "text": TEXT_PREFIX + key},
        }

    def enqueue(self, intents: Sequence[Mapping[str, Any]], attempts: int = 20) -> list[str]:
        """Enqueue a batch, retrying it whole while Redis is away (enqueue is idempotent:
        a resent intent comes back `duplicate`); returns the accepted keys."""
        for attempt in range(attempts):
            try:
                with SyncOutboundClient(retrying_redis(self.redis.url), self.settings) as c:
                    results = c.enqueue_many(intents)
                break
            except RedisError:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.25)
        refused = [(r.key, r.error) for r in results if not r.accepted]
        if refused:
            raise ChaosError(f"{len(refused)} intents refused, e.g. {refused[:3]}")
        return [r.key for r in results if r.key is not None]

    def outcome_count(self) -> int:
        return int(self.db.xlen(self.keys.outcomes))

    def record(self, key: str) -> dict[str, str]:
        return dict(self.db.hgetall(self.keys.record(key)))

    def deliveries(self) -> tuple[Counter[str], int]:
        """Emulator deliveries per key, and the number of calls that map to no key."""
        per_key: Counter[str] = Counter()
        unmapped = 0
        for call in self.control.calls()["calls"]:
            text = ((call.get("body") or {}).get("message") or {}).get("text")
            if isinstance(text, str) and text.startswith(TEXT_PREFIX):
                per_key[text[len(TEXT_PREFIX) :]] += 1
            else:
                unmapped += 1
        return per_key, unmapped

    def ledger(self, accepted: Sequence[str]) -> Ledger:
        """Read the books: records, the outcomes stream, the counter, the emulator's calls."""
        statuses: dict[str, str | None] = {}
        ambiguous: dict[str, int] = {}
        for i in range(0, len(accepted), 1000):
            chunk = accepted[i : i + 1000]
            with self.db.pipeline(transaction=False) as pipe:
                for key in chunk:
                    pipe.hmget(self.keys.record(key), "outcome", "ambiguous")
                rows = pipe.execute()
            for key, (outcome, amb) in zip(chunk, rows, strict=True):
                statuses[key] = (
                    None if outcome is None else Outcome.model_validate_json(outcome).status.value
                )
                ambiguous[key] = int(amb or 0)
        stream: Counter[str] = Counter()
        last = "-"
        while True:
            entries = self.db.xrange(self.keys.outcomes, min=last, max="+", count=5000)
            if last != "-":
                entries = entries[1:]  # `min` is inclusive
            if not entries:
                break
            stream.update(fields.get("key", "") for _, fields in entries)
            last = entries[-1][0]
        deliveries, unmapped = self.deliveries()
        counter = int(self.db.hget(self.keys.counters, "ambiguous_sends") or 0)
        return Ledger(
            accepted=list(accepted),
            statuses=statuses,
            ambiguous=ambiguous,
            stream=stream,
            deliveries=deliveries,
            unmapped_calls=unmapped,
            ambiguous_counter=counter,
        )


# --- the books -----------------------------------------------------------------------------


@dataclass
class Ledger:
    """Everything the proof checks, per idempotency key."""

    accepted: list[str]
    statuses: dict[str, str | None]  # the record's outcome status (None: no outcome)
    ambiguous: dict[str, int]  # the record's `ambiguous` count
    stream: Counter[str]  # entries on the outcomes stream per key
    deliveries: Counter[str]  # emulator deliveries per key
    unmapped_calls: int  # emulator calls whose text names no intent of this run
    ambiguous_counter: int  # `<prefix>:counters` field `ambiguous_sends`

    def without_outcome(self) -> list[str]:
        return [k for k in self.accepted if self.statuses.get(k) is None]

    def not_once_on_stream(self) -> dict[str, int]:
        return {k: self.stream[k] for k in self.accepted if self.stream[k] != 1}

    def stream_strangers(self) -> list[str]:
        known = set(self.accepted)
        return [k for k in self.stream if k not in known]

    def over_delivered(self) -> dict[str, tuple[int, int]]:
        """Keys delivered more often than 1 + their ambiguous count: (deliveries, ambiguous)."""
        return {
            k: (self.deliveries[k], self.ambiguous.get(k, 0))
            for k in self.accepted
            if self.deliveries[k] > 1 + self.ambiguous.get(k, 0)
        }

    def sent_undelivered(self) -> list[str]:
        return [
            k for k in self.accepted if self.statuses.get(k) == "sent" and not self.deliveries[k]
        ]

    def delivered_strangers(self) -> list[str]:
        known = set(self.accepted)
        return [k for k in self.deliveries if k not in known]

    @property
    def extra_deliveries(self) -> int:
        return sum(max(self.deliveries[k] - 1, 0) for k in self.accepted)

    @property
    def doubled(self) -> int:
        """Intents the emulator received more than once (each needs an ambiguous send)."""
        return sum(1 for k in self.accepted if self.deliveries[k] > 1)

    @property
    def ambiguous_sum(self) -> int:
        return sum(self.ambiguous.values())

    @property
    def lost(self) -> int:
        """Accepted intents with no outcome, or `sent` but never received by the emulator."""
        return len(set(self.without_outcome()) | set(self.sent_undelivered()))

    def status_counts(self) -> dict[str, int]:
        return dict(Counter(str(s) for s in self.statuses.values()))

    def violations(self) -> list[str]:
        """Every broken promise, described (empty when the books balance)."""
        out: list[str] = []
        checks: list[tuple[str, Any]] = [
            ("accepted intents without an outcome", self.without_outcome()),
            ("intents not exactly once on the outcomes stream", self.not_once_on_stream()),
            ("outcome stream entries for unknown keys", self.stream_strangers()),
            ("delivered more than 1 + ambiguous times", self.over_delivered()),
            ("`sent` but never delivered", self.sent_undelivered()),
            ("deliveries of unknown keys", self.delivered_strangers()),
        ]
        for label, found in checks:
            if found:
                sample = list(found.items())[:10] if isinstance(found, dict) else found[:10]
                out.append(f"{len(found)} {label}, e.g. {sample}")
        if self.unmapped_calls:
            out.append(f"{self.unmapped_calls} emulator calls carry no intent text")
        if self.extra_deliveries > self.ambiguous_counter:
            out.append(
                f"{self.extra_deliveries} extra deliveries but only "
                f"{self.ambiguous_counter} ambiguous sends counted"
            )
        if self.ambiguous_counter != self.ambiguous_sum:
            out.append(
                f"ambiguous_sends counter {self.ambiguous_counter} != "
                f"sum of per-record counts {self.ambiguous_sum}"
            )
        return out


# --- the chaos run -------------------------------------------------------------------------


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
    statuses: dict[str, int]
    chaos_s: float
    elapsed_s: float  # first enqueue -> last outcome
    throughput: float  # accepted intents / elapsed
    deliveries: int
    violations: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"intents={self.accepted} kills={self.kills} crashed={self.crashed} "
            f"redis_restarts={self.redis_restarts} lost={self.lost} doubled={self.doubled} "
            f"ambiguous={self.ambiguous} elapsed={self.elapsed_s:.1f}s "
            f"throughput={self.throughput:.0f}/s statuses={self.statuses}"
        )


def run_chaos(
    stack: ChaosStack, plan: ChaosPlan, log: Callable[[str], None] = lambda _: None
) -> tuple[ChaosReport, Ledger]:
    """Run the plan on a started stack; raise `TimeoutError` (listing what is missing) if some
    intent has no outcome within `plan.settle_timeout_s`."""
    rng = random.Random(plan.seed)
    stack.control.set_faults(**CHAOS_FAULTS, seed=plan.seed)
    for _ in range(plan.workers):
        stack.start_worker()
    stack.wait_registered()
    run = uuid.uuid4().hex[:8]
    keys = [f"chaos-{run}-{i:06d}" for i in range(plan.intents)]
    intents = [stack.intent(k, i) for i, k in enumerate(keys)]
    ticks = max(int(plan.enqueue_s / plan.kill_every_s), 1)
    batch = -(-len(intents) // ticks)
    pending = [intents[i : i + batch] for i in range(0, len(intents), batch)]
    accepted: list[str] = []
    kills = crashed = restarts = 0
    start = time.monotonic()
    next_tick = start

    def progress() -> float:
        return stack.outcome_count() / plan.intents

    def replace_crashed() -> int:
        crashed = [w for w in stack.workers if not w.alive()]
        for worker in crashed:
            log(f"worker {worker.pid} exited on its own:\n{_tail(worker.log_path, 1500)}")
            stack.kill_worker(worker)  # reap it and close its log
            stack.start_worker()
        return len(crashed)

    # Chaos: one tick every `kill_every_s`; bounded by `chaos_s`.
    next_log = start
    while time.monotonic() - start < plan.chaos_s:
        if pending:
            accepted += stack.enqueue(pending.pop(0))
        done = progress()
        elapsed = time.monotonic() - start
        if not pending and done >= 1.0 and restarts >= plan.redis_restarts:
            break
        if time.monotonic() >= next_log:
            log(f"t={elapsed:.0f}s enqueued={len(accepted)} done={done:.0%} kills={kills}")
            next_log += 10
        crashed += replace_crashed()
        due = (restarts + 1) / (plan.redis_restarts + 1)
        if restarts < plan.redis_restarts and (done >= due or elapsed >= due * plan.chaos_s):
            log(f"t={elapsed:.1f}s restarting Redis at {done:.0%} done")
            stack.redis.restart(down_s=plan.redis_down_s)
            restarts += 1
        stack.kill_worker(rng.choice(stack.workers))
        kills += 1
        stack.start_worker()
        next_tick = max(next_tick + plan.kill_every_s, time.monotonic())
        time.sleep(max(next_tick - time.monotonic(), 0.0))
    chaos_s = time.monotonic() - start
    for chunk in pending:  # only if the chaos window was shorter than the enqueue plan
        accepted += stack.enqueue(chunk)
    log(f"chaos over after {chaos_s:.1f}s: {kills} kills, {restarts} Redis restarts")

    # Settle: the workers left running finish everything (killed workers' jobs come back
    # once ARQ's in-progress keys expire).
    deadline = start + plan.settle_timeout_s
    while stack.outcome_count() < len(accepted):
        if time.monotonic() > deadline:
            ledger = stack.ledger(accepted)
            missing = ledger.without_outcome()
            states = Counter(stack.record(k).get("state") for k in missing[:200])
            raise TimeoutError(
                f"{len(missing)} of {len(accepted)} intents have no outcome after "
                f"{plan.settle_timeout_s:.0f} s (states of the first 200: {dict(states)}), "
                f"e.g. {missing[:10]}\n{stack.log_tail()}"
            )
        crashed += replace_crashed()
        time.sleep(0.1)
    elapsed = time.monotonic() - start
    # Stop the fleet (SIGTERM drain) so nothing can reach the emulator while we count.
    stack.stop_workers()
    time.sleep(0.2)
    ledger = stack.ledger(accepted)
    report = ChaosReport(
        intents=plan.intents,
        accepted=len(accepted),
        workers=plan.workers,
        kills=kills,
        crashed=crashed,
        redis_restarts=restarts,
        lost=ledger.lost,
        doubled=ledger.doubled,
        extra_deliveries=ledger.extra_deliveries,
        ambiguous=ledger.ambiguous_counter,
        statuses=ledger.status_counts(),
        chaos_s=round(chaos_s, 1),
        elapsed_s=round(elapsed, 1),
        throughput=round(len(accepted) / elapsed, 1),
        deliveries=sum(ledger.deliveries.values()),
        violations=ledger.violations(),
    )
    return report, ledger


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--intents", type=int, default=20_000)
    parser.add_argument("--minutes", type=float, default=4.0, help="length of the chaos window")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--kill-every", type=float, default=0.5, help="seconds between kills")
    parser.add_argument(
        "--redis-restarts", type=int, default=None, help="default: one per minute, at least 1"
    )
    parser.add_argument("--seed", type=int, default=ChaosPlan.seed)
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args(argv)
    chaos_s = args.minutes * 60
    plan = ChaosPlan(
        intents=args.intents,
        workers=args.workers,
        kill_every_s=args.kill_every,
        chaos_s=chaos_s,
        enqueue_s=chaos_s * 0.75,
        redis_restarts=args.redis_restarts
        if args.redis_restarts is not None
        else max(1, round(args.minutes)),
        settle_timeout_s=chaos_s + 300,
        seed=args.seed,
    )

    def log(message: str) -> None:
        print(f"[soak] {message}", file=sys.stderr, flush=True)

    log(f"plan: {plan}")
    with (
        tempfile.TemporaryDirectory(prefix="igo-soak-") as tmp,
        ChaosStack(Path(tmp), worker_env=FAST_ENV) as stack,
    ):
        report, _ = run_chaos(stack, plan, log)
    print(report.summary())
    for line in report.violations:
        print(f"VIOLATION: {line}")
    data = asdict(report)
    if args.json_out is not None:
        args.json_out.write_text(json.dumps(data, indent=2) + "\n")
    print(json.dumps(data, separators=(",", ":")))
    return 1 if report.violations or report.lost else 0


if __name__ == "__main__":
    raise SystemExit(main())
