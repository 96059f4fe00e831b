"""The enqueue script's schedule: reserved slots per account, one queued intent per conversation."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis

from ig_outbound.harness.intents import make_intent, text_intent
from ig_outbound.producers.enqueue import OutboundClient
from ig_outbound.producers.outcome import Outcome, OutcomeStatus
from ig_outbound.producers.redis_util import resolve
from ig_outbound.worker.journal import Journal
from ig_outbound.worker.limiter import RateLimiter
from ig_outbound.worker.settings import RateSettings, Settings

PREFIX = "sched"
A, B = "17841400000000001", "17841400000000002"


def _intent(key: str, account: str, recipient: str) -> dict[str, Any]:
    """A text intent whose text is its key."""
    return text_intent(key, account, recipient, key)


def _video(key: str, account: str, recipient: str) -> dict[str, Any]:
    return make_intent(key, account, recipient, {"kind": "video", "url": "https://x.io/a"})


async def _client(r: aioredis.Redis) -> OutboundClient:
    settings = Settings(key_prefix=PREFIX, rate=RateSettings(burst=1))
    client = OutboundClient(r, settings)
    await client.register_accounts([A, B])
    await RateLimiter(r, client.keys, settings.rate).publish()
    return client


async def _scores(r: aioredis.Redis, client: OutboundClient) -> dict[str, float]:
    raw = await resolve(r.zrange(client.keys.queue, 0, -1, withscores=True))
    return {m.decode().removeprefix(f"{PREFIX}:"): s for m, s in raw}


async def test_a_backlog_is_spread_over_reserved_slots_and_other_accounts_go_first(
    aredis: aioredis.Redis,
) -> None:
    client = await _client(aredis)
    await client.enqueue_many([_intent(f"a{i}", A, f"1{i:04d}") for i in range(200)])
    seconds, micros = await resolve(aredis.time())
    b_enqueued_ms = int(seconds) * 1000 + int(micros) // 1000
    await client.enqueue(_intent("b0", B, "20000"))
    scores = await _scores(aredis, client)
    a_slots = sorted(scores[f"a{i}"] for i in range(200))
    gaps = [y - x for x, y in itertools.pairwise(a_slots)]
    # 100 sends per 1.1 s (the transit allowance before one is measured): one slot every
    # 11 ms, so 200 intents span ~2.2 s.
    assert min(gaps) >= 10.9 and a_slots[-1] - a_slots[0] >= 2180
    # Account B's intent, enqueued after all of A's, is due before almost all of them.
    # (Slots already due when B came, on a slow machine where enqueueing A took a while,
    # do not count: only those still ahead of B's enqueue may not come before it.)
    ahead = [s for s in a_slots if s > b_enqueued_ms]
    assert sum(1 for s in ahead if s <= scores["b0"]) <= 2


async def test_media_has_its_own_slower_schedule(aredis: aioredis.Redis) -> None:
    client = await _client(aredis)
    await client.enqueue_many([_video(f"v{i}", A, f"3{i:04d}") for i in range(5)])
    await client.enqueue(_intent("t0", A, "40000"))
    scores = await _scores(aredis, client)
    video = sorted(scores[f"v{i}"] for i in range(5))
    assert all(y - x >= 110 for x, y in itertools.pairwise(video))  # 9 per 1.1 s
    assert scores["t0"] <= video[1]  # text does not queue behind video


async def _due(r: aioredis.Redis, client: OutboundClient) -> set[str]:
    """Keys whose job is due within a minute (later intents are parked at their deadline)."""
    horizon = (time.time() + 60) * 1000
    return {k for k, score in (await _scores(r, client)).items() if score <= horizon}


async def test_one_intent_per_conversation_is_due_and_the_next_follows_its_outcome(
    aredis: aioredis.Redis,
) -> None:
    client = await _client(aredis)
    results = await client.enqueue_many([_intent(f"c{i}", A, "55555") for i in range(3)])
    assert [r.status for r in results] == ["queued"] * 3
    assert await _due(aredis, client) == {"c0"}
    # The later ones wait parked at their deadline (24 h), so they can still expire on time.
    parked = await _scores(aredis, client)
    assert parked["c1"] >= (time.time() + 86_000) * 1000
    journal = Journal(aredis, client.keys, maxlen=1000, dlq_maxlen=1000, retention_s=3600)
    done = Outcome(key="c0", status=OutcomeStatus.SENT, finished_at=datetime.now(UTC))
    assert await journal.finish(done, "{}") is True
    # (ARQ removes c0's own job from the queue when the job returns; no worker runs here.)
    await aredis.zrem(client.keys.queue, client.keys.job_id("c0"))
    assert await _due(aredis, client) == {"c1"}
    # A failed intent releases its conversation just the same.
    failed = Outcome(key="c1", status=OutcomeStatus.FAILED, finished_at=datetime.now(UTC))
    assert await journal.finish(failed, "{}") is True
    await aredis.zrem(client.keys.queue, client.keys.job_id("c1"))
    assert await _due(aredis, client) == {"c2"}
    assert await journal.finish(failed.model_copy(update={"key": "c2"}), "{}") is True
    assert await resolve(aredis.exists(client.keys.conversation(A, "id:55555"))) == 0


async def test_a_later_intent_ending_first_does_not_release_the_conversation(
    aredis: aioredis.Redis,
) -> None:
    client = await _client(aredis)
    await client.enqueue_many([_intent(f"d{i}", A, "66666") for i in range(3)])
    journal = Journal(aredis, client.keys, maxlen=1000, dlq_maxlen=1000, retention_s=3600)
    # d1 expires while d0 (the head) is still pending: d2 must stay parked.
    expired = Outcome(key="d1", status=OutcomeStatus.EXPIRED, finished_at=datetime.now(UTC))
    assert await journal.finish(expired, "{}") is True
    await aredis.zrem(client.keys.queue, client.keys.job_id("d1"))
    assert await _due(aredis, client) == {"d0"}
    members = await resolve(aredis.zrange(client.keys.conversation(A, "id:66666"), 0, -1))
    assert members == [b"d0", b"d2"]
