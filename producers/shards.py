"""Which Redis an account lives on: the one definition of the shard rule.

Past one Redis primary, accounts are spread over N independent primaries (`ClientSettings.
shards`, in order). Everything keyed by an account (its intents, conversations, rate state,
registry entry, window facts, echoes) lives on the account's shard, so every script keeps
touching one Redis and one ARQ queue, as before.

The rule, reproducible in any language (docs/scaling.md has test vectors):

    key   = the first 8 bytes of SHA-1(account id as UTF-8), read as a big-endian uint64
    shard = jump_consistent_hash(key, N)          (Lamping & Veach, 2014)

    jump_consistent_hash(key, n):
        b, j = -1, 0
        while j < n:
            b = j
            key = (key * 2862933555777941757 + 1) mod 2**64
            j = floor((b + 1) * (2**31 / ((key >> 33) + 1)))     # IEEE-754 doubles
        return b

Jump hash moves only 1/(N+1) of the accounts when shard N+1 is appended, and none between
the old shards; reordering or removing a shard moves most of them. A test pins the vectors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from ig_outbound.producers.errors import ShardConfigError
from ig_outbound.producers.settings import ClientSettings

_MASK64 = (1 << 64) - 1
_JUMP_MULTIPLIER = 2862933555777941757


def jump_hash(key: int, buckets: int) -> int:
    """Lamping & Veach's jump consistent hash of a uint64 `key` into `buckets` buckets."""
    if buckets < 1:
        raise ShardConfigError("there must be at least one shard")
    key &= _MASK64
    b, j = -1, 0
    while j < buckets:
        b = j
        key = (key * _JUMP_MULTIPLIER + 1) & _MASK64
        j = int((b + 1) * (float(1 << 31) / float((key >> 33) + 1)))
    return b


def account_key(account_id: str) -> int:
    """The account's 64-bit hash key: SHA-1 of its UTF-8 bytes, first 8 bytes, big-endian."""
    if not isinstance(account_id, str):
        raise TypeError(f"an account id is a str, not {type(account_id).__name__}")
    digest = hashlib.sha1(account_id.encode("utf-8"), usedforsecurity=False).digest()
    return int.from_bytes(digest[:8], "big")


def shard_of(account_id: str, shards: int) -> int:
    """The index of the shard (0 .. shards-1) that holds `account_id`."""
    return jump_hash(account_key(account_id), shards)


@dataclass(frozen=True)
class ShardMap:
    """The shards of a deployment, in order: their URLs and the rule that picks one."""

    urls: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.urls:
            raise ShardConfigError("the shard list is empty: give at least one Redis URL")
        if len(set(self.urls)) != len(self.urls):
            raise ShardConfigError("a Redis URL is listed twice in the shard list")

    @classmethod
    def of(cls, urls: Sequence[str]) -> ShardMap:
        return cls(tuple(urls))

    @classmethod
    def from_settings(cls, settings: ClientSettings) -> ShardMap:
        """`IG_OUTBOUND_SHARDS`, or the one shard `IG_OUTBOUND_REDIS_URL`."""
        return cls(tuple(settings.shard_urls()))

    def __len__(self) -> int:
        return len(self.urls)

    def index(self, account_id: str) -> int:
        return shard_of(account_id, len(self.urls))

    def check(self, index: int) -> int:
        """`index` if it names a shard; `ShardConfigError` otherwise."""
        if not 0 <= index < len(self.urls):
            raise ShardConfigError(f"shard {index} does not exist (shards: 0-{len(self) - 1})")
        return index


def shard_settings(settings: ClientSettings, index: int) -> ClientSettings:
    """`settings` aimed at one shard: its `redis_url` is that shard's (the list is kept, so
    the shard still knows the rule). Works for every subclass (worker, gateway, tools)."""
    shards = ShardMap.from_settings(settings)
    url = shards.urls[shards.check(index)]
    return settings if url == settings.redis_url else settings.model_copy(update={"redis_url": url})
