"""MediaPolicy: the verdict an intent's media URLs get, with the reason text an outcome
carries, and the fleet's cache in a real Redis."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
import redis.asyncio as aioredis

from ig_outbound.emulator import MediaServer
from ig_outbound.harness.tls import TlsFiles
from ig_outbound.producers.keys import Keys
from ig_outbound.worker.media import MediaPolicy, MediaVerdict, media_cache_key
from tests.media.conftest import media_settings
from tests.media.seed import ALLOWED, MEDIA_TABLE

MIB = 1024 * 1024
OK = MediaVerdict("ok")


def rejected(reason: str, url: str) -> MediaVerdict:
    return MediaVerdict("rejected", reason, url)


@pytest.mark.parametrize(("kind", "fmt"), ALLOWED)
async def test_each_allowed_format_passes_at_its_kinds_limit(
    policy: MediaPolicy, media_server: MediaServer, kind: str, fmt: str
) -> None:
    limit = MEDIA_TABLE[kind][1] * MIB
    assert await policy.check(kind, [media_server.url(fmt, limit)]) == OK


@pytest.mark.parametrize(("kind", "fmt"), ALLOWED)
async def test_one_byte_over_the_limit_is_too_large_by_name(
    policy: MediaPolicy, media_server: MediaServer, kind: str, fmt: str
) -> None:
    mb = MEDIA_TABLE[kind][1]
    url = media_server.url(fmt, mb * MIB + 1)
    reason = f"media_too_large: {mb}.1 MB > {mb} MB for {kind}"
    assert await policy.check(kind, [url]) == rejected(reason, url)


async def test_the_reason_gives_the_size_in_megabytes(
    policy: MediaPolicy, media_server: MediaServer
) -> None:
    url = media_server.url("jpeg", int(9.1 * MIB))
    verdict = await policy.check("image", [url])
    assert verdict.reason == "media_too_large: 9.1 MB > 8 MB for image"


WRONG = [
    ("image", "html", {}, "text/html"),
    ("image", "webp", {}, "image/webp"),
    ("image", "pdf", {}, "application/pdf"),
    ("image", "mp4", {}, "video/mp4"),
    ("audio", "mp3", {}, "audio/mpeg"),
    ("audio", "ogg", {}, "video/ogg"),
    ("audio", "mov", {}, "video/quicktime"),
    ("video", "mkv", {}, "video/x-matroska"),
    ("video", "m4a", {}, "audio/x-m4a"),
    ("video", "gif", {}, "image/gif"),
    ("file", "zip", {}, "application/zip"),
    ("file", "png", {}, "image/png"),
    # What the bytes show wins over a header naming an allowed type.
    ("image", "pdf", {"type": "image/png", "head": 405}, "pdf (sent as image/png)"),
    ("audio", "mov", {"type": "audio/mp4", "head": 405}, "mov (sent as audio/mp4)"),
    # No usable header and no signature: nothing says it is what the kind needs.
    ("image", "png", {"type": "", "garbage": 1}, "no content type"),
    (
        "image",
        "png",
        {"type": "application/octet-stream", "garbage": 1},
        "application/octet-stream",
    ),
    ("file", "pdf", {"type": "text/plain", "garbage": 1}, "text/plain"),
]
EXPECTED = {
    "image": "image (png, jpeg, gif)",
    "audio": "audio (aac, m4a, wav, mp4)",
    "video": "video (mp4, ogg, avi, mov, webm)",
    "file": "file (pdf)",
}


@pytest.mark.parametrize(("kind", "fmt", "flags", "served"), WRONG)
async def test_a_wrong_type_is_rejected_naming_what_was_served_and_what_is_allowed(
    policy: MediaPolicy,
    media_server: MediaServer,
    kind: str,
    fmt: str,
    flags: dict[str, Any],
    served: str,
) -> None:
    url = media_server.url(fmt, 1000, **flags)
    reason = f"media_wrong_type: {served} for {EXPECTED[kind]}"
    assert await policy.check(kind, [url]) == rejected(reason, url)


@pytest.mark.parametrize(
    ("kind", "fmt", "mime"),
    [
        ("image", "png", "text/plain"),
        ("image", "jpeg", "text/html"),
        ("video", "mp4", "application/octet-stream"),
        ("video", "webm", "binary/octet-stream"),
        ("audio", "wav", ""),
        ("file", "pdf", "application/x-download"),
    ],
)
async def test_a_valid_file_behind_a_lying_content_type_passes_by_its_first_bytes(
    policy: MediaPolicy, media_server: MediaServer, kind: str, fmt: str, mime: str
) -> None:
    assert await policy.check(kind, [media_server.url(fmt, 1000, type=mime)]) == OK


async def test_an_allowed_header_type_passes_when_the_bytes_show_no_known_format(
    policy: MediaPolicy, media_server: MediaServer
) -> None:
    url = media_server.url("aac", 1000, nolength=1, garbage=1)
    assert await policy.check("audio", [url]) == OK


async def test_an_unknown_size_passes_and_graph_decides(
    policy: MediaPolicy, media_server: MediaServer
) -> None:
    url = media_server.url("png", 100 * MIB, hidesize=1)
    assert await policy.check("image", [url]) == OK


async def test_a_gigantic_content_length_is_rejected_from_the_head_alone(
    policy: MediaPolicy, media_server: MediaServer
) -> None:
    url = media_server.url("png", 10_000_000_000)
    reason = "media_too_large: 9536.8 MB > 8 MB for image"
    assert await policy.check("image", [url]) == rejected(reason, url)
    assert [seen.method for seen in media_server.requests_for(url)] == ["HEAD"]


async def test_an_unreachable_url_is_unreachable_not_rejected(
    policy: MediaPolicy, media_server: MediaServer
) -> None:
    url = media_server.url("png", 100, status=503)
    reason = f"media_unreachable: HTTP 503 from 127.0.0.1:{media_server.port}"
    assert await policy.check("image", [url]) == MediaVerdict("unreachable", reason, url)


async def test_probe_errors_become_rejections_named_after_their_code(
    policy: MediaPolicy, media_server: MediaServer
) -> None:
    missing = media_server.url("png", 100, status=404)
    cases = {
        "https://10.0.0.1/a.png": "media_forbidden_address: 10.0.0.1 (private)",
        "http://cdn.example.test/a.png": "media_not_https: http scheme: only https is probed",
        missing: f"media_unavailable: HTTP 404 from 127.0.0.1:{media_server.port}",
    }
    for url, reason in cases.items():
        assert await policy.check("image", [url]) == rejected(reason, url)


async def test_an_images_intent_names_its_first_bad_url_and_probes_each_url_once(
    policy: MediaPolicy, media_server: MediaServer
) -> None:
    urls = [media_server.url("png", 1000 + i) for i in range(10)]
    urls[6] = media_server.url("gif", 9 * MIB)
    urls[8] = media_server.url("html", 100)
    verdict = await policy.check("images", [*urls, urls[0]])
    assert verdict == rejected("media_too_large: 9.0 MB > 8 MB for image", urls[6])
    heads = [[s.method for s in media_server.requests_for(url)].count("HEAD") for url in urls]
    assert heads == [1] * 10  # the repeated URL was probed once


async def test_a_rejection_outranks_an_unreachable_url(
    policy: MediaPolicy, media_server: MediaServer
) -> None:
    down = media_server.url("png", 100, status=503)
    large = media_server.url("png", 9 * MIB)
    verdict = await policy.check("images", [down, large])
    assert (verdict.status, verdict.url) == ("rejected", large)


async def test_a_second_check_of_a_url_is_answered_by_the_cache(
    policy: MediaPolicy, media_server: MediaServer, aredis: aioredis.Redis, keys: Keys
) -> None:
    url = media_server.url("mp4", 2000, head=405)
    assert await policy.check("video", [url]) == OK
    probed = len(media_server.requests_for(url))
    assert await policy.check("video", [url]) == OK
    assert len(media_server.requests_for(url)) == probed
    key = f"{keys.prefix}:media:{hashlib.sha256(url.encode()).hexdigest()}"
    assert key == media_cache_key(keys, url)
    assert 0 < await aredis.ttl(key) <= 3600
    assert json.loads(await aredis.get(key))["facts"]["format"] == "mp4"


async def test_the_cache_is_shared_by_every_policy_on_the_same_redis(
    policy: MediaPolicy,
    media_server: MediaServer,
    aredis: aioredis.Redis,
    keys: Keys,
    tls_files: TlsFiles,
) -> None:
    url = media_server.url("png", 9 * MIB)
    first = await policy.check("image", [url])
    async with MediaPolicy(aredis, keys, media_settings(tls_files)) as other_worker:
        assert await other_worker.check("image", [url]) == first
    assert len(media_server.requests_for(url)) == 1


async def test_a_failure_is_cached_for_thirty_seconds_only(
    policy: MediaPolicy, media_server: MediaServer, aredis: aioredis.Redis, keys: Keys
) -> None:
    url = media_server.url("png", 100, status=500)
    first = await policy.check("image", [url])
    assert first.status == "unreachable"
    probed = len(media_server.requests_for(url))
    assert await policy.check("image", [url]) == first
    assert len(media_server.requests_for(url)) == probed
    assert 0 < await aredis.ttl(media_cache_key(keys, url)) <= 30


async def test_a_cache_entry_that_does_not_read_back_is_probed_again(
    policy: MediaPolicy, media_server: MediaServer, aredis: aioredis.Redis, keys: Keys
) -> None:
    url = media_server.url("png", 100)
    await aredis.set(media_cache_key(keys, url), b"\xffnot json")
    assert await policy.check("image", [url]) == OK
    assert len(media_server.requests_for(url)) == 1


async def test_facts_cached_from_a_head_are_read_again_for_a_kind_the_header_does_not_fit(
    policy: MediaPolicy, media_server: MediaServer
) -> None:
    # A PDF served as image/png: a HEAD naming an allowed type is taken at its word (Graph
    # decides about such a lie); the file kind, which that type does not fit, reads the bytes.
    url = media_server.url("pdf", 1000, type="image/png")
    assert await policy.check("image", [url]) == OK
    assert await policy.check("file", [url]) == OK
    assert [seen.method for seen in media_server.requests_for(url)] == ["HEAD", "HEAD", "GET"]


async def test_with_probing_off_every_url_passes_unprobed(
    aredis: aioredis.Redis, keys: Keys, tls_files: TlsFiles, media_server: MediaServer
) -> None:
    url = media_server.url("html", 100)
    async with MediaPolicy(aredis, keys, media_settings(tls_files, probe=False)) as off:
        assert await off.check("image", [url, "https://10.0.0.1/x.png"]) == OK
    assert media_server.requests_for(url) == []


async def test_with_cache_ttl_zero_nothing_is_cached(
    aredis: aioredis.Redis, keys: Keys, tls_files: TlsFiles, media_server: MediaServer
) -> None:
    url = media_server.url("png", 100)
    async with MediaPolicy(aredis, keys, media_settings(tls_files, cache_ttl_s=0)) as p:
        assert await p.check("image", [url]) == OK
        assert await p.check("image", [url]) == OK
    assert len(media_server.requests_for(url)) == 2
    assert await aredis.exists(media_cache_key(keys, url)) == 0
