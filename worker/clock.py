"""One clock for the fleet: Redis's.

Deadlines, `not_before`, the order of work in the queue and outcome times are all judged on
Redis's clock (the enqueue script stamps intents with Redis `TIME`, the journal's leases use
it), so a worker whose own clock is off by seconds neither expires intents early, sends
scheduled ones early, nor takes work that is not due yet. Reading Redis for every decision
would cost a round trip each; instead the worker measures the offset of Redis's clock against
its own at start and every few seconds (error: half a round trip), and reads
`time.time() + offset`.

ARQ decides which jobs are due with its own `timestamp_ms()`; `install_in_arq` points that at
this clock too (the worker process runs one ARQ worker, so this is process-wide on purpose).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import arq.worker
from redis.asyncio import Redis

from ig_outbound.producers.redis_util import resolve


class RedisClock:
    """Redis's clock, read locally through a measured offset."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self.offset_ms = 0.0

    async def sync(self) -> float:
        """Measure the offset (Redis minus local, ms) again; returns it."""
        before = time.time()
        seconds, micros = await resolve(self._redis.time())
        after = time.time()
        redis_ms = int(seconds) * 1000 + int(micros) / 1000
        self.offset_ms = redis_ms - (before + after) / 2 * 1000
        return self.offset_ms

    def now_ms(self) -> int:
        return int(time.time() * 1000 + self.offset_ms)

    def now_ms_exact(self) -> float:
        return time.time() * 1000 + self.offset_ms

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.now_ms() / 1000, UTC)

    def install_in_arq(self) -> None:
        """ARQ's "is this job due" clock becomes this one (see the module docstring)."""
        arq.worker.timestamp_ms = self.now_ms  # type: ignore[attr-defined]
