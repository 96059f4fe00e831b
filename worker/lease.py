"""A lease in Redis: one worker of the fleet at a time does a job (sweeping, the fleet's
metrics). The holder renews it each time it works; when it dies the lease lapses and the
next worker to ask takes it."""

from __future__ import annotations

from redis.asyncio import Redis

from ig_outbound.producers.redis_util import resolve


async def hold_lease(redis: Redis, key: str, owner: str, seconds: float) -> bool:
    """True if `owner` holds the lease at `key` now (taken or renewed for `seconds`)."""
    ms = max(int(seconds * 1000), 1)
    if await resolve(redis.set(key, owner, px=ms, nx=True)):
        return True
    holder = await resolve(redis.get(key))
    if holder is not None and holder.decode() == owner:
        await resolve(redis.pexpire(key, ms))
        return True
    return False
