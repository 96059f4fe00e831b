"""Throughput of ig-outbound's worker against the floor: a bare ARQ job that only POSTs.

    .venv/bin/python -m bench.throughput --n 2000 [--workers K] [--json-out FILE]

One run, one machine, one emulator process (no injected latency or faults), the same N, the
same ARQ tuning (`Settings().worker`) and the same Graph bodies for both phases:

* ours:  `ig-outbound worker` processes (`WorkerProcess`, default settings) drain N text
  intents enqueued with `SyncOutboundClient.enqueue_many`; done when the outcomes stream holds
  N entries; every outcome must be `sent` and the emulator must have recorded exactly N calls.
* floor: bare ARQ worker processes (`BareWorkerSettings` below) whose one job POSTs the same
  body with a pooled `httpx.AsyncClient` (same timeouts and limits); done when the queue is
  empty; the emulator must have recorded exactly N calls.

Both phases get a warm-up batch first (imports, connection pools), then the emulator's
counters are reset and the clock starts at the first enqueue. Besides the rates the run
reports Redis commands per intent (`INFO commandstats` delta, Lua-internal commands included,
the benchmark's own polling excluded) and CPU seconds per process group, which tell where a
2-core box spends its time. The last line of stdout is one JSON object with every figure.

`--profile DIR` runs the workers under cProfile (via a `sitecustomize` on their PYTHONPATH;
the rates are then not comparable) and prints the top functions. See bench/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pstats
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import redis

from ig_outbound.emulator import EmulatorConfig, EmulatorControl, run_emulator_process
from ig_outbound.emulator.config import AccountConfig
from ig_outbound.harness.processes import RedisServer, WorkerProcess
from ig_outbound.producers.enqueue import SyncOutboundClient
from ig_outbound.producers.keys import ARQ_JOB_PREFIX, Keys
from ig_outbound.producers.outcome import Outcome
from ig_outbound.producers.validation import parse_intent
from ig_outbound.producers.wire import dumps, loads
from ig_outbound.worker.graph.client import build_http_client
from ig_outbound.worker.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
FLOOR_JOB_NAME = "bench.floor.send"
# ARQ's default job expiry (`ArqRedis.expires_extra_ms`), used by the floor's enqueue.
FLOOR_JOB_TTL_MS = 86_400_000
POLL_S = 0.005
START_TIMEOUT_S = 60.0
STOP_GRACE_S = 30.0

_PROFILE_HOOK = """\
import atexit, cProfile, os

_bench_profile = cProfile.Profile()
_bench_profile.enable()


def _bench_dump() -> None:
    _bench_profile.disable()
    out = os.path.join(os.environ["BENCH_PROFILE_DIR"], f"{os.environ['BENCH_PROFILE_TAG']}")
    _bench_profile.dump_stats(f"{out}-{os.getpid()}.prof")


