"""What the throughput and rates benchmarks share: their stack, their workers, their measuring.

* the stack: `start_stack` runs a private Redis and one Graph emulator process for a list of
  `BenchAccount`s and returns the `BenchRun` every phase and scenario works on;
* the workers: `start_workers` starts K `ig-outbound worker` processes (a `WorkerGroup`) on
  their own key prefix and waits until they poll; `wait_for` / `wait_outcomes` are the bounded
  waits, which name the workers' logs when they time out;
* measuring: `snapshot` reads Redis's `INFO commandstats` and the CPU seconds of each process
  group, `delta` turns two snapshots into commands per intent and cores busy, `percentile`;
* output: `add_common_args` (--log-level, --json-out), `emit_json`, `calibrate_ms`,
  `git_revision`, `exit_on_sigterm`.

Processes come from `ig_outbound.harness.processes` (`RedisServer`, `WorkerProcess`), the
same ones the demo and the tests run. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NamedTuple

import redis

from ig_outbound.emulator import EmulatorConfig, EmulatorControl, run_emulator_process
from ig_outbound.emulator.config import AccountConfig
from ig_outbound.harness.processes import RedisServer, WorkerProcess
from ig_outbound.producers.enqueue import SyncOutboundClient
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.outcome import Outcome
from ig_outbound.worker.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
POLL_S = 0.005
START_TIMEOUT_S = 60.0
STOP_GRACE_S = 30.0


class BenchError(RuntimeError):
    """The benchmark could not produce a valid figure (the message says why)."""


# --- accounts and intents ------------------------------------------------------------------


@dataclass(frozen=True)
class BenchAccount:
    """An IG account of the emulator, with its token and the recipients it may write to."""

    ig_id: str
    token: str
    users: list[str]


def make_accounts(n_accounts: int, recipients: int) -> list[BenchAccount]:
    """N accounts with fresh tokens, each with `recipients` recipient ids of its own."""
    return [
        BenchAccount(
            ig_id=f"1784150000000{a:04d}",
            token="IGAA" + secrets.token_urlsafe(24),
            users=[f"1254478{a:03d}{u:06d}" for u in range(recipients)],
        )
        for a in range(n_accounts)
    ]


def account_configs(accounts: Sequence[BenchAccount], username: str) -> list[AccountConfig]:
    """The accounts as the emulator knows them, named `<username><index>`."""
    return [
        AccountConfig(ig_id=a.ig_id, token=a.token, username=f"{username}{i}")
        for i, a in enumerate(accounts)
    ]


def text_intent(key: str, account: str, recipient: str, text: str) -> dict[str, Any]:
    """A text intent, as a producer would enqueue it."""
    return {
        "idempotency_key": key,
        "account_id": account,
        "recipient": {"id": recipient},
        "content": {"kind": "text", "text": text},
    }


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """Consecutive slices of at most `size` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def enqueue_chunked(
    client: SyncOutboundClient, intents: Sequence[Any], chunk: int, tag: str = ""
) -> None:
    """`enqueue_many` per chunk (one round trip each); any intent not queued is an error."""
    for part in chunks(intents, chunk):
        refused = [r for r in client.enqueue_many(part) if r.status != "queued"]
        if refused:
            where = f"{tag}: " if tag else ""
            raise BenchError(f"{where}{len(refused)} intents not queued, e.g. {refused[0]}")


def read_outcomes(r: redis.Redis, keys: Keys, key_prefix: str, tag: str = "") -> dict[str, Outcome]:
    """The outcomes stream's entries whose key starts with `key_prefix`, by key (each once)."""
    found: dict[str, Outcome] = {}
    for _, entry in sync_reply(r.xrange(keys.outcomes)):
        outcome = Outcome.model_validate_json(entry[b"outcome"])
        if outcome.key.startswith(key_prefix):
            if outcome.key in found:
                where = f"{tag}: " if tag else ""
                raise BenchError(f"{where}two outcomes for {outcome.key}")
            found[outcome.key] = outcome
    return found


# --- the stack -----------------------------------------------------------------------------


@dataclass
class BenchRun:
    """One running stack (Redis, the emulator, its accounts) and the benchmark's options."""

    args: argparse.Namespace
    run_id: str
    redis_url: str
    graph_url: str
    control: EmulatorControl
    r: redis.Redis
    accounts: list[BenchAccount]
    log_dir: Path
    emulator_pid: int | None

    def base_env(self, prefix: str) -> dict[str, str]:
        """Settings of a worker on key prefix `prefix` of this stack (plus --log-level)."""
        env = {
            "IG_OUTBOUND_REDIS_URL": self.redis_url,
            "IG_OUTBOUND_KEY_PREFIX": prefix,
            "IG_OUTBOUND_GRAPH__BASE_URL": self.graph_url,
            "IG_OUTBOUND_TOKENS": json.dumps({a.ig_id: a.token for a in self.accounts}),
            # The benchmarks measure sending: their media URLs are placeholders, not probed.
            "IG_OUTBOUND_MEDIA__PROBE": "false",
        }
        if self.args.log_level:
            env["IG_OUTBOUND_LOG_LEVEL"] = self.args.log_level
        return env

    def check_emulator(self, tag: str, n: int) -> None:
        """The emulator accepted exactly N calls since its last reset and rejected none."""
        stats = self.control.stats()
        if stats["accepted"] != n or stats["rejected"] != 0:
            raise BenchError(
                f"{tag}: the emulator recorded {stats['accepted']} calls "
                f"(and {stats['rejected']} rejected), expected exactly {n}"
            )


