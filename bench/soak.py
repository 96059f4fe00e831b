"""Soak: the long version of the crash-safety proof in tests/chaos/test_nothing_lost.py.

    .venv/bin/python -m bench.soak --intents 20000 --minutes 4 [--workers 3] [--json-out FILE]

Real processes only: a private `redis-server` with AOF persistence, the gateway, the Graph
emulator (adding random latency; failing 5 % of calls with a 5xx, answering 2 % with a 5xx
after delivering them and 2 % never in time; echoing every delivered message to the gateway),
and `ig-outbound worker` processes (ambiguous policy `auto`: reconcile by echo). While
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
  that counter equals the sum of the per-record counts;
* doubled intents (reported, with the answer their first delivery got, i.e. the injected
  fault): with echoes flowing almost every send in doubt is settled by its echo; the few
  resent are counted above (a violation otherwise).

Each intent's text contains its idempotency key, so every emulator call maps back to one key.
The harness (`ig_outbound.harness.chaos`: `ChaosStack`, `run_chaos`, `Ledger`) also runs
the suite's short proof; the worker settings are tuned for speed (`fast_settings`: job
timeout 4 s, so a killed worker's job is re-run after 14 s, ARQ's in-progress TTL). The last
line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

# Re-exported: the chaos harness lived here before it moved to ig_outbound.harness.
from ig_outbound.harness.chaos import (
    PREFIX,
    TEXT_PREFIX,
    ChaosStack,
    fast_settings,
    retrying_redis,
)
from ig_outbound.harness.chaos_run import CHAOS_FAULTS, ChaosPlan, ChaosReport, run_chaos
from ig_outbound.harness.ledger import Ledger
from ig_outbound.harness.wait import wait_until

__all__ = [
    "CHAOS_FAULTS",
    "PREFIX",
    "TEXT_PREFIX",
    "ChaosPlan",
    "ChaosReport",
    "ChaosStack",
    "Ledger",
    "fast_settings",
    "main",
    "retrying_redis",
    "run_chaos",
    "wait_until",
]


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
        ChaosStack(Path(tmp), tune=fast_settings) as stack,
    ):
        report, _ = run_chaos(stack, plan, log)
    print(report.summary())
    for line in report.violations:
        print(f"VIOLATION: {line}")
    print(
        f"doubled: {report.doubled} (first delivery's answer: {report.doubled_causes or '-'}); "
        f"ambiguous sends settled by their echo: {report.reconciled}, resent: {report.ambiguous}; "
        f"faults injected: {report.faults_injected}"
    )
    data = asdict(report)
    if args.json_out is not None:
        args.json_out.write_text(json.dumps(data, indent=2) + "\n")
    print(json.dumps(data, separators=(",", ":")))
    return 1 if report.violations or report.lost else 0


if __name__ == "__main__":
    raise SystemExit(main())
