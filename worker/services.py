"""What a worker process holds for its jobs (built once in ARQ's on_startup)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from redis.asyncio import Redis

from ig_outbound.graph import GraphClient
from ig_outbound.producers.keys import Keys
from ig_outbound.worker.clock import RedisClock
from ig_outbound.worker.journal import Journal
from ig_outbound.worker.limiter import RateLimiter
from ig_outbound.worker.media import MediaPolicy
from ig_outbound.worker.pauses import Pauses
from ig_outbound.worker.settings import Settings
from ig_outbound.worker.tokens import TokenBook
from ig_outbound.worker.transit import TransitMeter


@dataclass
class Services:
    settings: Settings
    keys: Keys
    redis: Redis
    tokens: TokenBook
    graph: GraphClient
    journal: Journal
    pauses: Pauses
    limiter: RateLimiter
    clock: RedisClock
    media: MediaPolicy
    transit: TransitMeter
    # This process in the fleet: its heartbeat, its running jobs, its leases.
    worker_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    # Job ids whose ARQ keys their finish script removed: ARQ's own finish is skipped.
    retired: set[str] = field(default_factory=set)

    @classmethod
    def build(
        cls,
        settings: Settings,
        redis: Redis,
        tokens: TokenBook,
        *,
        graph: GraphClient | None = None,
    ) -> Services:
        """`graph`: a client to use instead of one built from the settings (tests pass one
        on an in-process transport)."""
        keys = Keys(settings.key_prefix)
        return cls(
            settings=settings,
            keys=keys,
            redis=redis,
            tokens=tokens,
            graph=graph if graph is not None else GraphClient(settings.graph),
            journal=Journal(
                redis,
                keys,
                maxlen=settings.outcomes_stream_maxlen,
                dlq_maxlen=settings.dead_letters_maxlen,
                retention_s=settings.idempotency_retention_s,
            ),
            pauses=Pauses(redis, keys),
            limiter=RateLimiter(redis, keys, settings.rate),
            clock=RedisClock(redis),
            media=MediaPolicy(redis, keys, settings.media),
            transit=TransitMeter(settings.rate),
        )

    def lease_s(self) -> float:
        """How long a send may be in flight before a re-run calls it ambiguous.

        A live run is cut at 0.9 x job timeout (worker/job.py), so its lease never lapses
        while it runs; ARQ re-runs a killed worker's job only after job timeout + 10 s, when
        this lease has lapsed, so the re-run sees an ambiguous send, not a busy one."""
        return self.settings.worker.job_timeout_s + 5
