"""The end of a conversation's head always wakes the next intent, even while a run of that
next intent is in flight (it parks itself just before): real ARQ, real Redis, real scripts.

This was a race CI caught: the parked run's `Retry(defer)` was added by ARQ to the score the
head's end had just set, pushing the next intent an hour (or to its deadline) away."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from arq.connections import ArqRedis
from arq.worker import Worker, func

from ig_outbound.harness.intents import text_intent
from ig_outbound.harness.processes import RedisServer
from ig_outbound.producers.enqueue import OutboundClient
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.outcome import Outcome, OutcomeStatus
from ig_outbound.producers.wire import SEND_JOB_NAME
from ig_outbound.worker.job import park_retry
from ig_outbound.worker.job_guard import load_job
from ig_outbound.worker.journal import Journal
from ig_outbound.worker.settings import Settings

ACCOUNT = "17841400000000999"
RECIPIENT = "9000000000001"
HOUR_MS = 3_600_000


async def test_a_run_that_parks_while_the_head_ends_is_woken(
    aredis: aioredis.Redis, redis_server: RedisServer
) -> None:
    settings = Settings(key_prefix="wake")
    keys = Keys(settings.key_prefix)
    client = OutboundClient(aredis, settings)
    await client.register_accounts([ACCOUNT])
    first = text_intent("first", ACCOUNT, RECIPIENT, "one")
    second = text_intent("second", ACCOUNT, RECIPIENT, "two")
    assert (await client.enqueue(first)).status == "queued"
    assert (await client.enqueue(second)).status == "queued"
    # Only the second intent's job runs here (as after a redelivery), before its turn.
    await aredis.zrem(keys.queue, keys.job_id("first"))
    await aredis.zadd(keys.queue, {keys.job_id("second"): 1})
    journal = Journal(aredis, keys, maxlen=1000, dlq_maxlen=1000, retention_s=60)
    runs: list[str] = []
    woken = asyncio.Event()

    async def send(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> str:
        now_ms = int(time.time() * 1000)
        begin = await journal.begin("second", "test", 20, park_until_ms=now_ms + HOUR_MS)
        runs.append(begin.verdict)
        if begin.verdict != "not_its_turn":
            woken.set()
            return "ran"
        parked_at = await aredis.zscore(keys.queue, keys.job_id("second"))
        assert parked_at is not None and parked_at >= now_ms + HOUR_MS
        # The head ends while this run is still in flight: it queues the second intent now.
        head_end = Outcome(key="first", status=OutcomeStatus.SENT, finished_at=datetime.now(UTC))
        assert await journal.finish(head_end, "{}")
        raise park_retry()

    pool = ArqRedis.from_url(redis_server.url)
    worker = Worker(
        functions=[func(send, name=SEND_JOB_NAME)],
        redis_pool=pool,
        queue_name=keys.queue,
        job_deserializer=load_job,
        poll_delay=0.05,
        keep_result=0,
        max_tries=100,
        handle_signals=False,
    )
    task = asyncio.create_task(worker.async_run())
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(woken.wait(), 10)
        await asyncio.gather(*worker.tasks.values())  # let the run end before closing
    finally:
        await worker.close()
        task.cancel()
        await pool.aclose()
    # Parked once, then woken by the head's end and run at once, not an hour later.
    assert runs == ["not_its_turn", "go"]
