"""The worker's claim of a poll's jobs (producers/lua/arq_claim.lua, run by
`GuardedWorker.start_jobs`): the same rule as ARQ's WATCH/MULTI claim, one round trip per
batch. Real Redis."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from arq.constants import in_progress_key_prefix

from ig_outbound.producers.redis_util import resolve
from ig_outbound.producers.scripts import ARQ_CLAIM

QUEUE = "claim:queue"
TTL_MS = 30_000


async def _now_ms(r: aioredis.Redis) -> int:
    seconds, micros = await resolve(r.time())
    return int(seconds) * 1000 + int(micros) // 1000


async def _claim(r: aioredis.Redis, ids: list[str], room: int = 100) -> dict[str, float]:
    script = r.register_script(ARQ_CLAIM.source)
    flat = await script(keys=[QUEUE], args=[in_progress_key_prefix, TTL_MS, room, *ids])
    return {flat[i].decode(): float(flat[i + 1]) for i in range(0, len(flat), 2)}


async def test_only_due_queued_jobs_no_worker_holds_are_claimed(aredis: aioredis.Redis) -> None:
    now = await _now_ms(aredis)
    await aredis.zadd(QUEUE, {"due": now - 5, "held": now - 5, "later": now + 60_000})
    await aredis.set(in_progress_key_prefix + "held", "1", px=TTL_MS)

    claimed = await _claim(aredis, ["due", "held", "later", "not-queued"])

    assert claimed == {"due": now - 5}
    ttl = await aredis.pttl(in_progress_key_prefix + "due")
    assert TTL_MS - 5_000 < ttl <= TTL_MS
    assert await aredis.exists(in_progress_key_prefix + "later") == 0
    assert await aredis.exists(in_progress_key_prefix + "not-queued") == 0
    # Claimed once: a second claim (another worker's poll) finds it held.
    assert await _claim(aredis, ["due"]) == {}


async def test_a_worker_claims_no_more_than_it_has_room_for(aredis: aioredis.Redis) -> None:
    now = await _now_ms(aredis)
    ids = [f"j{i}" for i in range(5)]
    await aredis.zadd(QUEUE, {i: now - 1 for i in ids})

    assert list(await _claim(aredis, ids, room=2)) == ["j0", "j1"]
    # The others stay free for the next poll (no lease was taken on them).
    assert await aredis.exists(*(in_progress_key_prefix + i for i in ids[2:])) == 0
    assert list(await _claim(aredis, ids, room=0)) == []


async def test_concurrent_claims_of_the_same_jobs_never_overlap(aredis: aioredis.Redis) -> None:
    now = await _now_ms(aredis)
    ids = [f"race{i}" for i in range(200)]
    await aredis.zadd(QUEUE, {i: now - 1 for i in ids})

    results = await asyncio.gather(*(_claim(aredis, ids) for _ in range(4)))

    counted = [job for result in results for job in result]
    assert sorted(counted) == sorted(ids)  # each claimed exactly once


async def test_a_job_scored_minus_infinity_is_queued_again_due_now(
    aredis: aioredis.Redis,
) -> None:
    await aredis.zadd(QUEUE, {"broken": float("-inf")})
    before = await _now_ms(aredis)

    assert await _claim(aredis, ["broken"]) == {}

    score = await aredis.zscore(QUEUE, "broken")
    assert score is not None and before <= score <= await _now_ms(aredis)
    assert await aredis.exists(in_progress_key_prefix + "broken") == 0
