"""Keep an ARQ worker alive across Redis outages; stop for good when Redis cannot be used.

ARQ's main loop ends when Redis drops (arq#435, #498): a refused connect is never retried by
redis-py 5's pool, and a connection lost inside ARQ's WATCH block escapes as `WatchError`.
`ig-outbound worker` therefore runs the worker (`GuardedWorker`, worker/arq_worker.py: no
job can kill it) under this loop: a worker that died of a Redis error is replaced after a
capped backoff; a signal ends the loop. Jobs that were in flight are re-run by ARQ after
their in-progress lease, and the send journal keeps that from doubling.

Some Redis errors are configuration, not weather, and no restart fixes them: credentials or
permissions refused (AUTH, `NOAUTH`, `WRONGPASS`, `NOPERM`) and a TLS certificate that does
not verify. They end the loop at once with `RedisUnusableError`. Before each start the
supervisor pings Redis once with the worker's settings (`probe`), so such a problem shows in
one try instead of after the retries of ARQ's and redis-py's pools, and a Redis that was
never reachable ends the start after `STARTUP_TRIES` tries. Once Redis has answered, its
loss is an outage: restarted with backoff, without end.
"""

from __future__ import annotations

import re
import signal
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any

import structlog
from redis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    NoPermissionError,
    RedisError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ig_outbound.producers.connection import redis_params, sync_redis
from ig_outbound.producers.redis_safety import inspect_sync, verdict
from ig_outbound.producers.settings import ClientSettings
from ig_outbound.worker.errors import WorkerError

log = structlog.get_logger("ig_outbound.supervisor")

BACKOFF_START_S = 0.5
BACKOFF_CAP_S = 10.0
# A worker that ran this long was healthy: start the backoff over.
HEALTHY_RUN_S = 60.0
# A Redis that never answered gets this many tries (0.5 + 1 s apart) before the start fails:
# enough for one that is still starting beside the worker, short enough to say so soon.
STARTUP_TRIES = 3

_DENIED_REPLY = re.compile(r"\b(NOAUTH|WRONGPASS|NOPERM)\b")


@dataclass(frozen=True)
class RedisProblem:
    """What a Redis failure means for a worker. `fatal`: no restart can fix it."""

    code: str
    fatal: bool
    message: str
    error_type: str


class RedisUnusableError(WorkerError):
    """Redis cannot be used with these settings (the message never shows a password)."""

    def __init__(self, problem: RedisProblem) -> None:
        super().__init__(problem.message)
        self.problem = problem
        self.code = problem.code


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and its causes (redis-py raises its ConnectionError inside `except OSError`)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < 10:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _denied(exc: BaseException) -> bool:
    if isinstance(exc, AuthenticationError | AuthorizationError | NoPermissionError):
        return True
    return isinstance(exc, ResponseError) and _DENIED_REPLY.search(str(exc)) is not None


def _bad_certificate(exc: BaseException) -> bool:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return True
    if isinstance(exc, ssl.SSLError) and "CERTIFICATE" in str(exc.reason or ""):
        return True  # e.g. the server requires a client certificate we do not show
    # redis-py keeps only the text of the SSL error in its ConnectionError.
    return isinstance(exc, RedisConnectionError) and "CERTIFICATE_VERIFY_FAILED" in str(exc)


def redis_problem(exc: BaseException) -> RedisProblem:
    """Classify a failure of talking to Redis (for the supervisor and the CLI)."""
    name = type(exc).__name__
    chain = list(_chain(exc))
    if any(_denied(e) for e in chain):
        message = "Redis refused the credentials or permissions of IG_OUTBOUND_REDIS_URL"
        return RedisProblem("redis_auth_failed", True, message, name)
    if any(_bad_certificate(e) for e in chain):
        message = "Redis's TLS certificate (or ours) was refused: check the TLS settings"
        return RedisProblem("redis_tls_failed", True, message, name)
    unreachable = (RedisConnectionError, RedisTimeoutError, OSError)
    if isinstance(exc, unreachable):
        return RedisProblem("redis_unreachable", False, "cannot connect to Redis", name)
    return RedisProblem("redis_error", False, "Redis answered with an error", name)


def probe_redis(settings: ClientSettings) -> None:
    """One PING with these settings, no retries: raises what connecting raises; then the
    data-safety check (`UnsafeRedisError` for a Redis that can lose intents)."""
    client = sync_redis(redis_params(settings))
    try:
        client.ping()
        note = verdict(inspect_sync(client), allow_data_loss=settings.redis_allow_data_loss)
        if note:
            log.warning("redis_data_safety", note=note)
    finally:
        client.close()


class _Signals:
    """Notes SIGTERM/SIGINT while no ARQ worker (with its own handlers) is running."""

    def __init__(self) -> None:
        self.received: int | None = None

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._note)

    def _note(self, signum: int, frame: FrameType | None) -> None:
        self.received = signum

    def wait(self, seconds: float, alive: Callable[[], None] | None = None) -> bool:
        """Sleep `seconds` unless a signal comes first, calling `alive` about every second;
        True if a signal came."""
        self.install()
        deadline = time.monotonic() + seconds
        ticked = 0.0
        while time.monotonic() < deadline and self.received is None:
            if alive is not None and time.monotonic() - ticked >= 1.0:
                ticked = time.monotonic()
                alive()
            time.sleep(0.05)
        if self.received is not None:
            log.info("worker_stopped_while_restarting", signal=self.received)
            return True
        return False


def run_supervised(
    settings_cls: type[Any],
    probe: Callable[[], None] | None = None,
    pool: Callable[[], Any] | None = None,
    alive: Callable[[], None] | None = None,
) -> None:
    """Run the worker until a signal stops it, restarting it after Redis failures; raise
    `RedisUnusableError` when Redis cannot be used (see the module docstring). `pool` makes
    each new worker's Redis client (else ARQ makes one from the settings class). `alive` is
    called between restarts (the heartbeat file: a process waiting out a Redis outage is
    alive, and a liveness probe must not restart it for that)."""
    # Here, not at the top: the CLI's producer commands use `redis_problem` without loading
    # the worker's whole stack.
    from ig_outbound.worker.arq_worker import create_guarded_worker

    signals = _Signals()
    delay = BACKOFF_START_S
    reached = probe is None  # Redis answered once: from then on a failure is an outage
    failed_starts = 0
    while True:
        started = time.monotonic()
        try:
            if probe is not None:
                probe()
            reached = True
            # A new Worker installs ARQ's own signal handlers (graceful drain on SIGTERM).
            extra = {} if pool is None else {"redis_pool": pool()}
            create_guarded_worker(settings_cls, **extra).run()
            return
        except (RedisError, OSError) as exc:
            problem = redis_problem(exc)
            failed_starts += 0 if reached else 1
            if problem.fatal or failed_starts >= STARTUP_TRIES:
                raise RedisUnusableError(problem) from None
            if time.monotonic() - started > HEALTHY_RUN_S:
                delay = BACKOFF_START_S
            if reached:  # a start that keeps failing says so once, when it gives up
                log.error("worker_lost_redis", error_type=problem.error_type, restart_in_s=delay)
        if alive is not None:
            alive()
        if signals.wait(delay, alive):
            return
        delay = min(delay * 2, BACKOFF_CAP_S)
