"""Junk written straight into Redis never stops a live worker, and ends only its own intent.

A real ARQ worker of our `GuardedWorker` class runs as an asyncio task against a private
Redis (jobs enqueued by the real producer client, the real Lua journal), with Graph on an
`httpx.MockTransport`. Junk is planted as ARQ's enqueue would: the job key
`arq:job:<job id>` and the job id in the queue, due now. A junk job planted under a real
intent's job id replaces that intent's own job, which was parked an hour ahead (its
`not_before`) so only the junk runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from arq.worker import func
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from ig_outbound.accounts.registry import AccountRegistry
from ig_outbound.graph import GraphClient
from ig_outbound.harness.intents import text_intent
from ig_outbound.harness.processes import RedisServer
from ig_outbound.harness.wait import wait_until_async
from ig_outbound.producers.enqueue import OutboundClient
from ig_outbound.producers.keys import ARQ_IN_PROGRESS_PREFIX, ARQ_JOB_PREFIX, Keys
from ig_outbound.producers.outcome import Outcome
from ig_outbound.producers.redis_util import resolve
from ig_outbound.producers.wire import SEND_JOB_NAME, dumps
from ig_outbound.worker.arq_worker import GuardedWorker
from ig_outbound.worker.job import send_intent
from ig_outbound.worker.job_guard import load_job
from ig_outbound.worker.prefetch import PrefetchingArqRedis
from ig_outbound.worker.services import Services
from ig_outbound.worker.settings import Settings
from ig_outbound.worker.tokens import LocalTokens, TokenBook
from ig_outbound.worker.worker_settings import ARQ_MAX_TRIES
from tests.worker.junk import stored_jobs

ACCOUNT = "17841400000000401"
TOKEN = "IGAA" + "j" * 40
VICTIM_RECIPIENT = "1254477777799999"
WAIT_S = 10.0
_RECIPIENTS = itertools.count(1254477777700000)


def _ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"recipient_id": "1", "message_id": "aWdfZAG1faXRlbTox"})


@dataclass
class Live:
    """A running worker and the producer client beside it."""

    keys: Keys
    redis: aioredis.Redis
    client: OutboundClient
    worker: GuardedWorker
    task: asyncio.Task[None]
    victim: dict[str, Any] = field(default_factory=dict)

    def alive(self) -> bool:
        return not self.task.done()

    async def park(self, label: str) -> str:
        """Enqueue an intent to a recipient of its own whose job waits an hour."""
        key = f"{label}:{uuid.uuid4().hex}"
        later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        intent = text_intent(key, ACCOUNT, str(next(_RECIPIENTS)), "parked", not_before=later)
        assert (await self.client.enqueue(intent)).status == "queued"
        return key

    async def plant(self, job_id: str, data: bytes, kind: str = "string") -> None:
        """Store a job as ARQ's enqueue would, due now; `kind` breaks its Redis keys."""
        job_key = ARQ_JOB_PREFIX + job_id
        await self.redis.delete(job_key)
        if kind == "hash":  # a job key of the wrong type
            await resolve(self.redis.hset(job_key, "junk", data.decode("utf-8", "replace")))
        else:
            await self.redis.set(job_key, data, px=3_600_000)
        if kind == "bad_try_counter":  # ARQ's INCR of it fails
            await self.redis.set(f"arq:retry:{job_id}", "junk", px=3_600_000)
        await self.redis.zadd(self.keys.queue, {job_id: int(time.time() * 1000)})

    async def gone(self, job_id: str) -> bool:
        """ARQ holds nothing of the job any more: not queued, not running, no job key."""
        queued = await self.redis.zscore(self.keys.queue, job_id) is not None
        held = await self.redis.exists(ARQ_JOB_PREFIX + job_id, ARQ_IN_PROGRESS_PREFIX + job_id)
        return not queued and held == 0

    async def outcomes_of(self, key: str) -> list[Outcome]:
        entries = await self.redis.xrange(self.keys.outcomes)
        return [
            Outcome.model_validate_json(fields[b"outcome"])
            for _, fields in entries
            if fields[b"key"].decode() == key
        ]

    async def sends_a_good_intent(self) -> None:
        key = f"good:{uuid.uuid4().hex}"
        intent = text_intent(key, ACCOUNT, str(next(_RECIPIENTS)), "still here")
        await self.client.enqueue(intent)
        outcome = await self.client.wait(key, timeout=WAIT_S)
        assert outcome.status == "sent", outcome


