"""The gateway's work after the acknowledgement: acknowledged webhook bodies wait in a Redis
stream (`Keys.webhooks`); this consumer group reads them, records every event once
(`record_inbound`: window facts, the echo index, the inbound stream) and deletes the body.

At least once, recorded exactly once: a body is acknowledged to the stream only after its
events are recorded, and recording de-duplicates on the event's identity, so a gateway killed
mid-body leaves it pending and another gateway (or this one, restarted) claims it after
`CLAIM_IDLE_MS` and records what is missing. While it runs, the processor keeps
`Keys.gateway_alive` fresh: workers then reconcile ambiguous sends with echoes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections import Counter
from collections.abc import Sequence
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from ig_outbound.gateway import metrics
from ig_outbound.gateway.settings import GatewaySection
from ig_outbound.producers.inbound import record_inbound
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.redis_util import resolve
from ig_outbound.producers.shards import shard_of
from ig_outbound.producers.webhooks import WebhookError, parse_webhook

log = structlog.get_logger("ig_outbound.gateway")

GROUP = "gateway"
BATCH = 100
BLOCK_MS = 1000
# A body a consumer read but did not finish this long ago is taken over (its gateway died).
CLAIM_IDLE_MS = 30_000
ALIVE_TTL_MS = 30_000
ALIVE_EVERY_S = 10.0


class Processor:
    """Records the events of acknowledged webhooks (see the module docstring)."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        section: GatewaySection,
        shards: Sequence[Redis] | None = None,
    ) -> None:
        """`redis`: where the webhook stream lives; `shards`: a client per shard, in order
        (default: `redis` alone), where each account's events are recorded."""
        self.redis = redis
        self.shards = list(shards) if shards else [redis]
        self.keys = keys
        self.section = section
        self.consumer = f"{socket.gethostname()}-{os.getpid()}"
        self.results: Counter[str] = Counter()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        with contextlib.suppress(ResponseError):  # BUSYGROUP: it exists already
            await resolve(self.redis.xgroup_create(self.keys.webhooks, GROUP, "0", mkstream=True))
        self._task = asyncio.create_task(self._run())

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        next_alive = 0.0
        loop = asyncio.get_running_loop()
        while True:
            try:
                if loop.time() >= next_alive:
                    await self._heartbeat()
                    next_alive = loop.time() + ALIVE_EVERY_S
                await self.step()
            except asyncio.CancelledError:
                raise
            except RedisError as exc:  # Redis away: try again shortly, keep the backlog
                log.warning("processor_redis_error", error_type=type(exc).__name__)
                await asyncio.sleep(0.5)

    async def _heartbeat(self) -> None:
        # Every shard's workers ask whether echoes flow (the `auto` ambiguous policy).
        for shard in self.shards:
            await resolve(shard.set(self.keys.gateway_alive, self.consumer, px=ALIVE_TTL_MS))
        await self._claim_abandoned()

    async def step(self, block_ms: int | None = BLOCK_MS) -> int:
        """Process one batch of new bodies; returns how many (0 after `block_ms` idle; None:
        do not wait at all)."""
        reply: Any = await resolve(
            self.redis.xreadgroup(
                GROUP, self.consumer, {self.keys.webhooks: ">"}, count=BATCH, block=block_ms
            )
        )
        entries = reply[0][1] if reply else []
        await self._process(entries)
        return len(entries)

    async def _claim_abandoned(self) -> None:
        reply: Any = await resolve(
            self.redis.xautoclaim(
                self.keys.webhooks, GROUP, self.consumer, CLAIM_IDLE_MS, "0-0", count=BATCH
            )
        )
        if reply and reply[1]:
            log.warning("processor_claimed_abandoned", bodies=len(reply[1]))
            await self._process(reply[1])

    async def _process(self, entries: list[tuple[Any, dict[Any, Any]]]) -> None:
        for entry_id, fields in entries:
            body = fields.get(b"body") or b""
            await self._record(body)
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.xack(self.keys.webhooks, GROUP, entry_id)
                pipe.xdel(self.keys.webhooks, entry_id)
                await pipe.execute()

    def _shard_of(self, account_id: str | None) -> Redis:
        """The Redis of the account's shard (an event without an account: the home one)."""
        if account_id is None or len(self.shards) == 1:
            return self.shards[0]
        return self.shards[shard_of(account_id, len(self.shards))]

    async def _record(self, body: bytes) -> None:
        try:
            batch = parse_webhook(body)
        except WebhookError:  # it parsed before it was acknowledged: only if it was changed
            metrics.INBOUND_EVENTS.labels(type="unparsable", result="dropped").inc()
            return
        # Meta does not keep order across deliveries; within one body, time order.
        for event in sorted(batch.events, key=lambda e: e.timestamp_ms or 0):
            result = await record_inbound(
                self._shard_of(event.account_id),
                self.keys,
                event,
                stream_maxlen=self.section.inbound_stream_maxlen,
                dedupe_s=self.section.dedupe_s,
            )
            self.results[result] += 1
            metrics.INBOUND_EVENTS.labels(type=event.type, result=result).inc()
