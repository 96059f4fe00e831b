"""Keep an ARQ worker alive across Redis outages.

ARQ's main loop ends when Redis drops (arq#435, #498): a refused connect is never retried by
redis-py 5's pool, and a connection lost inside ARQ's WATCH block escapes as `WatchError`.
`ig-outbound worker` therefore runs the worker under this loop: a worker that died of a Redis
error is replaced after a capped backoff; a signal ends the loop. Jobs that were in flight are
re-run by ARQ after their in-progress lease, and the send journal keeps that from doubling.
"""

from __future__ import annotations

import signal
import time
from types import FrameType
from typing import Any

import structlog
from arq.worker import create_worker
from redis.exceptions import RedisError

log = structlog.get_logger("ig_outbound.supervisor")

BACKOFF_START_S = 0.5
BACKOFF_CAP_S = 10.0
# A worker that ran this long was healthy: start the backoff over.
HEALTHY_RUN_S = 60.0


class _Signals:
    """Notes SIGTERM/SIGINT while no ARQ worker (with its own handlers) is running."""

    def __init__(self) -> None:
        self.received: int | None = None

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._note)

    def _note(self, signum: int, frame: FrameType | None) -> None:
        self.received = signum


def run_supervised(settings_cls: type[Any]) -> None:
    """Run the worker until a signal stops it, restarting it after Redis failures."""
    signals = _Signals()
    delay = BACKOFF_START_S
    while True:
        started = time.monotonic()
        try:
            # A new Worker installs ARQ's own signal handlers (graceful drain on SIGTERM).
            create_worker(settings_cls).run()
            return
        except (RedisError, OSError) as exc:
            if time.monotonic() - started > HEALTHY_RUN_S:
                delay = BACKOFF_START_S
            log.error("worker_lost_redis", error_type=type(exc).__name__, restart_in_s=delay)
        signals.install()
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline and signals.received is None:
            time.sleep(0.05)
        if signals.received is not None:
            log.info("worker_stopped_while_restarting", signal=signals.received)
            return
        delay = min(delay * 2, BACKOFF_CAP_S)
