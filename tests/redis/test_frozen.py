"""Producer clients keep their timeouts when Redis freezes (SIGSTOP: connected, silent)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from ig_outbound.harness.intents import make_intent
from ig_outbound.harness.processes import RedisServer
from ig_outbound.producers.enqueue import OutboundClient, SyncOutboundClient
from ig_outbound.producers.settings import ClientSettings

pytestmark = pytest.mark.slow

ACCOUNT = "17841400000000201"


@pytest.fixture
def frozen() -> Iterator[tuple[RedisServer, ClientSettings]]:
    """A Redis the clients have talked to once, then frozen."""
    with RedisServer() as server:
        settings = ClientSettings(
            redis_url=server.url, key_prefix="frozen", redis_socket_timeout_s=0.3
        )
        with SyncOutboundClient.connect(settings=settings) as client:
            client.register_accounts([ACCOUNT])
            client.enqueue(make_intent("before", ACCOUNT, "1254", {"kind": "sticker"}))
        server.freeze()
        try:
            yield server, settings
        finally:
            server.thaw()


def test_a_sync_client_raises_instead_of_hanging(
    frozen: tuple[RedisServer, ClientSettings],
) -> None:
    _, settings = frozen
    with SyncOutboundClient.connect(settings=settings) as client:
        with pytest.raises(redis.TimeoutError):
            client.enqueue(make_intent("during", ACCOUNT, "1254", {"kind": "sticker"}))
        with pytest.raises(redis.TimeoutError):
            client.outcome("before")
        with pytest.raises(TimeoutError, match=r"no outcome for 'before' within 0\.5 s"):
            client.wait("before", timeout=0.5)


async def test_an_async_client_raises_instead_of_hanging(
    frozen: tuple[RedisServer, ClientSettings],
) -> None:
    _, settings = frozen
    async with OutboundClient.connect(settings=settings) as client:
        with pytest.raises(redis.TimeoutError):
            await client.enqueue(make_intent("during", ACCOUNT, "1254", {"kind": "sticker"}))
        with pytest.raises(TimeoutError, match=r"no outcome for 'before' within 0\.2 s"):
            await client.wait("before", timeout=0.2)
        with pytest.raises(TimeoutError, match=r"no outcome for 'before'"):
            await client.wait_many(["before"], timeout=0.2)


def test_the_client_works_again_once_redis_does(
    frozen: tuple[RedisServer, ClientSettings],
) -> None:
    server, settings = frozen
    server.thaw()
    with SyncOutboundClient.connect(settings=settings) as client:
        assert client.state("before") == "queued"