atexit.register(_bench_dump)
"""


class BenchError(RuntimeError):
    """The benchmark could not produce a valid figure (the message says why)."""


# --- the floor: a bare ARQ worker ----------------------------------------------------------


async def bare_send(ctx: dict[str, Any], account_id: str, body: dict[str, Any]) -> None:
    """The floor's one job: POST the Graph body, read the JSON answer, nothing else."""
    http: httpx.AsyncClient = ctx["bench_http"]
    token: str = ctx["bench_tokens"][account_id]
    response = await http.post(
        f"/{ctx['bench_version']}/{account_id}/messages",
        content=json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    if response.status_code != 200:
        raise RuntimeError(f"Graph answered HTTP {response.status_code}")
    response.json()


async def _bare_startup(ctx: dict[str, Any]) -> None:
    settings = Settings()
    g = settings.graph
    ctx["bench_version"] = g.api_version
    ctx["bench_tokens"] = {k: v.get_secret_value() for k, v in settings.tokens.items()}
    ctx["bench_http"] = build_http_client(g)


async def _bare_shutdown(ctx: dict[str, Any]) -> None:
    http: httpx.AsyncClient | None = ctx.get("bench_http")
    if http is not None:
        await http.aclose()


def build_bare_worker_settings(settings: Settings) -> type:
    """ARQ settings of the floor: our ARQ tuning, Redis settings and serializer, no logic."""
    from arq.worker import func

    from ig_outbound.worker.worker_settings import ARQ_MAX_TRIES, build_worker_settings

    # Our worker's ARQ settings exactly (tuning, Redis, serializer), with only the job, the
    # deserializer and the hooks swapped for bare ones.
    ours = build_worker_settings(settings)
    attrs: dict[str, Any] = {k: v for k, v in vars(ours).items() if not k.startswith("__")}
    attrs.update(
        functions=[
            func(
                bare_send,
                name=FLOOR_JOB_NAME,
                timeout=settings.worker.job_timeout_s,
                max_tries=ARQ_MAX_TRIES,
            )
        ],
        job_deserializer=loads,
        on_startup=_bare_startup,
        on_shutdown=_bare_shutdown,
    )
    return type("BareWorkerSettings", (), attrs)


def __getattr__(name: str) -> Any:
    # `python -m arq bench.throughput.BareWorkerSettings` works too (settings from the env).
    if name == "BareWorkerSettings":
        return build_bare_worker_settings(Settings())
    raise AttributeError(name)


def _run_bare_worker() -> int:
    from arq import run_worker

    # No logging configured: the floor does not log per job (ARQ's lines are INFO).
    run_worker(build_bare_worker_settings(Settings()))
    return 0


# --- the stack -----------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchAccount:
    ig_id: str
    token: str
    users: list[str]


@dataclass
class PhaseResult:
    name: str
    n: int
    workers: int
    elapsed_s: float
    enqueue_s: float
    rate: float
    redis_cmds_per_intent: float
    redis_cmds: dict[str, float]
    cpu_s: dict[str, float]
    cpu_util: dict[str, float]
    worker_cpu_ms_per_intent: float
    latency_ms: dict[str, float] = field(default_factory=dict)
    # ARQ re-runs (Retry: rate slot, conversation order, ...) per intent; 0 for the floor.
    deferrals_per_intent: float = 0.0


class _Procs:
    """Worker processes of one phase; stopped (SIGTERM, then SIGKILL) when the phase ends."""

    def __init__(self, log_dir: Path, tag: str) -> None:
        self.log_dir = log_dir
        self.tag = tag
        self.ours: list[WorkerProcess] = []
        self.bare: list[subprocess.Popen[bytes]] = []
        self._logs: list[Any] = []

    def log_path(self, i: int) -> Path:
        return self.log_dir / f"{self.tag}-{i}.log"

    def start_ours(self, env: Mapping[str, str], k: int) -> None:
        for i in range(k):
            self.ours.append(WorkerProcess(env, log_path=self.log_path(i)).start())

    def start_bare(self, env: Mapping[str, str], k: int) -> None:
        child_env = {**os.environ, **env}
        child_env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [*env.get("PYTHONPATH", "").split(os.pathsep), str(PROJECT_ROOT)])
        )
        for i in range(k):
            log = open(self.log_path(i), "ab")  # noqa: SIM115 (closed in stop())
            self._logs.append(log)
            self.bare.append(
                subprocess.Popen(
                    [sys.executable, "-m", "bench.throughput", "--bare-worker"],
                    env=child_env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=PROJECT_ROOT,
                )
            )

    def pids(self) -> list[int]:
        return [p for p in (w.pid for w in self.ours) if p is not None] + [p.pid for p in self.bare]

    def check_alive(self) -> None:
        dead = [w.pid for w in self.ours if not w.alive()]
        dead += [p.pid for p in self.bare if p.poll() is not None]
        if dead:
            raise BenchError(f"{self.tag}: worker process(es) {dead} exited\n{self.log_tail()}")

    def log_tail(self, chars: int = 1500) -> str:
        tails = []
        for path in sorted(self.log_dir.glob(f"{self.tag}-*.log")):
            text = path.read_text(errors="replace")[-chars:]
            tails.append(f"--- {path.name} ---\n{text}")
        return "\n".join(tails)

    def stop(self) -> None:
        for w in self.ours:
            w.stop(STOP_GRACE_S)
        for p in self.bare:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.bare:
            try:
                p.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        for log in self._logs:
            log.close()


