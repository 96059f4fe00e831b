"""The asyncio clients' lean connections (producers/lean_connection.py) against a real Redis:
commands (packed by hiredis) work as before, bad arguments fail as redis-py's do, and a
Redis that stops reading (SIGSTOP: its socket buffers fill) still ends a write with
redis-py's TimeoutError within the socket timeout, as it does a read."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis.asyncio as aioredis
from redis.exceptions import DataError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ig_outbound.harness.processes import RedisServer
from ig_outbound.producers.connection import connect_async
from ig_outbound.producers.lean_connection import _LeanConnection
from ig_outbound.producers.settings import ClientSettings

pytestmark = pytest.mark.slow

TIMEOUT_S = 0.5


@pytest.fixture
def stoppable() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


def _client(server: RedisServer) -> aioredis.Redis:
    settings = ClientSettings(redis_url=server.url, redis_socket_timeout_s=TIMEOUT_S)
    return connect_async(settings)


async def test_commands_work_through_the_lean_connection(stoppable: RedisServer) -> None:
    client = _client(stoppable)
    try:
        assert issubclass(client.connection_pool.connection_class, _LeanConnection)
        big = b"x" * (8 << 20)  # larger than any socket buffer: the write must wait
        assert await client.set("k", big)
        assert await client.get("k") == big
        assert await client.set("ü", "ünïcode") and await client.get("ü") == "ünïcode".encode()
        assert await client.set("f", 1.5) and await client.incrbyfloat("f", 0.25) == 1.75
        with pytest.raises(DataError):
            await client.set("k", {"a": 1})  # type: ignore[arg-type]
        async with client.pipeline(transaction=True) as pipe:
            pipe.incr("n")
            pipe.incr("n")
            assert await pipe.execute() == [1, 2]
    finally:
        await client.aclose()


@pytest.mark.parametrize("blocked", ["write", "read"])
async def test_a_stalled_redis_times_out(stoppable: RedisServer, blocked: str) -> None:
    client = _client(stoppable)
    try:
        assert await client.ping()  # connected (handshake done) before Redis stalls
        stoppable.freeze()
        started = time.monotonic()
        with pytest.raises(RedisTimeoutError) as caught:
            if blocked == "write":
                await client.set("k", b"x" * (64 << 20))
            else:
                await client.get("k")
        elapsed = time.monotonic() - started
        assert ("writing" if blocked == "write" else "reading") in str(caught.value)
        assert elapsed < TIMEOUT_S * 10
    finally:
        stoppable.thaw()
        await client.aclose()
    # The client recovers on a new connection once Redis runs again.
    client = _client(stoppable)
    try:
        assert await client.ping()
    finally:
        await client.aclose()
