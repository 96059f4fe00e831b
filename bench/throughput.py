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
the benchmark's own polling excluded), Redis CPU per intent (`INFO cpu` delta, so parsing and
I/O too) with the rate one Redis core would sustain at that cost, and CPU seconds per process
group, which tell where a 2-core box spends its time. The last line of stdout is one JSON
object with every figure.

`--profile DIR` runs the workers under cProfile (via a `sitecustomize` on their PYTHONPATH;
the rates are then not comparable) and prints the top functions. The stack, the worker
start-up and the measuring are bench/harness.py's (shared with bench/rates.py, which runs
these two phases too). See bench/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pstats
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import redis

from bench.harness import (
    PROJECT_ROOT,
    BenchAccount,
    BenchError,
    BenchRun,
    Snapshot,
    WorkerGroup,
    account_configs,
    add_common_args,
    calibrate_ms,
    chunks,
    delta,
    emit_json,
    enqueue_chunked,
    exit_on_sigterm,
    git_revision,
    make_accounts,
    percentile,
    read_outcomes,
    snapshot,
    start_stack,
    start_workers,
    sync_reply,
    text_intent,
    usec_per_intent,
    wait_for,
    wait_outcomes,
    wait_pollers,
)
from ig_outbound.emulator import EmulatorConfig
from ig_outbound.graph.client import build_http_client
from ig_outbound.producers.keys import ARQ_JOB_PREFIX, Keys
from ig_outbound.producers.validation import parse_intent
from ig_outbound.producers.wire import dumps, loads
from ig_outbound.worker.settings import Settings

FLOOR_JOB_NAME = "bench.floor.send"
# ARQ's default job expiry (`ArqRedis.expires_extra_ms`), used by the floor's enqueue.
FLOOR_JOB_TTL_MS = 86_400_000

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


# --- the phases ----------------------------------------------------------------------------


@dataclass
class PhaseResult:
    """The figures of one phase (ours or the floor) on N intents with K workers."""

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
    # Redis's CPU (INFO cpu: user + sys, so parsing and I/O too) per intent, and the rate one
    # Redis core would sustain at that cost (1e6 / µs per intent), for the whole fleet.
    redis_cpu_us_per_intent: float = 0.0
    redis_core_intents_per_s: float = 0.0
    # INFO commandstats µs per intent by command (a script's includes its commands').
    redis_usec: dict[str, float] = field(default_factory=dict)
    latency_ms: dict[str, float] = field(default_factory=dict)
    # ARQ re-runs (Retry: rate slot, conversation order, ...) per intent; 0 for the floor.
    deferrals_per_intent: float = 0.0


def _profile_env(run: BenchRun, tag: str) -> dict[str, str]:
    """With --profile: the environment that makes a worker run under cProfile (else none)."""
    if not run.args.profile:
        return {}
    hook_dir = run.log_dir / "profile-hook"
    hook_dir.mkdir(exist_ok=True)
    (hook_dir / "sitecustomize.py").write_text(_PROFILE_HOOK)
    return {
        "PYTHONPATH": os.pathsep.join([str(hook_dir), str(PROJECT_ROOT)]),
        "BENCH_PROFILE_DIR": str(Path(run.args.profile).resolve()),
        "BENCH_PROFILE_TAG": tag,
    }


