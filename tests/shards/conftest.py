"""Two private redis-servers: the shards of the tests in this package."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis

from ig_outbound.harness.processes import RedisServer
from ig_outbound.producers.settings import ClientSettings
from ig_outbound.producers.shards import shard_of

PREFIX = "igo-shards"


def accounts_on(shard: int, count: int, shards: int = 2, start: int = 0) -> list[str]:
    """The first `count` account ids (from 17841400000100000 + start) on `shard`."""
    out: list[str] = []
    n = start
    while len(out) < count:
        account = str(17841400000100000 + n)
        if shard_of(account, shards) == shard:
            out.append(account)
        n += 1
    return out


def now_hint() -> str:
    """A window hint that says the user wrote just now (the window is open)."""
    return datetime.now(UTC).isoformat()


@pytest.fixture(scope="session")
def two_redis() -> Iterator[tuple[RedisServer, RedisServer]]:
    with RedisServer() as a, RedisServer() as b:
        yield a, b


@pytest.fixture
def sharded(two_redis: tuple[RedisServer, RedisServer]) -> Iterator[ClientSettings]:
    """Client settings over both shards, emptied first."""
    for server in two_redis:
        with redis.Redis(port=server.port) as r:
            r.flushdb()
    yield ClientSettings(
        shards=[server.url for server in two_redis],
        key_prefix=PREFIX,
        redis_allow_data_loss=True,
    )


def raw(server: RedisServer) -> redis.Redis:
    return redis.Redis(port=server.port, decode_responses=True)
