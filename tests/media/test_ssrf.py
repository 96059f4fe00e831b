"""No URL reaches inward: every forbidden address is refused before any connection (Python's
audit events see every `connect()` of the process), directly or by a redirect."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from ig_outbound.emulator import MediaServer
from ig_outbound.harness.tls import TlsFiles
from ig_outbound.worker.media import MediaProbeError, MediaProber
from tests.media.conftest import media_settings
from tests.media.connections import connection_attempts

GUARD_S = 30

# URL (`{port}`: the test server's, so a loopback spelling that slipped through would reach
# it) -> the refusal's message.
DIRECT = {
    "https://10.0.0.1/a.png": "10.0.0.1 (private)",
    "https://172.16.0.1/a.png": "172.16.0.1 (private)",
    "https://192.168.0.10/a.png": "192.168.0.10 (private)",
    "https://127.0.0.1:{port}/media/png/100": "127.0.0.1 (loopback)",
    "https://127.0.0.2:{port}/media/png/100": "127.0.0.2 (loopback)",
    "https://169.254.10.10/a.png": "169.254.10.10 (link-local)",
    "https://169.254.169.254/latest/meta-data/": "169.254.169.254 (cloud metadata)",
    "https://100.100.100.200/latest/meta-data/": "100.100.100.200 (cloud metadata)",
    "https://100.64.0.1/a.png": "100.64.0.1 (shared address space (CGNAT))",
    "https://224.0.0.1/a.png": "224.0.0.1 (multicast)",
    "https://0.0.0.0:{port}/media/png/100": "0.0.0.0 (unspecified)",
    "https://[::1]:{port}/media/png/100": "::1 (loopback)",
    "https://[::]:{port}/media/png/100": ":: (unspecified)",
    "https://[fd00::1]/a.png": "fd00::1 (private)",
    "https://[fd00:ec2::254]/latest/meta-data/": "fd00:ec2::254 (cloud metadata)",
    "https://[fe80::1]/a.png": "fe80::1 (link-local)",
    "https://[ff02::1]/a.png": "ff02::1 (multicast)",
    "https://[::ffff:127.0.0.1]:{port}/media/png/100": (
        "::ffff:127.0.0.1 (loopback: carries 127.0.0.1)"
    ),
    "https://[::ffff:169.254.169.254]/x": (
        "::ffff:169.254.169.254 (cloud metadata: carries 169.254.169.254)"
    ),
    "https://[64:ff9b::7f00:1]:{port}/media/png/100": (
        "64:ff9b::7f00:1 (loopback: carries 127.0.0.1)"
    ),
    "https://[2002:7f00:1::]:{port}/media/png/100": "2002:7f00:1:: (loopback: carries 127.0.0.1)",
    "https://2130706433:{port}/media/png/100": "2130706433 resolves to 127.0.0.1 (loopback)",
    "https://0177.0.0.1:{port}/media/png/100": "0177.0.0.1 resolves to 127.0.0.1 (loopback)",
    "https://0x7f.0.0.1:{port}/media/png/100": "0x7f.0.0.1 resolves to 127.0.0.1 (loopback)",
    "https://0x7f000001:{port}/media/png/100": "0x7f000001 resolves to 127.0.0.1 (loopback)",
    "https://127.1:{port}/media/png/100": "127.1 resolves to 127.0.0.1 (loopback)",
    "https://017700000001:{port}/media/png/100": "017700000001 resolves to 127.0.0.1 (loopback)",
    "https://localhost:{port}/media/png/100": "localhost resolves to 127.0.0.1 (loopback)",
    "https://LocalHost:{port}/media/png/100": "localhost resolves to 127.0.0.1 (loopback)",
}


@pytest.fixture
async def strict_prober(tls_files: TlsFiles) -> AsyncIterator[MediaProber]:
    """The production rule: nothing allowed (the test CA trusted, so only the address can
    stop a request)."""
    async with MediaProber(media_settings(tls_files, allow_hosts=[])) as p:
        yield p


@pytest.mark.parametrize(("template", "message"), DIRECT.items(), ids=DIRECT.keys())
async def test_every_forbidden_address_is_refused_without_a_connection(
    strict_prober: MediaProber, media_server: MediaServer, template: str, message: str
) -> None:
    url = f"{template.format(port=media_server.port)}?tag=ssrf-{id(template)}"
    with connection_attempts() as attempts, pytest.raises(MediaProbeError) as caught:
        await asyncio.wait_for(strict_prober.probe(url, "image"), GUARD_S)
    assert (caught.value.code, caught.value.message) == ("forbidden_address", message)
    assert attempts == []
    assert media_server.requests_for(url) == []


async def test_allow_hosts_lets_the_test_server_through_and_nothing_else(
    tls_files: TlsFiles, media_server: MediaServer
) -> None:
    url = media_server.url("png", 100)
    async with MediaProber(media_settings(tls_files, allow_hosts=["127.0.0.1/32"])) as allowed:
        assert (await allowed.probe(url, "image")).size == 100
        with pytest.raises(MediaProbeError, match=r"127\.0\.0\.2 \(loopback\)"):
            await allowed.probe(f"https://127.0.0.2:{media_server.port}/media/png/100")
    assert len(media_server.requests_for(url)) == 1


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("https://169.254.169.254/latest/meta-data/", "169.254.169.254 (cloud metadata)"),
        ("https://[fd00:ec2::254]/latest/meta-data/", "fd00:ec2::254 (cloud metadata)"),
        ("https://10.1.2.3/internal", "10.1.2.3 (private)"),
    ],
)
async def test_a_redirect_inward_is_refused_before_connecting(
    prober: MediaProber, media_server: MediaServer, target: str, message: str
) -> None:
    url = media_server.url("png", 1, redirect=target)
    with connection_attempts() as attempts, pytest.raises(MediaProbeError) as caught:
        await prober.probe(url, "image")
    assert (caught.value.code, caught.value.message) == ("forbidden_address", message)
    assert attempts == [("127.0.0.1", media_server.port)]  # the first hop only


async def test_a_redirect_to_localhost_is_refused_when_only_the_first_host_is_allowed(
    tls_files: TlsFiles, media_server: MediaServer, media_server_v6: MediaServer
) -> None:
    target = media_server.url("png", 100, host="localhost")  # served on 127.0.0.1
    url = media_server_v6.url("png", 1, redirect=target)  # served on ::1, which is allowed
    async with MediaProber(media_settings(tls_files, allow_hosts=["::1/128"])) as p:
        with pytest.raises(MediaProbeError) as caught:
            await p.probe(url, "image")
    assert (caught.value.code, caught.value.message) == (
        "forbidden_address",
        "localhost resolves to 127.0.0.1 (loopback)",
    )
    assert len(media_server_v6.requests_for(url)) == 1
    assert media_server.requests_for(target) == []


async def test_a_redirect_to_a_loopback_literal_is_refused_when_only_a_name_is_allowed(
    tls_files: TlsFiles, media_server: MediaServer
) -> None:
    target = media_server.url("png", 100)  # 127.0.0.1: the same server, by address
    url = media_server.url("png", 1, host="localhost", redirect=target)
    async with MediaProber(media_settings(tls_files, allow_hosts=["localhost"])) as p:
        with pytest.raises(MediaProbeError, match=r"^127\.0\.0\.1 \(loopback\)$"):
            await p.probe(url, "image")
    assert media_server.requests_for(target) == []


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://127.0.0.1/a.png", "not_https"),
        ("ftp://example.test/a.png", "not_https"),
        ("file:///etc/passwd", "not_https"),
        ("gopher://127.0.0.1:6379/_PING", "not_https"),
        ("//example.test/a.png", "not_https"),
        ("https:///a.png", "invalid_url"),
        ("https://exa mple.test/a.png", "invalid_url"),
        ("https://example.test:99999/a.png", "invalid_url"),
        ("https://example.test:0/a.png", "invalid_url"),
        ("https://[::1/a.png", "invalid_url"),
    ],
)
async def test_urls_that_are_not_https_or_not_urls_are_refused_without_a_connection(
    strict_prober: MediaProber, url: str, code: str
) -> None:
    with connection_attempts() as attempts, pytest.raises(MediaProbeError) as caught:
        await strict_prober.probe(url)
    assert caught.value.code == code
    assert attempts == []