# --- measuring helpers ---------------------------------------------------------------------


def _sync(value: Any) -> Any:
    """A reply of the sync Redis client (redis-py types sync and async replies as one union)."""
    return value


def _proc_cpu_s(pid: int) -> float:
    """User+system CPU seconds of a process (Linux /proc); 0.0 where unavailable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_busy_s() -> float:
    """CPU seconds the whole machine spent busy, all cores (Linux /proc/stat); else 0.0."""
    try:
        first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in first[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _find_emulator_pid() -> int | None:
    """The emulator is our child (`python -m ig_outbound.emulator ...`), found by its cmdline."""
    me = str(os.getpid())
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
            ppid = stat[stat.rindex(")") + 2 :].split()[1]
            if ppid == me and b"emulator" in (entry / "cmdline").read_bytes():
                return int(entry.name)
        except (OSError, ValueError, IndexError):
            continue
    return None


@dataclass(frozen=True)
class _Snapshot:
    at: float
    commands: dict[str, int]
    cpu: dict[str, float]


def _snapshot(r: redis.Redis, worker_pids: Sequence[int], emulator_pid: int | None) -> _Snapshot:
    raw: Mapping[str, Any] = _sync(r.info("commandstats"))
    commands = {
        name.removeprefix("cmdstat_"): int(stats["calls"])
        for name, stats in raw.items()
        if isinstance(stats, Mapping)
    }
    cpu_info: Mapping[str, Any] = _sync(r.info("cpu"))
    cpu = {
        "workers": sum(_proc_cpu_s(p) for p in worker_pids),
        "redis": float(cpu_info["used_cpu_user"]) + float(cpu_info["used_cpu_sys"]),
        "emulator": _proc_cpu_s(emulator_pid) if emulator_pid else 0.0,
        "driver": time.process_time(),
        "machine": _machine_busy_s(),
    }
    return _Snapshot(time.perf_counter(), commands, cpu)


def _delta(
    before: _Snapshot, after: _Snapshot, n: int, exclude: Mapping[str, int]
) -> tuple[float, dict[str, float], dict[str, float], dict[str, float]]:
    """Commands per intent (total, by command) and CPU seconds/utilisation by process group."""
    per_cmd: dict[str, float] = {}
    for name, calls in after.commands.items():
        d = calls - before.commands.get(name, 0) - exclude.get(name, 0)
        if name not in ("info", "client|list") and d > 0:
            per_cmd[name] = round(d / n, 3)
    per_cmd = dict(sorted(per_cmd.items(), key=lambda kv: -kv[1]))
    wall = after.at - before.at
    cpu = {k: round(after.cpu[k] - before.cpu[k], 3) for k in after.cpu}
    # Whatever else ran on the box meanwhile (other people's tests, say): a noisy-run flag.
    machine = cpu.pop("machine")
    cpu["other"] = round(max(machine - sum(cpu.values()), 0.0), 3)
    util = {k: round(v / wall, 3) for k, v in cpu.items()}
    util["total"] = round(machine / wall, 3)
    return round(sum(per_cmd.values()), 2), per_cmd, cpu, util


def _pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)] if ordered else 0.0


def _wait(
    what: str,
    done: Callable[[], tuple[bool, str]],
    timeout_s: float,
    procs: _Procs,
) -> int:
    """Poll `done` every POLL_S until it is true; returns the number of polls."""
    deadline = time.monotonic() + timeout_s
    polls = 0
    while True:
        ok, progress = done()
        polls += 1
        if ok:
            return polls
        if time.monotonic() > deadline:
            raise BenchError(
                f"{procs.tag}: timed out after {timeout_s:.0f} s waiting for {what} "
                f"({progress})\n{procs.log_tail()}"
            )
        if polls % 200 == 0:
            procs.check_alive()
        time.sleep(POLL_S)


def _wait_pollers(r: redis.Redis, k: int, procs: _Procs) -> None:
    """Wait until K ARQ workers are polling (K connections whose last command is the poll)."""

    def ready() -> tuple[bool, str]:
        procs.check_alive()
        clients: list[dict[str, Any]] = _sync(r.client_list())
        polling = sum(1 for c in clients if c.get("cmd") == "zrangebyscore")
        return polling >= k, f"{polling}/{k} workers polling"

    _wait("the workers to start", ready, START_TIMEOUT_S, procs)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- workload ------------------------------------------------------------------------------


def _accounts(n_accounts: int, recipients: int) -> list[BenchAccount]:
    return [
        BenchAccount(
            ig_id=f"1784150000000{a:04d}",
            token="IGAA" + secrets.token_urlsafe(24),
            users=[f"1254478{a:03d}{u:06d}" for u in range(recipients)],
        )
        for a in range(n_accounts)
    ]


def _intents(accounts: Sequence[BenchAccount], n: int, tag: str) -> list[dict[str, Any]]:
    """N text intents, round-robin over accounts, then over each account's recipients."""
    out = []
    for i in range(n):
        acc = accounts[i % len(accounts)]
        user = acc.users[(i // len(accounts)) % len(acc.users)]
        out.append(
            {
                "idempotency_key": f"{tag}:{i}",
                "account_id": acc.ig_id,
                "recipient": {"id": user},
                "content": {"kind": "text", "text": f"Benchmark message {i}: your order shipped."},
            }
        )
    return out


@dataclass
class _Run:
    args: argparse.Namespace
    run_id: str
    redis_url: str
    graph_url: str
    control: EmulatorControl
    r: redis.Redis
    accounts: list[BenchAccount]
    log_dir: Path
    emulator_pid: int | None

    def base_env(self, prefix: str, tag: str) -> dict[str, str]:
        env = {
            "IG_OUTBOUND_REDIS_URL": self.redis_url,
            "IG_OUTBOUND_KEY_PREFIX": prefix,
            "IG_OUTBOUND_GRAPH__BASE_URL": self.graph_url,
            "IG_OUTBOUND_TOKENS": json.dumps({a.ig_id: a.token for a in self.accounts}),
        }
        if self.args.log_level:
            env["IG_OUTBOUND_LOG_LEVEL"] = self.args.log_level
        if self.args.profile:
            hook_dir = self.log_dir / "profile-hook"
            hook_dir.mkdir(exist_ok=True)
            (hook_dir / "sitecustomize.py").write_text(_PROFILE_HOOK)
            env["PYTHONPATH"] = os.pathsep.join([str(hook_dir), str(PROJECT_ROOT)])
            env["BENCH_PROFILE_DIR"] = str(Path(self.args.profile).resolve())
            env["BENCH_PROFILE_TAG"] = tag
        return env

    def check_emulator(self, tag: str, n: int) -> None:
        stats = self.control.stats()
        if stats["accepted"] != n or stats["rejected"] != 0:
            raise BenchError(
                f"{tag}: the emulator recorded {stats['accepted']} calls "
                f"(and {stats['rejected']} rejected), expected exactly {n}"
            )


def start_workers(
    stack: ExitStack,
    run: _Run,
    k: int,
    tag: str,
    extra_env: Mapping[str, str] | None = None,
    *,
    prefix: str | None = None,
) -> tuple[_Procs, SyncOutboundClient, Keys]:
    """K `ig-outbound worker` processes on their own key prefix, registered and polling."""
    prefix = prefix or f"igo-{tag}-{run.run_id}"
    keys = Keys(prefix)
    procs = _Procs(run.log_dir, tag)
    stack.callback(procs.stop)
    procs.start_ours({**run.base_env(prefix, tag), **(extra_env or {})}, k)
    settings = Settings(redis_url=run.redis_url, key_prefix=prefix)
    client = stack.enter_context(SyncOutboundClient.connect(run.redis_url, settings))

    def registered() -> tuple[bool, str]:
        have = int(_sync(run.r.scard(keys.accounts)))
        return have >= len(run.accounts), f"{have}/{len(run.accounts)} accounts registered"

    # Workers publish the slot spacing before they register accounts: registered => published.
    _wait("accounts to be registered", registered, START_TIMEOUT_S, procs)
    _wait_pollers(run.r, k, procs)
    return procs, client, keys


def _run_ours(run: _Run, n: int, k: int) -> PhaseResult:
    warm = _intents(run.accounts, run.args.warmup, f"{run.run_id}:w")
    measured = _intents(run.accounts, n, f"{run.run_id}:m")
    with ExitStack() as stack:
        procs, client, keys = start_workers(stack, run, k, "ours", prefix=f"igo-bench-{run.run_id}")

        def outcomes(target: int) -> Callable[[], tuple[bool, str]]:
            def check() -> tuple[bool, str]:
                have = int(_sync(run.r.xlen(keys.outcomes)))
                return have >= target, f"{have}/{target} outcomes"

            return check

        _enqueue_ours(client, warm, run.args.chunk)
        _wait("the warm-up outcomes", outcomes(len(warm)), run.args.timeout, procs)
        run.control.reset()

        before = _snapshot(run.r, procs.pids(), run.emulator_pid)
        _enqueue_ours(client, measured, run.args.chunk)
        enqueued = time.perf_counter()
        polls = _wait("the outcomes", outcomes(len(warm) + n), run.args.timeout, procs)
        after = _snapshot(run.r, procs.pids(), run.emulator_pid)

        latencies = _verify_ours(run, keys, f"{run.run_id}:m:", n)
    result = _phase_result("ours", n, k, before, after, enqueued, {"xlen": polls})
    return dataclasses.replace(
        result,
        latency_ms={
            "p50": round(_pct(latencies, 0.50), 1),
            "p99": round(_pct(latencies, 0.99), 1),
            "max": round(max(latencies), 1),
        },
        # ARQ counts every run of a job with INCR (redis-py sends INCRBY; our Lua and code
        # never do): runs beyond the first are re-runs (deferrals, retries).
        deferrals_per_intent=round(max(result.redis_cmds.get("incrby", 0.0) - 1.0, 0.0), 3),
    )


def _phase_result(
    name: str, n: int, k: int, before: Any, after: Any, enqueued: float, polls: dict[str, int]
) -> PhaseResult:
    """The figures every phase reports, from the snapshots around its measured part."""
    total, per_cmd, cpu, util = _delta(before, after, n, polls)
    elapsed = after.at - before.at
    return PhaseResult(
        name=name,
        n=n,
        workers=k,
        elapsed_s=round(elapsed, 3),
        enqueue_s=round(enqueued - before.at, 3),
        rate=round(n / elapsed, 1),
        redis_cmds_per_intent=total,
        redis_cmds=per_cmd,
        cpu_s=cpu,
        cpu_util=util,
        worker_cpu_ms_per_intent=round(cpu["workers"] * 1000 / n, 2),
    )


def _enqueue_ours(client: SyncOutboundClient, intents: Sequence[Any], chunk: int) -> None:
    for part in _chunks(intents, chunk):
        results = client.enqueue_many(part)
        refused = [r for r in results if r.status != "queued"]
        if refused:
            first = refused[0]
            raise BenchError(f"ours: {len(refused)} intents not queued, e.g. {first}")


def _verify_ours(run: _Run, keys: Keys, key_prefix: str, n: int) -> list[float]:
    """All N measured intents have exactly one outcome, `sent`; Graph saw exactly N calls."""
    statuses: dict[str, str] = {}
    latencies: list[float] = []
    for _, entry in _sync(run.r.xrange(keys.outcomes)):
        outcome = Outcome.model_validate_json(entry[b"outcome"])
        if not outcome.key.startswith(key_prefix):
            continue
        if outcome.key in statuses:
            raise BenchError(f"ours: two outcomes for {outcome.key}")
        statuses[outcome.key] = outcome.status.value
        if outcome.latency_ms is not None:
            latencies.append(outcome.latency_ms)
    not_sent = {k: s for k, s in statuses.items() if s != "sent"}
    if len(statuses) != n or not_sent:
        sample = dict(list(not_sent.items())[:5])
        raise BenchError(
            f"ours: {len(statuses)} outcomes for {n} intents, {len(not_sent)} not sent: {sample}"
        )
    if len(latencies) != n:
        raise BenchError(f"ours: only {len(latencies)} of {n} outcomes carry latency_ms")
    run.check_emulator("ours", n)
    return latencies


def _floor_jobs(intents: Sequence[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    from ig_outbound.worker.payloads import build_body

    return [(i["account_id"], build_body(parse_intent(i))) for i in intents]


def _enqueue_floor(
    r: redis.Redis, queue: str, jobs: Sequence[tuple[str, dict[str, Any]]], chunk: int
) -> None:
    """ARQ's enqueue (job key + queue entry), pipelined per chunk like our enqueue_many."""
    from arq.jobs import serialize_job

    for part in _chunks(jobs, chunk):
        with r.pipeline(transaction=False) as pipe:
            for account_id, body in part:
                job_id = uuid.uuid4().hex
                now_ms = int(time.time() * 1000)
                data = serialize_job(
                    FLOOR_JOB_NAME, (account_id, body), {}, None, now_ms, serializer=dumps
                )
                pipe.psetex(ARQ_JOB_PREFIX + job_id, FLOOR_JOB_TTL_MS, data)
                pipe.zadd(queue, {job_id: now_ms})
            pipe.execute()


def _run_floor(run: _Run, n: int, k: int) -> PhaseResult:
    prefix = f"floor-{run.run_id}"
    queue = Keys(prefix).queue
    warm = _floor_jobs(_intents(run.accounts, run.args.warmup, f"{run.run_id}:fw"))
    measured = _floor_jobs(_intents(run.accounts, n, f"{run.run_id}:fm"))
    with ExitStack() as stack:
        procs = _Procs(run.log_dir, "floor")
        stack.callback(procs.stop)
        procs.start_bare(run.base_env(prefix, "floor"), k)
        _wait_pollers(run.r, k, procs)

        def drained() -> tuple[bool, str]:
            left = int(_sync(run.r.zcard(queue)))
            return left == 0, f"{left} jobs left in the queue"

        _enqueue_floor(run.r, queue, warm, run.args.chunk)
        _wait("the warm-up jobs", drained, run.args.timeout, procs)
        run.control.reset()

        before = _snapshot(run.r, procs.pids(), run.emulator_pid)
        _enqueue_floor(run.r, queue, measured, run.args.chunk)
        enqueued = time.perf_counter()
        polls = _wait("the jobs", drained, run.args.timeout, procs)
        after = _snapshot(run.r, procs.pids(), run.emulator_pid)
        run.check_emulator("floor", n)
    return _phase_result("floor", n, k, before, after, enqueued, {"zcard": polls})


# --- reporting -----------------------------------------------------------------------------


def _print_profiles(profile_dir: Path, top: int = 25) -> None:
    for tag in ("ours", "floor"):
        files = sorted(profile_dir.glob(f"{tag}-*.prof"))
        if not files:
            continue
        stats = pstats.Stats(*(str(f) for f in files), stream=sys.stdout)
        print(f"\n=== cProfile, {tag} workers ({len(files)} process(es)), by own time ===")
        stats.strip_dirs().sort_stats("tottime").print_stats(top)
        print(f"=== cProfile, {tag} workers, by cumulative time ===")
        stats.sort_stats("cumulative").print_stats(top)


def _summary(phases: Sequence[PhaseResult], ratio: float | None) -> None:
    for p in phases:
        print(
            f"{p.name:<6} {p.rate:>8,.0f} intents/s  ({p.n} in {p.elapsed_s:.2f} s, "
            f"{p.workers} worker(s), enqueue {p.enqueue_s:.2f} s)"
        )
        if p.latency_ms:
            print(
                f"       enqueue->outcome p50 {p.latency_ms['p50']:.0f} ms, "
                f"p99 {p.latency_ms['p99']:.0f} ms, max {p.latency_ms['max']:.0f} ms"
            )
        if p.deferrals_per_intent > 0.05:
            print(
                f"       WARNING {p.deferrals_per_intent:g} deferred re-runs per intent: the rate "
                "limit or conversation order binds; raise --accounts / --recipients"
            )
        top = ", ".join(f"{c} {v:g}" for c, v in list(p.redis_cmds.items())[:8])
        print(f"       Redis commands/intent {p.redis_cmds_per_intent:g} ({top}, ...)")
        util = ", ".join(f"{k} {v:.2f}" for k, v in p.cpu_util.items())
        print(f"       CPU (cores busy): {util}")
        print(f"       worker CPU per intent {p.worker_cpu_ms_per_intent:.2f} ms")
    if ratio is not None:
        print(f"ratio  ours/floor = {ratio:.2f}")


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    run_id = secrets.token_hex(3)
    accounts = _accounts(args.accounts, args.recipients)
    tuning = Settings().worker
    calibration_ms = _calibrate_ms()
    results: dict[str, list[PhaseResult]] = {}
    with ExitStack() as stack:
        log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="igo-bench-")))
        server = stack.enter_context(RedisServer())
        config = EmulatorConfig(
            accounts=[
                AccountConfig(ig_id=a.ig_id, token=a.token, username=f"bench{i}")
                for i, a in enumerate(accounts)
            ],
            users={a.ig_id: a.users for a in accounts},
        )
        graph_url = stack.enter_context(run_emulator_process(config))
        control = stack.enter_context(EmulatorControl(graph_url))
        r = redis.Redis.from_url(server.url)
        stack.callback(r.close)
        run = _Run(
            args, run_id, server.url, graph_url, control, r, accounts, log_dir, _find_emulator_pid()
        )
        if args.profile:
            Path(args.profile).mkdir(parents=True, exist_ok=True)
        names = args.phases.split(",")
        for i in range(args.rounds):
            # Alternate the order, so a drift in the machine's load hits both phases alike.
            for name in names if i % 2 == 0 else names[::-1]:
                phase = {"ours": _run_ours, "floor": _run_floor}[name]
                result = phase(replace(run, run_id=f"{run_id}r{i}"), args.n, args.workers)
                results.setdefault(name, []).append(result)
                print(f"[round {i + 1} {name}: {result.rate:,.0f} intents/s]", file=sys.stderr)
    # The round with the median rate stands for its phase; every round's rate is kept.
    phases = [sorted(rs, key=lambda p: p.rate)[(len(rs) - 1) // 2] for rs in results.values()]
    rates = {name: [p.rate for p in rs] for name, rs in results.items()}
    ratio = None
    if "ours" in rates and "floor" in rates:
        ratio = round(statistics.median(rates["ours"]) / statistics.median(rates["floor"]), 3)
    _summary(phases, ratio)
    print(f"box    calibration {calibration_ms} ms (lower is faster; compare runs with it)")
    if args.rounds > 1:
        print("rounds " + "; ".join(f"{k}: {v}" for k, v in rates.items()))
    if args.profile:
        _print_profiles(Path(args.profile))
    return {
        "bench": "throughput",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _git_revision(),
        "calibration_ms": calibration_ms,
        "n": args.n,
        "workers": args.workers,
        "accounts": args.accounts,
        "recipients_per_account": args.recipients,
        "cpus": os.cpu_count(),
        "log_level": args.log_level or "default",
        "profiled": bool(args.profile),
        "rounds": args.rounds,
        "rates": rates,
        "tuning": {
            "max_jobs": tuning.max_jobs,
            "poll_delay_s": tuning.poll_delay_s,
            "queue_read_limit": tuning.queue_read_limit,
        },
        **{p.name: asdict(p) for p in phases},
        "ratio": ratio,
    }


def _calibrate_ms() -> float:
    """Milliseconds for a fixed pure-Python workload (best of 3): how fast this box is right
    now, to compare runs taken at different times (shared or throttled machines drift)."""
    item = {"recipient": {"id": "1254478000000001"}, "message": {"text": "calibration"}}
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for i in range(20_000):
            json.loads(json.dumps({**item, "i": i}))
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1)


def _git_revision() -> str | None:
    """The commit measured (with `+dirty` if the tree has changes), or None outside git."""
    try:
        rev = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "describe", "--always", "--dirty=+dirty"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return rev.stdout.strip() or None


def add_common_args(p: argparse.ArgumentParser) -> None:
    """Options every benchmark built on this module takes."""
    p.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        help="IG_OUTBOUND_LOG_LEVEL for our workers (default: the product default)",
    )
    p.add_argument("--json-out", metavar="FILE", help="also append the JSON line(s) to FILE")


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.throughput", description=__doc__.split("\n")[0]
    )
    p.add_argument("--n", type=int, default=2000, help="intents per phase (default 2000)")
    p.add_argument("--workers", type=int, default=1, help="worker processes per phase")
    p.add_argument("--accounts", type=int, default=20, help="IG accounts (default 20)")
    p.add_argument("--recipients", type=int, default=250, help="recipients per account (250)")
    p.add_argument("--chunk", type=int, default=500, help="intents per enqueue round trip")
    p.add_argument("--warmup", type=int, default=100, help="warm-up intents per phase")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds allowed per wait")
    p.add_argument("--rounds", type=int, default=1, help="rounds of both phases (median)")
    p.add_argument("--phases", default="ours,floor", help="ours,floor | ours | floor")
    add_common_args(p)
    p.add_argument("--profile", metavar="DIR", help="cProfile the workers, write DIR/*.prof")
    p.add_argument("--bare-worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not args.bare_worker:
        if args.n < 1 or args.workers < 1 or args.accounts < 1 or args.recipients < 1:
            p.error("--n, --workers, --accounts and --recipients must be >= 1")
        if args.chunk < 1 or args.warmup < 1 or args.rounds < 1:
            p.error("--chunk, --warmup and --rounds must be >= 1")
        if not set(args.phases.split(",")) <= {"ours", "floor"}:
            p.error("--phases takes ours, floor or ours,floor")
    return args


def _on_sigterm(signum: int, frame: object) -> None:
    # Unwind the ExitStacks (stop workers, the emulator and Redis) instead of dying at once.
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.bare_worker:
        return _run_bare_worker()
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        result = run_bench(args)
    except BenchError as exc:
        print(f"bench.throughput: {exc}", file=sys.stderr)
        return 1
    line = json.dumps(result, sort_keys=True)
    print(line, flush=True)
    if args.json_out:
        with open(args.json_out, "a", encoding="utf-8") as out:
            out.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
