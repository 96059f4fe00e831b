"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from ig_outbound.harness.processes import RedisServer
from ig_outbound.producers.enqueue import OutboundClient
from ig_outbound.producers.settings import ClientSettings


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A private redis-server for tests that need only Redis (no worker, no emulator)."""
    with RedisServer() as server:
        yield server


@pytest.fixture
async def aredis(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_server.url)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture
async def client(stack_settings: ClientSettings) -> AsyncIterator[OutboundClient]:
    """A producer client of the package's stack: every package with a running stack
    provides `stack_settings` (its Redis URL and key prefix)."""
    async with OutboundClient.connect(stack_settings.redis_url, stack_settings) as c:
        yield c
