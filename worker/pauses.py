"""Fleet-wide account pauses: a key with a TTL that every worker checks before sending."""

from __future__ import annotations

from redis.asyncio import Redis

from ig_outbound.producers.keys import Keys
from ig_outbound.producers.scripts import ACCOUNT_PAUSE


class Pauses:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._pause = redis.register_script(ACCOUNT_PAUSE.source)

    async def pause(self, account_id: str, seconds: float, reason: str) -> bool:
        """Pause the account for at least `seconds`; True if this lengthened the pause."""
        ms = max(int(seconds * 1000), 1)
        reply = await self._pause(keys=[self._keys.pause(account_id)], args=[ms, reason])
        return bool(int(reply))
