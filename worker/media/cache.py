"""What probes found, shared by the fleet through Redis, so a URL is probed once per TTL.

Key: `<prefix>:media:<sha256 of the URL>` (`Keys.media_probe`). Value: JSON,
`{"facts": {...}}` for `cache_ttl_s`, or `{"error": {"code", "message"}}` for 30 s (a failure,
even a transient one: a struggling server is not probed by every worker at once). A
`cache_ttl_s` of 0 turns the cache off. An entry that does not read back is a miss.
"""

from __future__ import annotations

import hashlib
import json
from typing import Final

from redis.asyncio import Redis

from ig_outbound.producers.keys import Keys
from ig_outbound.worker.media.errors import PROBE_ERROR_CODES, MediaProbeError
from ig_outbound.worker.media.probe import MediaFacts

FAILURE_TTL_S: Final = 30

Result = MediaFacts | MediaProbeError


def media_cache_key(keys: Keys, url: str) -> str:
    """The cache key of `url` under `keys`' prefix (a hash: URLs are long and any text)."""
    digest = hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()
    return keys.media_probe(digest)


class MediaCache:
    def __init__(self, redis: Redis, keys: Keys, ttl_s: int) -> None:
        self._redis = redis
        self._keys = keys
        self._ttl_s = ttl_s

    async def get(self, url: str) -> Result | None:
        if self._ttl_s <= 0:
            return None
        raw = await self._redis.get(media_cache_key(self._keys, url))
        return _decode(raw) if raw is not None else None

    async def put(self, url: str, result: Result) -> None:
        ttl_s = self._ttl_s if isinstance(result, MediaFacts) else min(FAILURE_TTL_S, self._ttl_s)
        if ttl_s <= 0:
            return
        await self._redis.set(media_cache_key(self._keys, url), _encode(result), ex=ttl_s)


def _encode(result: Result) -> str:
    if isinstance(result, MediaFacts):
        return json.dumps({"facts": result.as_dict()})
    return json.dumps({"error": {"code": result.code, "message": result.message}})


def _decode(raw: bytes | str) -> Result | None:
    try:
        data = json.loads(raw)
        if "facts" in data:
            return MediaFacts.from_dict(data["facts"])
        code, message = data["error"]["code"], data["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return None
    if code not in PROBE_ERROR_CODES or not isinstance(message, str):
        return None
    return MediaProbeError(code, message)