@pytest.fixture
async def live(aredis: aioredis.Redis, redis_server: RedisServer) -> AsyncIterator[Live]:
    settings = Settings(
        key_prefix=f"junk-{uuid.uuid4().hex[:8]}",
        redis_url=redis_server.url,
        redis_allow_data_loss=True,
    )
    keys = Keys(settings.key_prefix)
    pool = PrefetchingArqRedis.from_url(redis_server.url)  # as in production
    graph = GraphClient(settings.graph, transport=httpx.MockTransport(_ok))
    registry = AccountRegistry(pool, keys)
    tokens = TokenBook(settings, registry, LocalTokens({ACCOUNT: SecretStr(TOKEN)}, None), None)
    services = Services.build(settings, pool, tokens, graph=graph)
    await tokens.start()
    await services.limiter.publish()
    client = OutboundClient(aredis, settings)
    await client.register_accounts(tokens.accounts())
    worker = GuardedWorker(
        functions=[func(send_intent, name=SEND_JOB_NAME, max_tries=ARQ_MAX_TRIES)],
        redis_pool=pool,
        queue_name=keys.queue,
        job_serializer=dumps,
        job_deserializer=load_job,
        poll_delay=0.01,
        keep_result=0,
        max_tries=ARQ_MAX_TRIES,
        handle_signals=False,
        ctx={"igo": services},
    )
    task = asyncio.create_task(worker.async_run())
    live = Live(keys, aredis, client, worker, task)
    live.victim = text_intent(f"victim:{uuid.uuid4().hex}", ACCOUNT, VICTIM_RECIPIENT, "mine")
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    await client.enqueue({**live.victim, "not_before": later})
    try:
        yield live
    finally:
        task.cancel()  # stop polling, then let the runs in flight end before closing
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
        await worker.close()
        await graph.aclose()
        await pool.aclose()


# The victim's key is only known once the fixture ran: junk that carries "the victim's key"
# is generated with this placeholder and pointed at the real key before it is planted.
PLACEHOLDER = "victim-key-placeholder"
_VICTIM = text_intent(PLACEHOLDER, ACCOUNT, VICTIM_RECIPIENT, "mine")


@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(
    data=stored_jobs(_VICTIM),
    owned=st.booleans(),
    kind=st.sampled_from(["string", "string", "string", "hash", "bad_try_counter"]),
)
async def test_junk_jobs_never_stop_a_live_worker_and_end_only_their_own_intent(
    live: Live, data: bytes, owned: bool, kind: str
) -> None:
    data = data.replace(PLACEHOLDER.encode(), live.victim["idempotency_key"].encode())
    key = await live.park("owner") if owned else None
    job_id = live.keys.job_id(key) if key else f"junk-{uuid.uuid4().hex}"
    dead_before = await live.redis.xlen(live.keys.dead_letters)

    await live.plant(job_id, data, kind)

    await wait_until_async(lambda: live.gone(job_id), WAIT_S, f"junk job {data[:200]!r}")
    assert live.alive(), f"the worker died of {data[:200]!r}"
    if key is not None:
        # Its own intent ends exactly once (rejected, as a rule: junk is no intent to send).
        outcomes = await live.outcomes_of(key)
        assert [o.status for o in outcomes] == ["rejected"], (outcomes, data[:200])
    else:
        # Junk of no intent: one dead letter without a key.
        entries = await live.redis.xrange(live.keys.dead_letters, count=10_000)
        new = entries[dead_before:]
        assert [fields[b"key"] for _, fields in new] == [b""], data[:200]
    assert await live.outcomes_of(live.victim["idempotency_key"]) == []
    await live.sends_a_good_intent()


async def test_a_sent_intents_job_is_ended_by_its_finish_script_alone(live: Live) -> None:
    """The finish script removes the ARQ job's keys and queue entry; ARQ's finish then skips
    its own round trip (the retired mark is consumed) and counts the job complete."""
    complete = live.worker.jobs_complete
    await live.sends_a_good_intent()
    services = live.worker.ctx["igo"]
    await wait_until_async(lambda: _async_true(not services.retired), WAIT_S, "finish_job")
    assert live.worker.jobs_complete == complete + 1
    assert await live.redis.keys("arq:retry:*") == []


async def _async_true(value: bool) -> bool:
    return value


ATTACKS: dict[str, dict[str, Any]] = {
    "unknown function": {"t": None, "f": "nope", "k": {}, "et": 0},
    "valid send job": {"t": None, "f": SEND_JOB_NAME, "k": {}, "et": 0},
    "kwargs": {"t": None, "f": SEND_JOB_NAME, "k": {"x": 1}, "et": 0},
}