def start_stack(
    stack: ExitStack,
    args: argparse.Namespace,
    accounts: Sequence[BenchAccount],
    config: EmulatorConfig,
    *,
    log_prefix: str,
    control_timeout_s: float = 10.0,
) -> BenchRun:
    """Private Redis + one emulator process serving `config` -> a `BenchRun` with a fresh
    run id; `stack` stops them both and deletes the log directory."""
    log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=log_prefix)))
    server = stack.enter_context(RedisServer())
    graph_url = stack.enter_context(run_emulator_process(config))
    control = stack.enter_context(EmulatorControl(graph_url, timeout=control_timeout_s))
    r = redis.Redis.from_url(server.url)
    stack.callback(r.close)
    return BenchRun(
        args,
        secrets.token_hex(3),
        server.url,
        graph_url,
        control,
        r,
        list(accounts),
        log_dir,
        find_emulator_pid(),
    )


def find_emulator_pid() -> int | None:
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


# --- worker processes ----------------------------------------------------------------------


class WorkerGroup:
    """Worker processes of one phase, logging to `<log_dir>/<tag>-<i>.log`; `stop` ends them
    (SIGTERM, then SIGKILL)."""

    def __init__(self, log_dir: Path, tag: str) -> None:
        self.log_dir = log_dir
        self.tag = tag
        self.ours: list[WorkerProcess] = []
        self.modules: list[subprocess.Popen[bytes]] = []
        self._logs: list[IO[bytes]] = []

    def log_path(self, i: int) -> Path:
        return self.log_dir / f"{self.tag}-{i}.log"

    def start_ours(self, env: Mapping[str, str], k: int) -> None:
        """K `ig-outbound worker` processes with settings `env`."""
        for i in range(k):
            self.ours.append(WorkerProcess(env, log_path=self.log_path(i)).start())

    def start_module(self, argv: Sequence[str], env: Mapping[str, str], k: int) -> None:
        """K `python -m <argv>` processes (e.g. the throughput floor's bare ARQ workers)."""
        child_env = {**os.environ, **env}
        # `bench` is no installed package: the children import it from the project root.
        child_env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [*env.get("PYTHONPATH", "").split(os.pathsep), str(PROJECT_ROOT)])
        )
        for i in range(k):
            log = open(self.log_path(i), "ab")  # noqa: SIM115 (closed in stop())
            self._logs.append(log)
            self.modules.append(
                subprocess.Popen(
                    [sys.executable, "-m", *argv],
                    env=child_env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=PROJECT_ROOT,
                )
            )

    def pids(self) -> list[int]:
        ours = [p for p in (w.pid for w in self.ours) if p is not None]
        return ours + [p.pid for p in self.modules]

    def check_alive(self) -> None:
        """Raise `BenchError` (with the logs' tails) if any process has exited."""
        dead = [w.pid for w in self.ours if not w.alive()]
        dead += [p.pid for p in self.modules if p.poll() is not None]
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
        # Signal every module process first, so their drains overlap.
        for p in self.modules:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.modules:
            try:
                p.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        for log in self._logs:
            log.close()


def wait_for(
    what: str,
    done: Callable[[], tuple[bool, str]],
    timeout_s: float,
    procs: WorkerGroup,
) -> int:
    """Poll `done` (-> (ok, progress)) every POLL_S until ok; returns the number of polls,
    which a phase subtracts from Redis's command counts."""
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


def wait_pollers(r: redis.Redis, k: int, procs: WorkerGroup) -> None:
    """Wait until K ARQ workers are polling (K connections whose last command is the poll)."""

    def ready() -> tuple[bool, str]:
        procs.check_alive()
        clients: list[dict[str, Any]] = sync_reply(r.client_list())
        polling = sum(1 for c in clients if c.get("cmd") == "zrangebyscore")
        return polling >= k, f"{polling}/{k} workers polling"

    wait_for("the workers to start", ready, START_TIMEOUT_S, procs)


def wait_outcomes(run: BenchRun, keys: Keys, target: int, procs: WorkerGroup, what: str) -> int:
    """Wait (--timeout) until the outcomes stream holds `target` entries; returns the polls
    (one XLEN each)."""

    def check() -> tuple[bool, str]:
        have = int(sync_reply(run.r.xlen(keys.outcomes)))
        return have >= target, f"{have}/{target} outcomes"

    return wait_for(what, check, run.args.timeout, procs)