def _intents(accounts: Sequence[BenchAccount], n: int, tag: str) -> list[dict[str, Any]]:
    """N text intents, round-robin over accounts, then over each account's recipients."""
    out = []
    for i in range(n):
        acc = accounts[i % len(accounts)]
        user = acc.users[(i // len(accounts)) % len(acc.users)]
        text = f"Benchmark message {i}: your order shipped."
        out.append(text_intent(f"{tag}:{i}", acc.ig_id, user, text))
    return out


def run_ours(run: BenchRun, n: int, k: int) -> PhaseResult:
    """Ours: K `ig-outbound worker` processes drain N text intents (after a warm-up)."""
    warm = _intents(run.accounts, run.args.warmup, f"{run.run_id}:w")
    measured = _intents(run.accounts, n, f"{run.run_id}:m")
    with ExitStack() as stack:
        procs, client, keys = start_workers(
            stack, run, k, "ours", _profile_env(run, "ours"), prefix=f"igo-bench-{run.run_id}"
        )
        enqueue_chunked(client, warm, run.args.chunk, "ours")
        wait_outcomes(run, keys, len(warm), procs, "the warm-up outcomes")
        run.control.reset()

        before = snapshot(run.r, procs.pids(), run.emulator_pid)
        enqueue_chunked(client, measured, run.args.chunk, "ours")
        enqueued = time.perf_counter()
        polls = wait_outcomes(run, keys, len(warm) + n, procs, "the outcomes")
        after = snapshot(run.r, procs.pids(), run.emulator_pid)

        latencies = _verify_ours(run, keys, f"{run.run_id}:m:", n)
    result = _phase_result("ours", n, k, before, after, enqueued, {"xlen": polls})
    return dataclasses.replace(
        result,
        latency_ms={
            "p50": round(percentile(latencies, 0.50), 1),
            "p99": round(percentile(latencies, 0.99), 1),
            "max": round(max(latencies), 1),
        },
        # Every run of a job counts its try: the claim's INCR (arq_claim.lua), or redis-py's
        # INCRBY when ARQ fetches the job itself: runs beyond the first are re-runs.
        deferrals_per_intent=round(
            max(sum(result.redis_cmds.get(c, 0.0) for c in ("incr", "incrby")) - 1.0, 0.0), 3
        ),
    )


def _phase_result(
    name: str,
    n: int,
    k: int,
    before: Snapshot,
    after: Snapshot,
    enqueued: float,
    polls: dict[str, int],
) -> PhaseResult:
    """The figures every phase reports, from the snapshots around its measured part."""
    total, per_cmd, cpu, util = delta(before, after, n, polls)
    elapsed = after.at - before.at
    redis_us = cpu["redis"] * 1e6 / n
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
        redis_cpu_us_per_intent=round(redis_us, 1),
        redis_core_intents_per_s=round(1e6 / redis_us) if redis_us > 0 else 0.0,
        redis_usec=usec_per_intent(before, after, n),
    )


def _verify_ours(run: BenchRun, keys: Keys, key_prefix: str, n: int) -> list[float]:
    """All N measured intents have exactly one outcome, `sent`; Graph saw exactly N calls."""
    outcomes = read_outcomes(run.r, keys, key_prefix, "ours")
    not_sent = {k: o.status.value for k, o in outcomes.items() if o.status.value != "sent"}
    if len(outcomes) != n or not_sent:
        sample = dict(list(not_sent.items())[:5])
        raise BenchError(
            f"ours: {len(outcomes)} outcomes for {n} intents, {len(not_sent)} not sent: {sample}"
        )
    latencies = [o.latency_ms for o in outcomes.values() if o.latency_ms is not None]
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

    for part in chunks(jobs, chunk):
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


def _start_floor_workers(stack: ExitStack, run: BenchRun, k: int, prefix: str) -> WorkerGroup:
    """K bare ARQ workers (this module with --bare-worker) on `prefix`, polling."""
    procs = WorkerGroup(run.log_dir, "floor")
    stack.callback(procs.stop)
    env = {**run.base_env(prefix), **_profile_env(run, "floor")}
    procs.start_module(["bench.throughput", "--bare-worker"], env, k)
    wait_pollers(run.r, k, procs)
    return procs


def run_floor(run: BenchRun, n: int, k: int) -> PhaseResult:
    """The floor: K bare ARQ workers POST the same N bodies (after a warm-up)."""
    prefix = f"floor-{run.run_id}"
    queue = Keys(prefix).queue
    warm = _floor_jobs(_intents(run.accounts, run.args.warmup, f"{run.run_id}:fw"))
    measured = _floor_jobs(_intents(run.accounts, n, f"{run.run_id}:fm"))
    with ExitStack() as stack:
        procs = _start_floor_workers(stack, run, k, prefix)

        def drained() -> tuple[bool, str]:
            left = int(sync_reply(run.r.zcard(queue)))
            return left == 0, f"{left} jobs left in the queue"

        _enqueue_floor(run.r, queue, warm, run.args.chunk)
        wait_for("the warm-up jobs", drained, run.args.timeout, procs)
        run.control.reset()

        before = snapshot(run.r, procs.pids(), run.emulator_pid)
        _enqueue_floor(run.r, queue, measured, run.args.chunk)
        enqueued = time.perf_counter()
        polls = wait_for("the jobs", drained, run.args.timeout, procs)
        after = snapshot(run.r, procs.pids(), run.emulator_pid)
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
        scripts = p.redis_usec.get("evalsha", 0.0)
        print(
            f"       Redis CPU/intent {p.redis_cpu_us_per_intent:.0f} µs (INFO cpu; scripts "
            f"{scripts:.0f} µs in commandstats): ~{p.redis_core_intents_per_s:,.0f} intents/s "
            "per Redis core"
        )
        util = ", ".join(f"{k} {v:.2f}" for k, v in p.cpu_util.items())
        print(f"       CPU (cores busy): {util}")
        print(f"       worker CPU per intent {p.worker_cpu_ms_per_intent:.2f} ms")
    if ratio is not None:
        print(f"ratio  ours/floor = {ratio:.2f}")


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    accounts = make_accounts(args.accounts, args.recipients)
    tuning = Settings().worker
    calibration_ms = calibrate_ms()
    results: dict[str, list[PhaseResult]] = {}
    with ExitStack() as stack:
        config = EmulatorConfig(
            accounts=account_configs(accounts, "bench"),
            users={a.ig_id: a.users for a in accounts},
        )
        run = start_stack(stack, args, accounts, config, log_prefix="igo-bench-")
        if args.profile:
            Path(args.profile).mkdir(parents=True, exist_ok=True)
        names = args.phases.split(",")
        for i in range(args.rounds):
            # Alternate the order, so a drift in the machine's load hits both phases alike.
            for name in names if i % 2 == 0 else names[::-1]:
                phase = {"ours": run_ours, "floor": run_floor}[name]
                result = phase(replace(run, run_id=f"{run.run_id}r{i}"), args.n, args.workers)
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
        "commit": git_revision(),
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


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.bare_worker:
        return _run_bare_worker()
    exit_on_sigterm()
    try:
        result = run_bench(args)
    except BenchError as exc:
        print(f"bench.throughput: {exc}", file=sys.stderr)
        return 1
    emit_json(result, args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