@pytest.mark.parametrize("job", ATTACKS.values(), ids=ATTACKS.keys())
async def test_a_foreign_job_carrying_a_real_intents_key_does_not_end_that_intent(
    live: Live, job: dict[str, Any]
) -> None:
    victim = live.victim
    job_ids = [f"foreign-{uuid.uuid4().hex}" for _ in range(2)]
    for job_id, payload in zip(
        job_ids, (victim, {**victim, "content": {"kind": "nope"}}), strict=True
    ):
        await live.plant(job_id, json.dumps({**job, "a": [payload]}).encode())

    async def both_gone() -> bool:
        return all([await live.gone(job_id) for job_id in job_ids])

    await wait_until_async(both_gone, WAIT_S, "the foreign jobs")
    assert await live.outcomes_of(victim["idempotency_key"]) == []
    assert await live.client.state(victim["idempotency_key"]) == "queued"
    entries = await live.redis.xrange(live.keys.dead_letters)
    assert [fields[b"key"] for _, fields in entries] == [b"", b""]  # unkeyed dead letters


async def test_an_unreadable_job_ends_its_intent_and_releases_the_conversation(
    live: Live,
) -> None:
    """Python's json refuses the job, so its key can only come from the job id."""
    recipient = str(next(_RECIPIENTS))
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    head = text_intent(f"head:{uuid.uuid4().hex}", ACCOUNT, recipient, "one", not_before=later)
    nxt = text_intent(f"next:{uuid.uuid4().hex}", ACCOUNT, recipient, "two")
    await live.client.enqueue(head)
    await live.client.enqueue(nxt)  # waits for the head: same conversation

    await live.plant(live.keys.job_id(head["idempotency_key"]), b'{"et": 0x10, "a": [nan]}')

    outcome = await live.client.wait(head["idempotency_key"], timeout=WAIT_S)
    assert (outcome.status, outcome.reason) == ("rejected", "bad_job")
    assert outcome.reasons[0]["msg"] == "job payload is not valid JSON"
    # The head's end queued the next intent of its conversation, which is sent.
    assert (await live.client.wait(nxt["idempotency_key"], timeout=WAIT_S)).status == "sent"


@pytest.mark.parametrize("kind", ["hash", "bad_try_counter"])
async def test_a_job_arq_cannot_prepare_is_dead_lettered_and_removed(live: Live, kind: str) -> None:
    """ARQ itself raises on these (WRONGTYPE, INCR of junk) before our job runs."""
    key = await live.park("broken")
    job_id = live.keys.job_id(key)
    good_job: dict[str, Any] = {
        "t": None,
        "f": SEND_JOB_NAME,
        "a": [{"idempotency_key": key}],
        "k": {},
        "et": 0,
    }

    await live.plant(job_id, json.dumps(good_job).encode(), kind)

    outcome = await live.client.wait(key, timeout=WAIT_S)
    assert (outcome.status, outcome.reason) == ("rejected", "bad_job")
    assert "ResponseError" in outcome.reasons[0]["msg"]
    await wait_until_async(lambda: live.gone(job_id), WAIT_S, "the job to leave ARQ")
    assert await live.redis.exists(f"arq:retry:{job_id}") == 0
    assert live.alive()
    await live.sends_a_good_intent()


async def test_a_queue_member_that_is_not_utf8_leaves_the_queue(live: Live) -> None:
    """ARQ decodes every queue member as UTF-8 in its poll loop; this one would kill it."""
    member = b"\xff\xfejunk"
    await live.redis.zadd(live.keys.queue, {member: int(time.time() * 1000)})

    async def dropped() -> bool:
        return await live.redis.zscore(live.keys.queue, member) is None

    await wait_until_async(dropped, WAIT_S, "the member to leave the queue")
    assert live.alive()
    await live.sends_a_good_intent()


async def test_a_job_scored_minus_infinity_is_queued_again_not_fatal(live: Live) -> None:
    """ARQ's `int(score)` raises on -inf inside its poll loop; the job is queued again."""
    key = await live.park("minus-inf")  # queued an hour ahead, then its score is broken
    await live.redis.zadd(live.keys.queue, {live.keys.job_id(key): float("-inf")})

    async def rescored() -> bool:
        score = await live.redis.zscore(live.keys.queue, live.keys.job_id(key))
        return score is not None and score != float("-inf")

    await wait_until_async(rescored, WAIT_S, "the job to be queued again")
    assert live.alive()
    await live.sends_a_good_intent()
