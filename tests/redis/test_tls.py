"""TLS to a real redis-server that listens with TLS only: producers and a worker reach it
with `rediss://` and the CA file, mutual TLS adds the client certificate, and a client that
cannot verify the server fails at once with a certificate error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from ig_outbound.harness.processes import RedisServer
from ig_outbound.harness.tls import TlsFiles
from ig_outbound.harness.wait import wait_until
from ig_outbound.producers.dlq import DeadLetters
from ig_outbound.producers.enqueue import OutboundClient, SyncOutboundClient
from ig_outbound.producers.settings import ClientSettings
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


@pytest.fixture(scope="module")
def tls_server(tls_files: TlsFiles) -> Iterator[RedisServer]:
    """Verifies itself to clients; a client certificate is welcome, not required."""
    with RedisServer(tls=tls_files, tls_auth_clients="optional") as server:
        yield server


@pytest.fixture(scope="module")
def mtls_server(tls_files: TlsFiles) -> Iterator[RedisServer]:
    """Mutual TLS: a client without a certificate of our CA is turned away."""
    with RedisServer(tls=tls_files, tls_auth_clients="yes") as server:
        yield server


def producer_settings(
    server: RedisServer, tls: TlsFiles | None, **changes: object
) -> ClientSettings:
    """A producer of `server` trusting our CA (`tls`), or only the system's (`None`)."""
    ca = {"redis_tls_ca_file": tls.ca_cert} if tls else {}
    return ClientSettings.model_validate(
        {"redis_url": server.url, "key_prefix": "igo-tls", **ca, **changes}
    )


def client_cert(tls: TlsFiles) -> dict[str, Path]:
    return {"redis_tls_cert_file": tls.client_cert, "redis_tls_key_file": tls.client_key}


def test_the_url_of_a_tls_server_is_rediss(tls_server: RedisServer) -> None:
    assert tls_server.url == f"rediss://127.0.0.1:{tls_server.port}/0"


async def test_an_async_producer_enqueues_over_tls_with_the_ca_file(
    tls_server: RedisServer, tls_files: TlsFiles
) -> None:
    intent = sticker("tls-async")
    async with OutboundClient.connect(settings=producer_settings(tls_server, tls_files)) as c:
        await c.register_accounts([ACCOUNT])
        assert (await c.enqueue(intent)).status == "queued"
        assert await c.state(intent["idempotency_key"]) == "queued"
        assert (await c.enqueue(intent)).status == "duplicate"


def test_a_sync_producer_enqueues_over_tls_with_the_ca_file(
    tls_server: RedisServer, tls_files: TlsFiles
) -> None:
    settings = producer_settings(tls_server, tls_files)
    register_account(settings)
    intent = sticker("tls-sync")
    with SyncOutboundClient.connect(settings=settings) as client:
        assert client.enqueue(intent).status == "queued"
        assert client.state(intent["idempotency_key"]) == "queued"
    with DeadLetters.connect(settings=settings) as dlq:
        assert dlq.list(key=intent["idempotency_key"]) == []


def test_the_server_name_is_checked_when_the_url_asks_for_it(
    tls_server: RedisServer, tls_files: TlsFiles
) -> None:
    url = tls_server.url + "?ssl_check_hostname=true"
    settings = producer_settings(tls_server, tls_files, redis_url=url)
    with SyncOutboundClient.connect(settings=settings) as client:
        assert client.state("never-enqueued") is None


def test_without_the_ca_file_the_sync_producer_fails_with_a_certificate_error(
    tls_server: RedisServer,
) -> None:
    settings = producer_settings(tls_server, None)
    with (
        SyncOutboundClient.connect(settings=settings) as client,
        pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        client.enqueue(sticker("tls-no-ca"))


async def test_without_the_ca_file_the_async_producer_fails_with_a_certificate_error(
    tls_server: RedisServer,
) -> None:
    async with OutboundClient.connect(settings=producer_settings(tls_server, None)) as client:
        with pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.enqueue(sticker("tls-no-ca"))


def test_mutual_tls_accepts_a_producer_with_the_client_certificate(
    mtls_server: RedisServer, tls_files: TlsFiles
) -> None:
    settings = producer_settings(mtls_server, tls_files, **client_cert(tls_files))
    register_account(settings)
    with SyncOutboundClient.connect(settings=settings) as client:
        assert client.enqueue(sticker("mtls")).status == "queued"


def test_mutual_tls_turns_away_a_producer_without_a_client_certificate(
    mtls_server: RedisServer, tls_files: TlsFiles
) -> None:
    settings = producer_settings(mtls_server, tls_files)
    # The client's side of the refusal depends on a race (the server's TLS 1.3 alert or a
    # closed socket); the server's log says why.
    with (
        SyncOutboundClient.connect(settings=settings) as client,
        pytest.raises(redis.ConnectionError),
    ):
        client.state("anything")
    wait_until(
        lambda: "peer did not return a certificate" in mtls_server.log_path.read_text(),
        10,
        "redis-server to log the refused client",
    )


@pytest.mark.parametrize("mutual", [False, True], ids=["server-verified", "mutual-tls"])
def test_a_worker_sends_end_to_end_over_tls(
    mutual: bool,
    request: pytest.FixtureRequest,
    tls_files: TlsFiles,
    graph: Graph,
    tmp_path: Path,
) -> None:
    server: RedisServer = request.getfixturevalue("mtls_server" if mutual else "tls_server")
    certs = client_cert(tls_files) if mutual else {}
    settings = fleet_on(graph, server.url, redis_tls_ca_file=tls_files.ca_cert, **certs)
    log = tmp_path / "worker.log"
    with running_worker(settings, log):
        assert send_through(settings, log) == "sent"
