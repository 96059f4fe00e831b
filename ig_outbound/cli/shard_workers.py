"""`ig-outbound worker` over several shards: one worker process per shard.

An ARQ worker reads one queue on one Redis, owns its event loop and its signal handlers, and
a process holds one metrics registry (the fleet collector serves one fleet), so a worker
that serves several shards is several processes: this parent starts `ig-outbound worker`
once per shard (`IG_OUTBOUND_WORKER__SHARDS=[i]`; the metrics port, if any, is
`IG_OUTBOUND_METRICS_PORT + i`), passes SIGTERM, SIGINT and SIGHUP on, and ends when one
child ends: it stops the others and exits with the first failure's code (0 if none), so an
orchestrator restarts the whole set. Production runs one container per shard instead
(`--shard i`), with its own liveness file; this parent is for small deployments.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

STOP_GRACE_S = 60.0
_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _child_env(shard: int, metrics_port: int | None) -> dict[str, str]:
    env = {**os.environ, "IG_OUTBOUND_WORKER__SHARDS": json.dumps([shard])}
    if metrics_port is not None:
        env["IG_OUTBOUND_METRICS_PORT"] = str(metrics_port + shard)
    return env


def run_shard_workers(shards: Sequence[int], metrics_port: int | None) -> int:
    """Run one worker process per shard until one ends; the exit code of the set."""
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "ig_outbound.cli", "worker"], env=_child_env(s, metrics_port)
        )
        for s in shards
    ]

    def forward(signum: int, frame: FrameType | None) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    for sig in _FORWARDED:
        signal.signal(sig, forward)
    first = _first_to_end(children)
    for child in children:
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + STOP_GRACE_S
    codes = [_reap(child, deadline) for child in children]
    failures = [c for c in [first, *codes] if c != 0]
    return failures[0] if failures else 0


def _first_to_end(children: list[subprocess.Popen[bytes]]) -> int:
    while True:
        for child in children:
            code = child.poll()
            if code is not None:
                return code
        time.sleep(0.2)


def _reap(child: subprocess.Popen[bytes], deadline: float) -> int:
    try:
        return child.wait(timeout=max(deadline - time.monotonic(), 0.1))
    except subprocess.TimeoutExpired:
        child.kill()
        return child.wait()
