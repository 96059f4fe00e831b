"""MediaProber against a real https server: HEAD first, a ranged GET when HEAD cannot say,
bounded reads and time, redirects followed by hand."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ig_outbound.emulator import MediaServer
from ig_outbound.harness.tls import TlsFiles
from ig_outbound.worker.media import MediaFacts, MediaProbeError, MediaProber
from tests.media.conftest import media_settings

READ_BYTES = 4096  # MediaSettings' default
RANGE = f"bytes=0-{READ_BYTES - 1}"
# A bound for tests that would hang if the probe's own deadline failed (never a timing claim).
GUARD_S = 30


def methods(server: MediaServer, url: str) -> list[tuple[str, str | None]]:
    return [(seen.method, seen.headers.get("range")) for seen in server.requests_for(url)]


async def probe_error(prober: MediaProber, url: str, kind: str | None = None) -> MediaProbeError:
    with pytest.raises(MediaProbeError) as caught:
        await asyncio.wait_for(prober.probe(url, kind), GUARD_S)
    return caught.value


@pytest.fixture
async def quick_prober(tls_files: TlsFiles) -> AsyncIterator[MediaProber]:
    """A prober with a one-second deadline, for servers that never finish."""
    async with MediaProber(media_settings(tls_files, timeout_s=1.0)) as p:
        yield p


async def test_a_head_with_type_and_length_is_enough(
    prober: MediaProber, media_server: MediaServer
) -> None:
    url = media_server.url("png", 5000)
    facts = await prober.probe(url, "image")
    assert facts == MediaFacts("image/png", None, 5000, url, sniffed=False)
    assert methods(media_server, url) == [("HEAD", None)]


@pytest.mark.parametrize("status", [405, 501, 403])
async def test_a_refused_head_falls_back_to_a_ranged_get(
    prober: MediaProber, media_server: MediaServer, status: int
) -> None:
    url = media_server.url("jpeg", 70_000, head=status)
    facts = await prober.probe(url, "image")
    assert facts == MediaFacts("image/jpeg", "jpeg", 70_000, url, sniffed=True)
    assert methods(media_server, url) == [("HEAD", None), ("GET", RANGE)]


async def test_a_missing_length_is_read_from_the_ranged_gets_content_range(
    prober: MediaProber, media_server: MediaServer
) -> None:
    url = media_server.url("mp4", 3_000_000, nolength=1)
    facts = await prober.probe(url, "video")
    assert (facts.size, facts.format) == (3_000_000, "mp4")
    assert methods(media_server, url) == [("HEAD", None), ("GET", RANGE)]


async def test_a_server_ignoring_range_gives_the_size_by_content_length(
    prober: MediaProber, media_server: MediaServer
) -> None:
    url = media_server.url("pdf", 900_000, head=405, norange=1)
    facts = await prober.probe(url, "file")
    assert (facts.size, facts.format) == (900_000, "pdf")


async def test_a_short_body_without_length_is_measured_when_it_ends_within_the_cap(
    prober: MediaProber, media_server: MediaServer
) -> None:
    url = media_server.url("gif", 1500, nolength=1, norange=1)
    facts = await prober.probe(url, "image")
    assert (facts.size, facts.format) == (1500, "gif")


async def test_a_size_no_answer_states_is_unknown(
    prober: MediaProber, media_server: MediaServer
) -> None:
    url = media_server.url("webm", 2_000_000, hidesize=1)
    facts = await prober.probe(url, "video")
    assert (facts.size, facts.format, facts.mime) == (None, "webm", "video/webm")


async def test_a_lying_content_type_is_corrected_by_the_first_bytes(
    prober: MediaProber, media_server: MediaServer
) -> None:
    url = media_server.url("png", 5000, type="text/plain")
    facts = await prober.probe(url, "image")
    assert (facts.mime, facts.format, facts.size) == ("text/plain", "png", 5000)
    assert methods(media_server, url) == [("HEAD", None), ("GET", RANGE)]


@pytest.mark.parametrize("mime", ["application/octet-stream", "binary/octet-stream", ""])
async def test_a_generic_or_missing_type_is_settled_by_the_first_bytes(
    prober: MediaProber, media_server: MediaServer, mime: str
) -> None:
    url = media_server.url("m4a", 5000, type=mime)
    facts = await prober.probe(url, "audio")
    assert (facts.mime, facts.format) == (mime or None, "m4a")


async def test_a_type_of_another_kind_is_read_when_the_kind_is_given_and_trusted_without(
    prober: MediaProber, media_server: MediaServer
) -> None:
    url = media_server.url("pdf", 5000, type="image/png")
    assert (await prober.probe(url)).sniffed is False  # some media type: taken at its word
    facts = await prober.probe(url, "file")  # not the file kind's type: the bytes decide
    assert (facts.mime, facts.format) == ("image/png", "pdf")


async def test_an_endless_body_is_read_only_up_to_read_bytes(
    prober: MediaProber, media_server: MediaServer
) -> None:
    url = media_server.url("png", 1, endless=1)
    tracemalloc.start()
    try:
        facts = await asyncio.wait_for(prober.probe(url, "image"), GUARD_S)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (facts.format, facts.size) == ("png", None)
    # The server streams as fast as loopback goes; keeping it would take hundreds of MB.
    assert peak < 8 * 1024 * 1024


async def test_a_gigantic_content_length_is_taken_without_reading_the_body(
    prober: MediaProber, media_server: MediaServer
) -> None:
    url = media_server.url("png", 50 * 1024**3, head=405, norange=1)
    tracemalloc.start()
    try:
        facts = await asyncio.wait_for(prober.probe(url, "image"), GUARD_S)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (facts.format, facts.size) == ("png", 50 * 1024**3)
    assert peak < 8 * 1024 * 1024


@pytest.mark.parametrize(
    "flags",
    [
        {"head": 405, "drip": 0.05},  # a byte every 50 ms: 4096 bytes would take 200 s
        {"stall": 1},  # accepts, never answers
        {"head": 405, "endless": 1, "drip": 0.05},
    ],
    ids=["slow drip", "stalled", "endless drip"],
)
async def test_a_server_that_never_finishes_is_unreachable_within_the_deadline(
    quick_prober: MediaProber, media_server: MediaServer, flags: dict[str, Any]
) -> None:
    error = await probe_error(quick_prober, media_server.url("png", 100_000, **flags))
    assert (error.code, error.message) == ("unreachable", "no complete answer within 1 s")


@pytest.mark.parametrize(
    ("status", "code"), [(503, "unreachable"), (500, "unreachable"), (429, "unreachable")]
)
async def test_server_errors_are_unreachable_for_now(
    prober: MediaProber, media_server: MediaServer, status: int, code: str
) -> None:
    error = await probe_error(prober, media_server.url("png", 100, status=status))
    assert (error.code, error.message) == (
        code,
        f"HTTP {status} from 127.0.0.1:{media_server.port}",
    )


@pytest.mark.parametrize("status", [404, 410, 403])
async def test_a_missing_file_is_unavailable(
    prober: MediaProber, media_server: MediaServer, status: int
) -> None:
    error = await probe_error(prober, media_server.url("png", 100, status=status))
    assert (error.code, error.message) == (
        "unavailable",
        f"HTTP {status} from 127.0.0.1:{media_server.port}",
    )


async def test_a_certificate_the_probe_cannot_verify_is_a_bad_certificate(
    tls_files: TlsFiles, media_server: MediaServer
) -> None:
    async with MediaProber(media_settings(tls_files, ca_file=None)) as untrusting:
        error = await probe_error(untrusting, media_server.url("png", 100))
    assert error.code == "bad_certificate"
    assert "certificate does not verify" in error.message


async def test_a_host_name_is_sent_as_host_and_tls_server_name_while_its_address_is_dialled(
    tls_files: TlsFiles, media_server: MediaServer
) -> None:
    async with MediaProber(media_settings(tls_files, allow_hosts=["LocalHost"])) as p:
        url = media_server.url("png", 100, host="localhost")
        facts = await p.probe(url, "image")
    assert facts.final_url == url
    [seen] = media_server.requests_for(url)
    assert seen.headers["host"] == f"localhost:{media_server.port}"
    assert "localhost" in media_server.sni


async def test_redirects_are_followed_up_to_the_limit(
    prober: MediaProber, media_server: MediaServer
) -> None:
    final = media_server.url("gif", 2000)
    start = media_server.url("gif", 1, redirect=final, hops=3)
    facts = await prober.probe(start, "image")
    assert (facts.final_url, facts.size) == (final, 2000)
    assert len(media_server.requests_for(start)) == 3
    assert methods(media_server, final) == [("HEAD", None)]


async def test_one_redirect_over_the_limit_is_too_many(
    prober: MediaProber, media_server: MediaServer
) -> None:
    final = media_server.url("gif", 2000)
    start = media_server.url("gif", 1, redirect=final, hops=4)
    error = await probe_error(prober, start)
    assert (error.code, error.message) == ("too_many_redirects", "more than 3 redirects")
    assert len(media_server.requests_for(start)) == 4
    assert media_server.requests_for(final) == []


async def test_with_max_redirects_zero_no_redirect_is_followed(
    tls_files: TlsFiles, media_server: MediaServer
) -> None:
    final = media_server.url("gif", 2000)
    async with MediaProber(media_settings(tls_files, max_redirects=0)) as p:
        error = await probe_error(p, media_server.url("gif", 1, redirect=final))
    assert error.code == "too_many_redirects"
    assert media_server.requests_for(final) == []


async def test_redirects_the_get_gets_are_followed_too(
    prober: MediaProber, media_server: MediaServer
) -> None:
    final = media_server.url("pdf", 3000, head=405)
    start = media_server.url("pdf", 1, redirect=final, type="")
    facts = await prober.probe(start, "file")
    assert (facts.final_url, facts.format, facts.size) == (final, "pdf", 3000)


async def test_a_redirect_to_plain_http_is_refused(
    prober: MediaProber, media_server: MediaServer
) -> None:
    target = f"http://127.0.0.1:{media_server.port}/media/png/100"
    error = await probe_error(prober, media_server.url("png", 1, redirect=target))
    assert (error.code, error.message) == ("not_https", "http scheme: only https is probed")
