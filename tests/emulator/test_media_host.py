"""The emulator's media host: each format's real first bytes at any size, over https that
only the CA `run_emulator_process` made verifies, streamed; the lies real servers tell, on
request; and what it was asked (requests by tag, TLS server names)."""

from __future__ import annotations

import ssl
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from ig_outbound.emulator import (
    EmulatorConfig,
    EmulatorControl,
    MediaConfig,
    MediaServer,
    media_url,
    run_emulator_process,
)
from ig_outbound.emulator.media_files import CONTENT_TYPES, HEADERS
from ig_outbound.emulator.media_server import media_with_certificate
from ig_outbound.worker.media import sniff

# The formats of the seed's table and the fact sheet's file row.
FORMATS = ["png", "jpeg", "gif", "aac", "m4a", "wav", "mp4", "ogg", "avi", "mov", "webm", "pdf"]
MIB = 1024 * 1024


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_is_its_real_first_bytes_padded_to_the_size(
    media_emulator: EmulatorControl, media_https: httpx.Client, fmt: str
) -> None:
    response = media_https.get(media_emulator.media_url(fmt, 5000))
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPES[fmt]
    assert response.headers["content-length"] == "5000"
    assert response.content == HEADERS[fmt] + bytes(5000 - len(HEADERS[fmt]))
    # The worker's sniffer, written apart from these bytes, knows each for what it is.
    assert sniff(response.content[:4096]) == fmt


def test_the_certificate_verifies_with_the_ca_file_only(media_emulator: EmulatorControl) -> None:
    url = media_emulator.media_url("png", 100)
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(url)  # the system's CAs
    for name in ("127.0.0.1", "localhost"):
        trust = ssl.create_default_context(cafile=media_emulator.media_ca_file())
        response = httpx.get(media_emulator.media_url("png", 100, host=name), verify=trust)
        assert response.status_code == 200


def test_the_control_api_says_where_the_host_serves(
    media_emulator: EmulatorControl, media_emulator_url: str
) -> None:
    info = media_emulator.media()
    assert info["enabled"] is True
    assert info["base_url"].startswith("https://127.0.0.1:")
    assert info["base_url"] != media_emulator_url  # a port of its own
    assert Path(info["ca_file"]).is_file()
    assert set(FORMATS) <= set(info["formats"])
    assert {"type", "nolength", "head", "endless", "drip", "redirect", "garbage"} <= set(
        info["lies"]
    )


def test_without_media_the_control_api_says_so(control: EmulatorControl) -> None:
    assert control.media()["enabled"] is False
    with pytest.raises(RuntimeError, match="serves no media"):
        control.media_url("png", 100)


def test_a_range_is_honoured(media_emulator: EmulatorControl, media_https: httpx.Client) -> None:
    response = media_https.get(
        media_emulator.media_url("gif", 9000), headers={"range": "bytes=0-5"}
    )
    assert response.status_code == 206
    assert response.headers["content-range"] == "bytes 0-5/9000"
    assert response.content == b"GIF89a"


def test_lies_about_the_type_length_and_head(
    media_emulator: EmulatorControl, media_https: httpx.Client
) -> None:
    wrong = media_https.get(media_emulator.media_url("png", 100, type="text/plain"))
    assert (wrong.headers["content-type"], wrong.content[:4]) == ("text/plain", b"\x89PNG")
    untyped = media_https.get(media_emulator.media_url("png", 100, type=""))
    assert "content-type" not in untyped.headers
    lengthless = media_https.head(media_emulator.media_url("png", 100, nolength=True))
    assert "content-length" not in lengthless.headers
    no_head = media_emulator.media_url("png", 100, head=405)
    assert (media_https.head(no_head).status_code, media_https.get(no_head).status_code) == (
        405,
        200,
    )
    garbage = media_https.get(media_emulator.media_url("png", 100, garbage=True))
    assert sniff(garbage.content) is None
    assert garbage.headers["content-type"] == "image/png"


