"""Sentinel with a real primary and a real sentinel: producers and a worker configured with
`redis_sentinels` and `redis_sentinel_master` find the primary by name; the URL carries only
the database (its host and port point nowhere, so using them would fail)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from redis.sentinel import MasterNotFoundError

from ig_outbound.harness.processes import RedisServer, SentinelServer
from ig_outbound.producers.connection import connect_async
from ig_outbound.producers.enqueue import OutboundClient, SyncOutboundClient
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.settings import ClientSettings
from ig_outbound.worker.settings import Settings
from ig_outbound.worker.worker_settings import create_arq_pool
from tests.redis.conftest import (
    ACCOUNT,
    Graph,
    fleet_on,
    register_account,
    running_worker,
    send_through,
    sticker,
)

pytestmark = pytest.mark.slow

MASTER = "igo-primary"
DB = 2
# Loopback port 1: nothing listens there, so a client that used the URL's host would fail.
URL = f"redis://127.0.0.1:1/{DB}"


@pytest.fixture(scope="module")
def primary() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="module")
def sentinel(primary: RedisServer) -> Iterator[SentinelServer]:
    with SentinelServer(primary_port=primary.port, master_name=MASTER) as server:
        yield server


def through(sentinel: SentinelServer) -> dict[str, object]:
    """The settings that send every client through `sentinel`."""
    return {"redis_sentinels": [sentinel.address], "redis_sentinel_master": MASTER}


def producer_settings(sentinel: SentinelServer, **changes: object) -> ClientSettings:
    return ClientSettings.model_validate(
        {"redis_url": URL, "key_prefix": "igo-sentinel", **through(sentinel), **changes}
    )


def state_on_primary(primary: RedisServer, settings: ClientSettings, key: str) -> object:
    """The intent's journal state, read straight from the primary's database `DB`."""
    r = redis.Redis(port=primary.port, db=DB, decode_responses=True)
    try:
        return r.hget(Keys(settings.key_prefix).record(key), "state")
    finally:
        r.close()


def sentinel_clients(client: aioredis.Redis) -> list[aioredis.Redis]:
    """The sentinels' own clients behind a client that `master_for` made."""
    pool: Any = client.connection_pool  # a SentinelConnectionPool (redis-py has no stubs)
    return list(pool.sentinel_manager.sentinels)


async def test_an_async_producer_finds_the_primary_by_name(
    primary: RedisServer, sentinel: SentinelServer
) -> None:
    settings = producer_settings(sentinel)
    intent = sticker("sentinel-async")
    async with OutboundClient.connect(settings=settings) as client:
        await client.register_accounts([ACCOUNT])
        assert (await client.enqueue(intent)).status == "queued"
    assert state_on_primary(primary, settings, intent["idempotency_key"]) == "queued"


async def test_closing_an_async_client_closes_its_sentinel_connections(
    sentinel: SentinelServer,
) -> None:
    client = connect_async(producer_settings(sentinel))
    await client.ping()
    sentinels = sentinel_clients(client)
    await client.aclose()
    still_open = [
        c for s in sentinels for c in s.connection_pool._available_connections if c.is_connected
    ]
    assert still_open == []


def test_a_sync_producer_finds_the_primary_by_name(
    primary: RedisServer, sentinel: SentinelServer
) -> None:
    settings = producer_settings(sentinel)
    register_account(settings)
    intent = sticker("sentinel-sync")
    with SyncOutboundClient.connect(settings=settings) as client:
        assert client.enqueue(intent).status == "queued"
        assert client.state(intent["idempotency_key"]) == "queued"
    assert state_on_primary(primary, settings, intent["idempotency_key"]) == "queued"


def test_a_master_name_the_sentinel_does_not_watch_is_refused_by_name(
    sentinel: SentinelServer,
) -> None:
    settings = producer_settings(sentinel, redis_sentinel_master="not-watched")
    with (
        SyncOutboundClient.connect(settings=settings) as client,
        pytest.raises(MasterNotFoundError, match="not-watched"),
    ):
        client.state("anything")


def test_a_worker_and_a_producer_send_end_to_end_through_the_sentinel(
    sentinel: SentinelServer, graph: Graph, tmp_path: Path
) -> None:
    settings = fleet_on(graph, URL, **through(sentinel))
    log = tmp_path / "worker.log"
    with running_worker(settings, log):
        assert send_through(settings, log) == "sent"


async def test_the_worker_pool_through_the_sentinel_keeps_its_retry_policy(
    sentinel: SentinelServer,
) -> None:
    """ARQ's own create_pool drops the retry policy, timeouts and TLS files through the
    sentinels; the pool `ig-outbound worker` hands ARQ keeps them (and reaches the primary)."""
    settings = Settings.model_validate({"redis_url": URL, **through(sentinel)})
    pool = create_arq_pool(settings)
    assert await pool.ping()
    kwargs = dict(pool.connection_pool.connection_kwargs)
    await pool.aclose()
    assert kwargs.get("retry") is not None
    assert kwargs.get("socket_connect_timeout") == settings.redis_connect_timeout_s
    assert kwargs.get("socket_timeout") == settings.redis_socket_timeout_s
