"""The worker's claim of a poll's jobs (producers/lua/arq_claim.lua, run by
`GuardedWorker.start_jobs`): the same rule as ARQ's WATCH/MULTI claim, one round trip per
batch, which also does ARQ's job fetch (worker/prefetch.py serves it to ARQ). Real Redis."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from arq.constants import in_progress_key_prefix, job_key_prefix, retry_key_prefix

from ig_outbound.harness.processes import RedisServer
from ig_outbound.producers.redis_util import resolve
from ig_outbound.producers.scripts import ARQ_CLAIM
from ig_outbound.worker.prefetch import RETRY_KEY_TTL_S, PrefetchingArqRedis

QUEUE = "claim:queue"
TTL_MS = 30_000


async def _now_ms(r: aioredis.Redis) -> int:
    seconds, micros = await resolve(r.time())
    return int(seconds) * 1000 + int(micros) // 1000


async def _claim_fetching(
    r: aioredis.Redis, ids: list[str], room: int = 100, *, fetch: bool = True, requeues: int = 0
) -> dict[str, tuple[float, bytes | None, int | None]]:
    """id -> (score, job, try) of the jobs claimed; `requeues` jobs scored -inf expected."""
    script = r.register_script(ARQ_CLAIM.source)
    fetching: list[str | int] = ["", "", 0]
    if fetch:
        fetching = [job_key_prefix, retry_key_prefix, RETRY_KEY_TTL_S]
    requeued, *flat = await script(
        keys=[QUEUE], args=[in_progress_key_prefix, TTL_MS, room, *fetching, *ids]
    )
    assert requeued == requeues
    return {
        flat[i].decode(): (float(flat[i + 1]), flat[i + 2], flat[i + 3])
        for i in range(0, len(flat), 4)
    }


async def _claim(
    r: aioredis.Redis, ids: list[str], room: int = 100, requeues: int = 0
) -> dict[str, float]:
    claimed = await _claim_fetching(r, ids, room, fetch=False, requeues=requeues)
    assert all(job is None and tries is None for _, job, tries in claimed.values())
    return {job_id: score for job_id, (score, _, _) in claimed.items()}


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

    assert await _claim(aredis, ["broken"], requeues=1) == {}  # (and the worker logs it)

    score = await aredis.zscore(QUEUE, "broken")
    assert score is not None and before <= score <= await _now_ms(aredis)
    assert await aredis.exists(in_progress_key_prefix + "broken") == 0


async def test_the_claim_does_arqs_fetch_for_each_job_it_claims(aredis: aioredis.Redis) -> None:
    now = await _now_ms(aredis)
    await aredis.zadd(QUEUE, {"a": now - 1, "b": now - 1, "held": now - 1})
    await aredis.set(job_key_prefix + "a", b"job-a")
    await aredis.set(retry_key_prefix + "a", 2)  # run twice before
    await aredis.set(job_key_prefix + "held", b"job-held")
    await aredis.set(in_progress_key_prefix + "held", "1", px=TTL_MS)

    claimed = await _claim_fetching(aredis, ["a", "b", "held"])

    # "b" has no job key (expired): ARQ reads None and fails it as expired.
    assert claimed == {"a": (now - 1, b"job-a", 3), "b": (now - 1, None, 1)}
    ttl = await aredis.ttl(retry_key_prefix + "a")
    assert RETRY_KEY_TTL_S - 60 < ttl <= RETRY_KEY_TTL_S
    assert await aredis.exists(retry_key_prefix + "held") == 0  # not claimed: not counted


async def test_a_fetch_that_fails_leaves_the_failure_to_arq_and_claims_the_rest(
    aredis: aioredis.Redis,
) -> None:
    now = await _now_ms(aredis)
    await aredis.zadd(QUEUE, {"hash": now - 1, "junk-count": now - 1, "good": now - 1})
    await resolve(aredis.hset(job_key_prefix + "hash", "x", "y"))  # a key of the wrong type
    await aredis.set(job_key_prefix + "junk-count", b"job")
    await aredis.set(retry_key_prefix + "junk-count", "junk")  # INCR fails
    await aredis.set(job_key_prefix + "good", b"job-good")

    claimed = await _claim_fetching(aredis, ["hash", "junk-count", "good"])

    assert claimed == {
        "hash": (now - 1, None, None),
        "junk-count": (now - 1, None, None),
        "good": (now - 1, b"job-good", 1),
    }


async def test_the_pool_serves_arqs_fetch_once_from_the_claim_and_else_asks_redis(
    redis_server: RedisServer, aredis: aioredis.Redis
) -> None:
    pool = PrefetchingArqRedis.from_url(redis_server.url)
    try:
        await aredis.set(job_key_prefix + "j", b"stored")
        pool.prefetched["j"] = (b"claimed", 7)
        multi_before = await _calls(aredis, "multi")

        assert await _arq_fetch(pool, "j") == [b"claimed", 7, True]  # served, no round trip
        assert await _calls(aredis, "multi") == multi_before
        assert pool.prefetched == {}
        # Nothing left for it: ARQ's transaction goes to Redis as before.
        assert await _arq_fetch(pool, "j") == [b"stored", 1, True]
        assert await _calls(aredis, "multi") == multi_before + 1
        # Another transaction of the same length is never served from the claim.
        pool.prefetched["j"] = (b"claimed", 7)
        async with pool.pipeline(transaction=True) as pipe:
            pipe.get(job_key_prefix + "j")
            pipe.incr(retry_key_prefix + "j", 5)
            pipe.expire(retry_key_prefix + "j", RETRY_KEY_TTL_S)
            assert await pipe.execute() == [b"stored", 6, True]
        assert pool.prefetched == {"j": (b"claimed", 7)}
    finally:
        await pool.aclose()


async def _arq_fetch(pool: PrefetchingArqRedis, job_id: str) -> list[object]:
    """The transaction ARQ's `Worker.run_job` starts every job with."""
    async with pool.pipeline(transaction=True) as pipe:
        pipe.get(job_key_prefix + job_id)
        pipe.incr(retry_key_prefix + job_id)
        pipe.expire(retry_key_prefix + job_id, RETRY_KEY_TTL_S)
        result: list[object] = await pipe.execute()
        return result


async def _calls(r: aioredis.Redis, command: str) -> int:
    stats = await r.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))