def test_an_endless_body_goes_on_past_its_size(
    media_emulator: EmulatorControl, media_https: httpx.Client
) -> None:
    url = media_emulator.media_url("png", 1, endless=True)
    read = 0
    with media_https.stream("GET", url) as response:
        assert "content-length" not in response.headers
        for chunk in response.iter_bytes():
            read += len(chunk)
            if read > MIB:
                break
    assert read > MIB


def test_a_drip_still_delivers_the_whole_file(
    media_emulator: EmulatorControl, media_https: httpx.Client
) -> None:
    response = media_https.get(media_emulator.media_url("gif", 20, drip=0.001))
    assert response.content == HEADERS["gif"] + bytes(20 - len(HEADERS["gif"]))


def test_redirects_lead_to_the_given_url_after_their_hops(
    media_emulator: EmulatorControl, media_https: httpx.Client
) -> None:
    final = media_emulator.media_url("jpeg", 700)
    start = media_emulator.media_url("png", 1, redirect=final, hops=2)
    first = media_https.get(start)
    assert first.status_code == 302
    followed = media_https.get(start, follow_redirects=True)
    assert (followed.status_code, followed.content[:2]) == (200, b"\xff\xd8")
    assert str(followed.url) == final
    assert len(media_emulator.media_requests(start)) == 3  # the first try, then two hops


@pytest.mark.parametrize(
    ("fmt", "lies", "status"),
    [("png", {"status": 503}, 503), ("png", {"status": 404}, 404), ("bmp", {}, 404)],
    ids=["forced 503", "forced 404", "a format the host does not have"],
)
def test_missing_files_and_forced_statuses(
    media_emulator: EmulatorControl,
    media_https: httpx.Client,
    fmt: str,
    lies: dict[str, Any],
    status: int,
) -> None:
    assert media_https.get(media_emulator.media_url(fmt, 10, **lies)).status_code == status
    assert media_https.get(media_emulator.media_base_url() + "/elsewhere").status_code == 404


def test_requests_are_kept_by_tag_with_their_headers_and_reset_clears_them(
    media_emulator: EmulatorControl, media_https: httpx.Client
) -> None:
    url = media_emulator.media_url("pdf", 3000, host="localhost")
    media_https.head(url)
    media_https.get(url, headers={"range": "bytes=0-99"})
    seen = media_emulator.media_requests(url)
    assert [(s["method"], s["headers"].get("range")) for s in seen] == [
        ("HEAD", None),
        ("GET", "bytes=0-99"),
    ]
    assert seen[0]["headers"]["host"].startswith("localhost:")
    assert media_emulator.media_requests(media_emulator.media_url("pdf", 3000)) == []
    media_emulator.reset()
    assert media_emulator.media_requests(url) == []


def test_media_urls_refuse_unknown_lies() -> None:
    with pytest.raises(ValueError, match="unknown media lies"):
        media_url("https://127.0.0.1:1", "png", 10, wrong_type="x")


def test_a_certificate_needs_its_key() -> None:
    with pytest.raises(ValidationError, match="both tls_cert_file and tls_key_file"):
        MediaConfig(enabled=True, tls_cert_file=Path("media.crt"))


def test_the_ca_run_emulator_process_made_is_gone_after_it() -> None:
    with (
        run_emulator_process(EmulatorConfig(media=MediaConfig(enabled=True))) as url,
        EmulatorControl(url) as control,
    ):
        ca_file = control.media_ca_file()
        assert ca_file.is_file()
    assert not ca_file.exists()


@pytest.fixture(scope="module")
def host_in_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MediaServer]:
    config = media_with_certificate(MediaConfig(enabled=True), tmp_path_factory.mktemp("media"))
    with MediaServer(config) as server:
        yield server


def test_a_large_file_is_streamed_never_held_whole(host_in_process: MediaServer) -> None:
    assert host_in_process.config.ca_file is not None
    trust = ssl.create_default_context(cafile=host_in_process.config.ca_file)
    size, read = 64 * MIB, 0
    tracemalloc.start()
    try:
        with httpx.stream("GET", host_in_process.url("mp4", size), verify=trust) as response:
            for chunk in response.iter_bytes():
                read += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert read == size
    # Server and client share this process: holding the file would take 64 MB.
    assert peak < 8 * MIB
