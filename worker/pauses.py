"""Fleet-wide account pauses: a key with a TTL that every worker checks before sending."""

from __future__ import annotations

from redis.asyncio import Redis

from ig_outbound.producers.keys import Keys

# Only ever lengthen a pause: a short pause must not cut a longer one Meta asked for.
_PAUSE = """
local left = redis.call('PTTL', KEYS[1])
if left < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[1])
  return 1
end
return 0
"""


class Pauses:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._pause = redis.register_script(_PAUSE)

    async def pause(self, account_id: str, seconds: float, reason: str) -> bool:
        """Pause the account for at least `seconds`; True if this lengthened the pause."""
        ms = max(int(seconds * 1000), 1)
        reply = await self._pause(keys=[self._keys.pause(account_id)], args=[ms, reason])
        return bool(int(reply))
