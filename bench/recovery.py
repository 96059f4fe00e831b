"""Crash recovery: how long after a SIGKILL mid-send the intent is picked up again and finished.

    .venv/bin/python -m bench.recovery [--repeats 3] [--policy resend|fail] [--json-out FILE]

DEFAULT worker settings (job timeout 20 s, heartbeat 1 s). Each round: one text intent; the
emulator takes the message and then holds its answer for 120 s, so the worker's POST is in
flight; a second worker starts and beats; then the first gets `kill -9`, and the second must
take the send over (it is the spare of the next round). Measured from the kill:

* `pickup_s`: the re-run touched the send journal (its state left `sending`), i.e. ARQ
  handed the job to another worker;
* `finished_s`: the intent had its outcome (`sent` after a counted ambiguous resend under
  `resend`, `unknown` under `fail`).

How it works: ARQ's in-progress key, set at pickup with TTL = job timeout + 10 s (30 s by
default), would block every other worker until it expires (arq-notes A.3). Instead every
worker beats each second and every live worker looks for dead ones each beat: after 3 s
without a beat, a live worker deletes the dead one's in-progress keys and lapses its send
leases (`producers/lua/reclaim.lua`), so the next poll runs the job again and the re-run
sees an interrupted (ambiguous) send. The round also records the in-progress key's TTL left
at the kill (what the wait would have been). The last line of stdout is one JSON object with
every figure; `--repeats 20` gives the p99 the README quotes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import plots
from ig_outbound.harness.chaos import ChaosStack
from ig_outbound.harness.wait import wait_until
from ig_outbound.producers.keys import ARQ_IN_PROGRESS_PREFIX
from ig_outbound.producers.outcome import Outcome
from ig_outbound.worker.settings import Settings

HANG_S = 120.0  # the emulator's answer never comes within the worker's read timeout
WAIT_S = 120.0  # bound on each wait; default recovery is ~30 s


@dataclass
class Round:
    n: int
    ran_before_kill_s: float  # the send had been in flight this long (journal `sending_since`)
    in_progress_ttl_s: float  # ARQ's in-progress key TTL left at the kill
    pickup_s: float
    finished_s: float
    status: str
    deliveries: int
    ambiguous: int


def one_round(stack: ChaosStack, n: int, changes: dict[str, Any]) -> Round:
    worker = stack.workers[-1]
    if not worker.alive():
        raise RuntimeError(f"worker {worker.pid} is not running\n{stack.log_tail()}")
    key = f"recovery-{uuid.uuid4().hex[:8]}-{n}"
    stack.control.script([{"status": 200, "code": None, "hang_s": HANG_S}])
    stack.enqueue([stack.intent(key, n)])
    try:
        wait_until(lambda: stack.deliveries()[0][key] >= 1, WAIT_S, "the emulator to get it")
    except TimeoutError as exc:
        raise RuntimeError(
            f"{exc}: record {stack.record(key)}, worker alive {worker.alive()}, "
            f"emulator {stack.control.stats()}\n{stack.log_tail()}"
        ) from None

    stack.start_worker(**changes)  # the spare, live before the kill
    wait_until(lambda: stack.live_workers() >= 2, WAIT_S, "the spare's heartbeat", 0.05)
    killed_wall, killed = time.time(), time.monotonic()
    stack.kill_worker(worker)
    at_kill = stack.record(key)
    if at_kill.get("state") != "sending":
        raise RuntimeError(f"the worker was not mid-send when killed: {at_kill}")
    ttl_ms = int(stack.db.pttl(ARQ_IN_PROGRESS_PREFIX + stack.keys.job_id(key)))

    wait_until(lambda: stack.record(key).get("state") != "sending", WAIT_S, "the re-run", 0.02)
    pickup = time.monotonic() - killed
    wait_until(lambda: "outcome" in stack.record(key), WAIT_S, "the outcome", 0.02)
    finished = time.monotonic() - killed

    record = stack.record(key)
    return Round(
        n=n,
        ran_before_kill_s=round(killed_wall - int(at_kill.get("sending_since", 0)) / 1000, 3),
        in_progress_ttl_s=round(ttl_ms / 1000, 3),
        pickup_s=round(pickup, 3),
        finished_s=round(finished, 3),
        status=Outcome.model_validate_json(record["outcome"]).status.value,
        deliveries=stack.deliveries()[0][key],
        ambiguous=int(record.get("ambiguous", 0)),
    )


def _spread(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p99 = ordered[min(int(0.99 * len(ordered)), len(ordered) - 1)]
    return {
        "min": min(values),
        "mean": round(statistics.fmean(values), 3),
        "p99": p99,
        "max": max(values),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.recovery",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--policy", choices=["resend", "fail"], default=None)
    parser.add_argument("--json-out", type=Path, default=None)
    parser.add_argument("--plots", type=Path, default=None, help="write a PNG into this folder")
    args = parser.parse_args(argv)
    # Default settings but the policy, if one is asked for.
    changes: dict[str, Any] = {"ambiguous_policy": args.policy} if args.policy else {}
    defaults = Settings()
    job_timeout = defaults.worker.job_timeout_s
    tuning = defaults.worker
    print(
        f"default settings: job timeout {job_timeout:g} s (ARQ in-progress TTL "
        f"{job_timeout + 10:g} s); heartbeat {tuning.heartbeat_interval_s:g} s, dead after "
        f"{tuning.heartbeat_stale_s:g} s; policy {args.policy or defaults.ambiguous_policy}",
        flush=True,
    )
    rounds: list[Round] = []
    with (
        tempfile.TemporaryDirectory(prefix="igo-recovery-") as tmp,
        ChaosStack(Path(tmp), accounts=1, recipients=args.repeats + 1) as stack,
    ):
        stack.start_worker(**changes)
        stack.wait_registered()
        for n in range(args.repeats):
            r = one_round(stack, n, changes)
            rounds.append(r)
            print(
                f"round {n + 1}: in flight {r.ran_before_kill_s:.2f} s before the kill; "
                f"in-progress TTL left {r.in_progress_ttl_s:.2f} s; picked up again after "
                f"{r.pickup_s:.2f} s, finished after {r.finished_s:.2f} s -> {r.status} "
                f"(deliveries {r.deliveries}, ambiguous {r.ambiguous})",
                flush=True,
            )
    pickups = [r.pickup_s for r in rounds]
    finishes = [r.finished_s for r in rounds]
    pickup, finished = _spread(pickups), _spread(finishes)
    summary: dict[str, Any] = {
        "job_timeout_s": job_timeout,
        "in_progress_ttl_s": job_timeout + 10,
        "heartbeat_s": tuning.heartbeat_interval_s,
        "dead_after_s": tuning.heartbeat_stale_s,
        "policy": args.policy or defaults.ambiguous_policy,
        "repeats": len(rounds),
        "pickup_s": pickup,
        "finished_s": finished,
        "rounds": [asdict(r) for r in rounds],
    }
    print(
        f"recovery after SIGKILL mid-send: picked up {min(pickups):.1f}-{max(pickups):.1f} s "
        f"(p99 {pickup['p99']:.1f} s), finished {min(finishes):.1f}-"
        f"{max(finishes):.1f} s after the kill (p99 {finished['p99']:.1f} s, "
        f"{len(rounds)} rounds)"
    )
    if args.plots is not None:
        plots.recovery_times(pickups, job_timeout + 10, args.plots / "recovery.png")
    if args.json_out is not None:
        args.json_out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