def start_workers(
    stack: ExitStack,
    run: BenchRun,
    k: int,
    tag: str,
    extra_env: Mapping[str, str] | None = None,
    *,
    prefix: str | None = None,
) -> tuple[WorkerGroup, SyncOutboundClient, Keys]:
    """K `ig-outbound worker` processes on their own key prefix, registered and polling."""
    prefix = prefix or f"igo-{tag}-{run.run_id}"
    keys = Keys(prefix)
    procs = WorkerGroup(run.log_dir, tag)
    stack.callback(procs.stop)
    procs.start_ours({**run.base_env(prefix), **(extra_env or {})}, k)
    settings = Settings(redis_url=run.redis_url, key_prefix=prefix)
    client = stack.enter_context(SyncOutboundClient.connect(run.redis_url, settings))

    def registered() -> tuple[bool, str]:
        have = int(sync_reply(run.r.scard(keys.accounts)))
        return have >= len(run.accounts), f"{have}/{len(run.accounts)} accounts registered"

    # Workers publish the slot spacing before they register accounts: registered => published.
    wait_for("accounts to be registered", registered, START_TIMEOUT_S, procs)
    wait_pollers(run.r, k, procs)
    return procs, client, keys


# --- measuring -----------------------------------------------------------------------------


def sync_reply(value: Any) -> Any:
    """A reply of the sync Redis client (redis-py types sync and async replies as one union)."""
    return value


@dataclass(frozen=True)
class Snapshot:
    """Redis's command counts and CPU seconds by process group, at one instant."""

    at: float
    commands: dict[str, int]
    cpu: dict[str, float]
    usec: dict[str, int] = field(default_factory=dict)  # commandstats µs by command


class Delta(NamedTuple):
    """What happened between two snapshots, for N intents."""

    cmds_per_intent: float  # Redis commands per intent, all commands
    cmds: dict[str, float]  # per intent, by command, most first
    cpu_s: dict[str, float]  # CPU seconds by process group (+ "other": the rest of the box)
    cpu_util: dict[str, float]  # cores busy by process group (+ "total": the whole box)


def snapshot(r: redis.Redis, worker_pids: Sequence[int], emulator_pid: int | None) -> Snapshot:
    """Command counts (`INFO commandstats`) and CPU seconds of workers, Redis, the emulator,
    this driver and the whole machine."""
    raw: Mapping[str, Any] = sync_reply(r.info("commandstats"))
    stats_by_name = {
        name.removeprefix("cmdstat_"): stats
        for name, stats in raw.items()
        if isinstance(stats, Mapping)
    }
    commands = {name: int(stats["calls"]) for name, stats in stats_by_name.items()}
    usec = {name: int(stats.get("usec", 0)) for name, stats in stats_by_name.items()}
    cpu_info: Mapping[str, Any] = sync_reply(r.info("cpu"))
    cpu = {
        "workers": sum(_proc_cpu_s(p) for p in worker_pids),
        "redis": float(cpu_info["used_cpu_user"]) + float(cpu_info["used_cpu_sys"]),
        "emulator": _proc_cpu_s(emulator_pid) if emulator_pid else 0.0,
        "driver": time.process_time(),
        "machine": _machine_busy_s(),
    }
    return Snapshot(time.perf_counter(), commands, cpu, usec)


def delta(before: Snapshot, after: Snapshot, n: int, exclude: Mapping[str, int]) -> Delta:
    """Commands per intent (total, by command; minus the benchmark's own polls in `exclude`)
    and CPU seconds/utilisation by process group."""
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
    return Delta(round(sum(per_cmd.values()), 2), per_cmd, cpu, util)


def usec_per_intent(before: Snapshot, after: Snapshot, n: int) -> dict[str, float]:
    """Redis's `INFO commandstats` µs per intent by command, most first. A script's time
    includes its commands', which are counted again under their own names."""
    usec = {
        name: round((us - before.usec.get(name, 0)) / n, 2)
        for name, us in after.usec.items()
        if name not in ("info", "client|list") and us > before.usec.get(name, 0)
    }
    return dict(sorted(usec.items(), key=lambda kv: -kv[1]))


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


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (nearest rank, 0 <= q <= 1) of `values`; 0.0 for none."""
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)] if ordered else 0.0


# --- options and output --------------------------------------------------------------------


def add_common_args(p: argparse.ArgumentParser) -> None:
    """Options every benchmark built on this module takes."""
    p.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        help="IG_OUTBOUND_LOG_LEVEL for our workers (default: the product default)",
    )
    p.add_argument("--json-out", metavar="FILE", help="also append the JSON line(s) to FILE")


def emit_json(result: Mapping[str, Any], json_out: str | None) -> None:
    """Print `result` as one JSON line on stdout; also append it to `json_out` if given."""
    line = json.dumps(result, sort_keys=True)
    print(line, flush=True)
    if json_out:
        with open(json_out, "a", encoding="utf-8") as out:
            out.write(line + "\n")


def calibrate_ms() -> float:
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


def git_revision() -> str | None:
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


def _on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def exit_on_sigterm() -> None:
    """Make SIGTERM unwind the ExitStacks (stop workers, the emulator and Redis) instead of
    killing the benchmark with its children left running."""
    signal.signal(signal.SIGTERM, _on_sigterm)
