"""The media tests' servers and probers: the emulator's media host (a real https server, on
a thread of this process) with a throwaway CA, trusted through `ca_file` and let through
`allow_hosts` (it listens on loopback, which nothing else may reach)."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from ig_outbound.emulator import MediaConfig, MediaServer
from ig_outbound.harness.tls import TlsFiles, make_tls_files
from ig_outbound.producers.keys import Keys
from ig_outbound.worker.media import MediaPolicy, MediaProber
from ig_outbound.worker.settings import MediaSettings

# Short, so the tests that run into it (stalls, drips) stay short; loopback answers in ms.
TIMEOUT_S = 2.0


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("media-tls"))


def media_config(tls_files: TlsFiles, host: str = "127.0.0.1") -> MediaConfig:
    """The media host on `host`, serving the certificate the test CA signed."""
    return MediaConfig(
        enabled=True,
        host=host,
        tls_cert_file=tls_files.server_cert,
        tls_key_file=tls_files.server_key,
        ca_file=tls_files.ca_cert,
    )


@pytest.fixture(scope="session")
def media_server(tls_files: TlsFiles) -> Iterator[MediaServer]:
    with MediaServer(media_config(tls_files)) as server:
        yield server


@pytest.fixture(scope="session")
def media_server_v6(tls_files: TlsFiles) -> Iterator[MediaServer]:
    """The same server on ::1: reachable by an allowed address other than 127.0.0.1."""
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    with MediaServer(media_config(tls_files, host="::1")) as server:
        yield server


def media_settings(tls_files: TlsFiles, **overrides: Any) -> MediaSettings:
    """Settings that trust the test CA and let the probe reach 127.0.0.1 only."""
    values: dict[str, Any] = {
        "timeout_s": TIMEOUT_S,
        "ca_file": tls_files.ca_cert,
        "allow_hosts": ["127.0.0.1/32"],
    }
    return MediaSettings(**{**values, **overrides})


@pytest.fixture
async def prober(tls_files: TlsFiles) -> AsyncIterator[MediaProber]:
    async with MediaProber(media_settings(tls_files)) as p:
        yield p


@pytest.fixture
def keys() -> Keys:
    return Keys(f"media-{uuid.uuid4().hex[:8]}")


@pytest.fixture
async def policy(
    aredis: aioredis.Redis, keys: Keys, tls_files: TlsFiles
) -> AsyncIterator[MediaPolicy]:
    async with MediaPolicy(aredis, keys, media_settings(tls_files)) as p:
        yield p
