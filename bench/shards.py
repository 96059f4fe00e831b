"""One Redis against two: the same workload on 1 shard and on 2 shards (docs/scaling.md).

    .venv/bin/python -m bench.shards --n 3000 [--workers 2] [--plots docs/img] [--json-out F]

One Graph emulator process serves both phases; each phase starts its own private
redis-servers (one, then two: `IG_OUTBOUND_SHARDS`) and K `ig-outbound worker` processes in
all (`--workers`, split evenly over the shards: each serves one, `IG_OUTBOUND_WORKER__SHARDS`),
so both phases have the same worker processes and only the Redis side differs. The workload:
N text intents round-robin over `--accounts` accounts (chosen half on each shard by the
shard rule), enqueued with `SyncShardedOutboundClient.enqueue_many` in chunks (one pipeline per
shard per chunk), after a warm-up batch. Done when the shards' outcome streams hold N
entries together; every outcome must be `sent` and the emulator must have seen exactly N.

Reported per phase: intents/s, and per shard the intents it carried, its Redis CPU
(`INFO cpu` user+sys delta) per intent, and what one Redis core would sustain at that cost
(1e6 / µs per intent); CPU seconds of the workers, the Redis servers, the emulator and the
rest of the box ("other": above ~0.2 cores the run was disturbed). `--plots DIR` writes
`DIR/shards-scaling.png`. The last line of stdout is one JSON object. Uses bench/harness.py's
measuring and waits.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from bench.harness import (
    BenchAccount,
    BenchError,
    WorkerGroup,
    account_configs,
    add_common_args,
    calibrate_ms,
    chunks,
    emit_json,
    exit_on_sigterm,
    find_emulator_pid,
    git_revision,
    make_accounts,
    snapshot,
    sync_reply,
    text_intent,
    wait_for,
)
from ig_outbound.emulator import EmulatorConfig, EmulatorControl, run_emulator_process
from ig_outbound.harness.processes import RedisServer, WorkerProcess
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.outcome import Outcome
from ig_outbound.producers.settings import ClientSettings
from ig_outbound.producers.sharded import SyncShardedOutboundClient
from ig_outbound.producers.shards import shard_of

PREFIX = "igo-shards-bench"


@dataclass(frozen=True)
class ShardFigures:
    shard: int
    intents: int
    redis_cpu_s: float
    redis_cpu_us_per_intent: float
    redis_core_intents_per_s: float


@dataclass(frozen=True)
class PhaseFigures:
    shards: int
    workers: int
    n: int
    elapsed_s: float
    rate: float
    per_shard: list[ShardFigures]
    cpu_s: dict[str, float]
    cpu_util: dict[str, float]


def balanced_accounts(count: int, recipients: int) -> list[BenchAccount]:
    """`count` accounts, half on each shard of two by the shard rule (the hash alone would
    split a small set unevenly), so the 2-shard phase gives each Redis the same work."""
    pool = make_accounts(count * 8, recipients)
    halves = [[a for a in pool if shard_of(a.ig_id, 2) == s][: count // 2] for s in (0, 1)]
    if min(len(h) for h in halves) < count // 2:
        raise BenchError("not enough accounts on each shard: use fewer --accounts")
    return [a for pair in zip(*halves, strict=True) for a in pair]


def _intents(accounts: Sequence[BenchAccount], n: int, tag: str) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        acc = accounts[i % len(accounts)]
        user = acc.users[(i // len(accounts)) % len(acc.users)]
        out.append(text_intent(f"{tag}:{i}", acc.ig_id, user, f"Shard benchmark {i}."))
    return out


def _worker_env(args: argparse.Namespace, urls: Sequence[str], shard: int, graph_url: str,
                accounts: Sequence[BenchAccount]) -> dict[str, str]:  # fmt: skip
    env = {
        "IG_OUTBOUND_REDIS_URL": urls[0],
        "IG_OUTBOUND_KEY_PREFIX": PREFIX,
        "IG_OUTBOUND_GRAPH__BASE_URL": graph_url,
        "IG_OUTBOUND_TOKENS": json.dumps({a.ig_id: a.token for a in accounts}),
        "IG_OUTBOUND_MEDIA__PROBE": "false",
        "IG_OUTBOUND_REDIS_ALLOW_DATA_LOSS": "true",
    }
    if len(urls) > 1:
        env["IG_OUTBOUND_SHARDS"] = json.dumps(list(urls))
        env["IG_OUTBOUND_WORKER__SHARDS"] = json.dumps([shard])
    if args.log_level:
        env["IG_OUTBOUND_LOG_LEVEL"] = args.log_level
    return env


def _outcomes(clients: Sequence[redis.Redis], keys: Keys) -> int:
    return sum(int(sync_reply(r.xlen(keys.outcomes))) for r in clients)


def _verify(clients: Sequence[redis.Redis], keys: Keys, tag: str, n: int) -> None:
    found: dict[str, str] = {}
    for r in clients:
        for _, entry in sync_reply(r.xrange(keys.outcomes)):
            outcome = Outcome.model_validate_json(entry[b"outcome"])
            if outcome.key.startswith(tag):
                if outcome.key in found:
                    raise BenchError(f"two outcomes for {outcome.key}")
                found[outcome.key] = outcome.status.value
    not_sent = [k for k, s in found.items() if s != "sent"]
    if len(found) != n or not_sent:
        raise BenchError(f"{len(found)} outcomes for {n} intents, {len(not_sent)} not sent")


def run_phase(
    args: argparse.Namespace,
    shards: int,
    accounts: list[BenchAccount],
    graph_url: str,
    control: EmulatorControl,
    emulator_pid: int | None,
    log_dir: Path,
) -> PhaseFigures:
    """One phase: `shards` fresh redis-servers, `--workers` worker processes over them."""
    tag = f"s{shards}"
    keys = Keys(PREFIX)
    with ExitStack() as stack:
        servers = [stack.enter_context(RedisServer()) for _ in range(shards)]
        urls = [s.url for s in servers]
        clients = [redis.Redis(port=s.port) for s in servers]
        for c in clients:
            stack.callback(c.close)
        procs = _start_workers(stack, args, log_dir, tag, urls, graph_url, accounts)
        settings = ClientSettings(
            redis_url=urls[0], shards=urls if shards > 1 else [], key_prefix=PREFIX,
            redis_allow_data_loss=True,
        )  # fmt: skip
        producer = stack.enter_context(SyncShardedOutboundClient.connect(settings))

        def registered() -> tuple[bool, str]:
            have = sum(int(sync_reply(c.scard(keys.accounts))) for c in clients)
            return have >= len(accounts), f"{have}/{len(accounts)} accounts registered"

        wait_for("accounts to be registered", registered, 60.0, procs)
        warm = _intents(accounts, args.warmup, f"{tag}:w")
        _enqueue(producer, warm, args.chunk)
        wait_for("the warm-up", lambda: _done(clients, keys, len(warm)), args.timeout, procs)
        control.reset()

        measured = _intents(accounts, args.n, f"{tag}:m")
        before = [snapshot(c, procs.pids(), emulator_pid) for c in clients]
        _enqueue(producer, measured, args.chunk)
        target = len(warm) + args.n
        wait_for("the outcomes", lambda: _done(clients, keys, target), args.timeout, procs)
        after = [snapshot(c, procs.pids(), emulator_pid) for c in clients]
        _verify(clients, keys, f"{tag}:m:", args.n)
        stats = control.stats()
        if stats["accepted"] != args.n or stats["rejected"] != 0:
            raise BenchError(f"{tag}: the emulator saw {stats['accepted']} calls, not {args.n}")
    return _figures(shards, args, measured, before, after)


def _start_workers(
    stack: ExitStack, args: argparse.Namespace, log_dir: Path, tag: str, urls: list[str],
    graph_url: str, accounts: list[BenchAccount],
) -> WorkerGroup:  # fmt: skip
    """`--workers` worker processes, shard i % N each; stopped with `stack`."""
    procs = WorkerGroup(log_dir, tag)
    stack.callback(procs.stop)
    for i in range(args.workers):
        env = _worker_env(args, urls, i % len(urls), graph_url, accounts)
        procs.ours.append(WorkerProcess(env, log_path=procs.log_path(i)).start())
    return procs


def _done(clients: Sequence[redis.Redis], keys: Keys, target: int) -> tuple[bool, str]:
    have = _outcomes(clients, keys)
    return have >= target, f"{have}/{target} outcomes"


def _enqueue(producer: SyncShardedOutboundClient, intents: list[dict[str, Any]], size: int) -> None:
    for part in chunks(intents, size):
        refused = [r for r in producer.enqueue_many(part) if r.status != "queued"]
        if refused:
            raise BenchError(f"{len(refused)} intents not queued, e.g. {refused[0]}")


def _figures(
    shards: int, args: argparse.Namespace, measured: list[dict[str, Any]], before: list[Any],
    after: list[Any],
) -> PhaseFigures:  # fmt: skip
    wall = after[-1].at - before[0].at
    carried = [0] * shards
    for intent in measured:
        carried[shard_of(intent["account_id"], shards) if shards > 1 else 0] += 1
    per_shard = []
    for i in range(shards):
        cpu = after[i].cpu["redis"] - before[i].cpu["redis"]
        us = cpu * 1e6 / max(carried[i], 1)
        per_shard.append(
            ShardFigures(i, carried[i], round(cpu, 3), round(us, 1), round(1e6 / us) if us else 0)
        )
    first, last = before[0].cpu, after[0].cpu
    redis_cpu = sum(s.redis_cpu_s for s in per_shard)
    cpu = {
        "workers": round(last["workers"] - first["workers"], 3),
        "redis": round(redis_cpu, 3),
        "emulator": round(last["emulator"] - first["emulator"], 3),
        "driver": round(last["driver"] - first["driver"], 3),
    }
    machine = last["machine"] - first["machine"]
    cpu["other"] = round(max(machine - sum(cpu.values()), 0.0), 3)
    util = {k: round(v / wall, 3) for k, v in cpu.items()}
    util["total"] = round(machine / wall, 3)
    return PhaseFigures(
        shards, args.workers, args.n, round(wall, 3), round(args.n / wall, 1), per_shard, cpu, util
    )


def _summary(phases: list[PhaseFigures]) -> None:
    for p in phases:
        print(
            f"{p.shards} shard(s), {p.workers} workers: {p.rate:,.0f} intents/s "
            f"({p.n} in {p.elapsed_s:.1f} s); cores busy {p.cpu_util}"
        )
        for s in p.per_shard:
            print(
                f"    shard {s.shard}: {s.intents} intents, Redis {s.redis_cpu_us_per_intent:.0f} "
                f"µs/intent -> {s.redis_core_intents_per_s:,.0f} intents/s per Redis core"
            )


def _plot(phases: list[PhaseFigures], out: Path) -> Path:
    from bench.plots import shard_scaling

    return shard_scaling(
        {p.shards: p.rate for p in phases},
        {p.shards: [s.redis_cpu_us_per_intent for s in p.per_shard] for p in phases},
        out / "shards-scaling.png",
    )


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    accounts = balanced_accounts(args.accounts, args.recipients)
    calibration_ms = calibrate_ms()
    phases: list[PhaseFigures] = []
    with ExitStack() as stack:
        log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="igo-shards-")))
        config = EmulatorConfig(
            accounts=account_configs(accounts, "shard"),
            users={a.ig_id: a.users for a in accounts},
        )
        graph_url = stack.enter_context(run_emulator_process(config))
        control = stack.enter_context(EmulatorControl(graph_url, timeout=10.0))
        emulator_pid = find_emulator_pid()
        for shards in (1, 2):
            phase = run_phase(args, shards, accounts, graph_url, control, emulator_pid, log_dir)
            phases.append(phase)
            print(f"[{shards} shard(s): {phase.rate:,.0f} intents/s]", file=sys.stderr)
    _summary(phases)
    print(f"box    calibration {calibration_ms} ms (lower is faster; compare runs with it)")
    if args.plots:
        print(f"plot   {_plot(phases, Path(args.plots))}")
    return {
        "bench": "shards",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git_revision(),
        "calibration_ms": calibration_ms,
        "cpus": os.cpu_count(),
        "n": args.n,
        "workers": args.workers,
        "accounts": args.accounts,
        "phases": [asdict(p) for p in phases],
    }


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.shards", description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=3000, help="intents per phase (default 3000)")
    p.add_argument("--workers", type=int, default=2, help="worker processes per phase (2)")
    p.add_argument("--accounts", type=int, default=20, help="IG accounts (default 20)")
    p.add_argument("--recipients", type=int, default=250, help="recipients per account (250)")
    p.add_argument("--chunk", type=int, default=500, help="intents per enqueue call")
    p.add_argument("--warmup", type=int, default=100, help="warm-up intents per phase")
    p.add_argument("--timeout", type=float, default=180.0, help="seconds allowed per wait")
    p.add_argument("--plots", metavar="DIR", help="write DIR/shards-scaling.png")
    add_common_args(p)
    args = p.parse_args(argv)
    if min(args.n, args.workers, args.accounts, args.recipients, args.chunk, args.warmup) < 1:
        p.error("--n, --workers, --accounts, --recipients, --chunk and --warmup must be >= 1")
    if args.workers % 2 or args.accounts % 2:
        p.error("--workers and --accounts must be even: each of 2 shards gets half")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    exit_on_sigterm()
    try:
        result = run_bench(args)
    except BenchError as exc:
        print(f"bench.shards: {exc}", file=sys.stderr)
        return 1
    emit_json(result, args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
