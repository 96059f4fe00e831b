"""The send job applies the media policy before anything else is spent: a file over the
seed's limit or of the wrong type ends `rejected` with the limit named and no Graph call; an
unreachable server is retried like a transient failure, then `failed`; attachment ids and
kinds without media skip the probe. In process: the real job, real Redis, a real https media
server, Graph on a MockTransport."""

from __future__ import annotations

from typing import Any

import pytest
from arq import Retry

from ig_outbound.emulator import MediaServer
from ig_outbound.harness.tls import TlsFiles
from tests.media.conftest import media_settings
from tests.worker.conftest import JobBench, MakeBench, make_bench, ok

__all__ = ["make_bench"]  # the worker package's fixture, used here too

MB = 1024 * 1024


@pytest.fixture
async def probing(make_bench: MakeBench, tls_files: TlsFiles) -> JobBench:
    return await make_bench(media=media_settings(tls_files), retry={"max_attempts": 2})


async def _media_intent(bench: JobBench, key: str, content: dict[str, Any]) -> None:
    await bench.enqueue(key, content=content)


async def test_an_image_at_its_limit_is_sent_and_one_byte_over_is_refused_unsent(
    probing: JobBench, media_server: MediaServer
) -> None:
    await _media_intent(probing, "at", {"kind": "image", "url": media_server.url("png", 8 * MB)})
    probing.graph.script(ok())
    assert await probing.run("at") == "sent"
    over = media_server.url("png", 8 * MB + 1)
    await _media_intent(probing, "over", {"kind": "image", "url": over})
    assert await probing.run("over") == "rejected"
    outcome = await probing.client.outcome("over")
    assert outcome is not None and outcome.reason == "media_too_large: 8.1 MB > 8 MB for image"
    assert len(probing.graph.requests) == 1  # only the first


async def test_a_wrong_type_is_refused_with_the_allowed_ones_named(
    probing: JobBench, media_server: MediaServer
) -> None:
    url = media_server.url("pdf", 1000)
    await _media_intent(probing, "pdf-as-audio", {"kind": "audio", "url": url})
    assert await probing.run("pdf-as-audio") == "rejected"
    outcome = await probing.client.outcome("pdf-as-audio")
    assert outcome is not None and outcome.reason is not None
    assert outcome.reason.startswith("media_wrong_type:")
    assert "aac, m4a, wav, mp4" in outcome.reason


async def test_every_image_of_a_multi_image_message_is_checked(
    probing: JobBench, media_server: MediaServer
) -> None:
    images = [{"url": media_server.url("png", 1000)}, {"url": media_server.url("gif", 9 * MB)}]
    await _media_intent(probing, "multi", {"kind": "images", "images": images})
    assert await probing.run("multi") == "rejected"


async def test_an_unreachable_server_is_retried_then_fails(probing: JobBench) -> None:
    url = "https://127.0.0.1:9/never.png"  # allowed host, nothing listens
    await _media_intent(probing, "down", {"kind": "image", "url": url})
    with pytest.raises(Retry):
        await probing.run("down")
    assert await probing.client.outcome("down") is None
    await probing.redis.delete(*await probing.redis.keys(f"{probing.keys.prefix}:media:*"))
    assert await probing.run("down", job_try=2) == "failed"
    outcome = await probing.client.outcome("down")
    assert outcome is not None and (outcome.reason or "").startswith("media_unreachable")
    assert probing.graph.requests == []


async def test_a_private_address_is_refused_without_a_connection(probing: JobBench) -> None:
    await _media_intent(probing, "ssrf", {"kind": "image", "url": "https://169.254.169.254/a.png"})
    assert await probing.run("ssrf") == "rejected"
    outcome = await probing.client.outcome("ssrf")
    assert outcome is not None and (outcome.reason or "").startswith("media_forbidden_address")


async def test_attachment_ids_are_not_probed(probing: JobBench) -> None:
    await _media_intent(probing, "reuse", {"kind": "image", "attachment_id": "1857777774821032"})
    probing.graph.script(ok())
    assert await probing.run("reuse") == "sent"
