"""Graph refuses media on the emulator's own media host as Meta does (fact sheet §4, §5): over
the limit 36000/2207004 (images) or 100/2018109, the wrong format 100/2018047, a file it cannot
fetch 100/2018008; a refused send is not delivered. URLs elsewhere pass as before."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ig_outbound.emulator import EmulatorControl, MediaHost, media_url
from ig_outbound.emulator.media_checks import graph_refusal
from tests.emulator.conftest import USER_1, error_of, post

MIB = 1024 * 1024
LIMIT = {"image": 8 * MIB, "audio": 25 * MIB, "video": 25 * MIB, "file": 25 * MIB}
ALLOWED = {
    "image": ["png", "jpeg", "gif"],
    "audio": ["aac", "m4a", "wav", "mp4"],
    "video": ["mp4", "ogg", "avi", "mov", "webm"],
    "file": ["pdf"],
}
PAIRS = [(kind, fmt) for kind, formats in ALLOWED.items() for fmt in formats]
TOO_LARGE = {"image": (36000, 2207004)} | {k: (100, 2018109) for k in ("audio", "video", "file")}
FETCH_FAILED, WRONG_TYPE = (100, 2018008), (100, 2018047)
BASE = "https://127.0.0.1:4443"


@pytest.fixture(scope="module")
def host() -> MediaHost:
    """Graph's view of a media host on port 4443 (nothing needs to listen: Graph reads the
    URL)."""
    media = MediaHost()
    media.attach("127.0.0.1", 4443, None)
    return media


def refusal(host: MediaHost, kind: str, url: str) -> tuple[int, int | None] | None:
    error = graph_refusal(kind, url, host)
    return None if error is None else (error.code, error.subcode)


@pytest.mark.parametrize(("kind", "fmt"), PAIRS)
def test_each_allowed_format_passes_at_its_limit_and_not_one_byte_over(
    host: MediaHost, kind: str, fmt: str
) -> None:
    assert refusal(host, kind, media_url(BASE, fmt, LIMIT[kind])) is None
    assert refusal(host, kind, media_url(BASE, fmt, LIMIT[kind] + 1)) == TOO_LARGE[kind]


CASES: list[tuple[str, str, dict[str, Any], tuple[int, int | None] | None]] = [
    # The wrong format for the attachment's type: the bytes decide.
    ("audio", "pdf", {}, WRONG_TYPE),
    ("file", "png", {}, WRONG_TYPE),
    ("image", "webp", {}, WRONG_TYPE),
    ("video", "mkv", {}, WRONG_TYPE),
    ("image", "png", {"garbage": True}, WRONG_TYPE),
    # A lying header does not matter: Graph reads the file.
    ("image", "png", {"type": "text/plain"}, None),
    ("video", "mp4", {"type": "", "nolength": True, "head": 405, "hidesize": True}, None),
    # Files Graph cannot fetch.
    ("image", "png", {"status": 404}, FETCH_FAILED),
    ("image", "png", {"status": 503}, FETCH_FAILED),
    ("image", "png", {"stall": True}, FETCH_FAILED),
    ("image", "bmp", {}, FETCH_FAILED),
    ("image", "png", {"drip": 1}, FETCH_FAILED),  # 1000 s for the file
    ("image", "png", {"endless": True, "drip": 0.001}, FETCH_FAILED),
    # A slow server that still ends in time.
    ("image", "png", {"drip": 0.01}, None),
    # A body that never ends is over every limit.
    ("video", "mp4", {"endless": True}, TOO_LARGE["video"]),
    # The size is met before the type: Graph stops downloading at the limit.
    ("image", "pdf", {"size": 9 * MIB}, TOO_LARGE["image"]),
]


@pytest.mark.parametrize(("kind", "fmt", "lies", "expected"), CASES)
def test_what_graph_finds_at_the_url(
    host: MediaHost,
    kind: str,
    fmt: str,
    lies: dict[str, Any],
    expected: tuple[int, int | None] | None,
) -> None:
    lies = dict(lies)
    size = lies.pop("size", 1000)
    assert refusal(host, kind, media_url(BASE, fmt, size, **lies)) == expected


def test_redirects_are_followed_on_the_host_and_trusted_off_it(host: MediaHost) -> None:
    large = media_url(BASE, "png", 9 * MIB)
    assert refusal(host, "image", media_url(BASE, "png", 1, redirect=large)) == TOO_LARGE["image"]
    assert (
        refusal(host, "image", media_url(BASE, "png", 1, redirect=large, hops=5))
        == (TOO_LARGE["image"])
    )
    assert refusal(host, "image", media_url(BASE, "png", 1, redirect=large, hops=6)) == (
        FETCH_FAILED  # more redirects than Graph follows
    )
    elsewhere = "https://cdn.example.test/huge.png"
    assert refusal(host, "image", media_url(BASE, "png", 1, redirect=elsewhere)) is None


@pytest.mark.parametrize(
    "url",
    [
        "https://cdn.example.test/media/png/99999999",
        "https://127.0.0.1:4444/media/png/99999999",  # another port
        "https://127.0.0.2:4443/media/png/99999999",  # another address
    ],
)
def test_urls_off_the_host_are_not_judged(host: MediaHost, url: str) -> None:
    assert refusal(host, "image", url) is None


def test_the_host_by_name_and_over_plain_http(host: MediaHost) -> None:
    by_name = media_url(BASE, "png", 9 * MIB, host="LocalHost")
    assert refusal(host, "image", by_name) == TOO_LARGE["image"]
    plain = media_url(BASE, "png", 100).replace("https://", "http://")
    assert refusal(host, "image", plain) == FETCH_FAILED


# --- through the emulator process ------------------------------------------------------------


def _attachment(kind: str, url: str) -> dict[str, Any]:
    return {
        "recipient": {"id": USER_1},
        "message": {"attachment": {"type": kind, "payload": {"url": url}}},
    }


def _images(urls: list[str]) -> dict[str, Any]:
    attachments = [{"type": "image", "payload": {"url": url}} for url in urls]
    return {"recipient": {"id": USER_1}, "message": {"attachments": attachments}}


def test_an_image_at_8_mib_is_delivered_and_one_byte_more_is_meta_s_image_error(
    media_emulator: EmulatorControl, media_graph: httpx.Client
) -> None:
    at_limit = media_emulator.media_url("png", 8 * MIB)
    assert post(media_graph, _attachment("image", at_limit)).status_code == 200
    response = post(media_graph, _attachment("image", media_emulator.media_url("png", 8 * MIB + 1)))
    assert response.status_code == 400
    error = error_of(response)
    assert error.pop("fbtrace_id")
    assert error == {
        "message": "The image size is too large.",
        "type": "OAuthException",
        "code": 36000,
        "error_subcode": 2207004,
        "is_transient": False,
        "error_user_title": "Image size too large",
        "error_user_msg": "The image is too large to download. It should be less than 8 MiB.",
    }
    calls = media_emulator.calls()["calls"]
    assert [c["body"]["message"]["attachment"]["payload"]["url"] for c in calls] == [at_limit]
    assert media_emulator.stats()["rejected_by_error"] == {"36000/2207004": 1}
    # Graph knows the file from its URL: the host was never asked.
    assert media_emulator.media_requests() == []


@pytest.mark.parametrize("kind", ["audio", "video", "file"])
def test_other_attachments_over_25_mib_get_2018109(
    media_emulator: EmulatorControl, media_graph: httpx.Client, kind: str
) -> None:
    fmt, limit = ALLOWED[kind][0], LIMIT[kind]
    assert post(media_graph, _attachment(kind, media_emulator.media_url(fmt, limit))).is_success
    over = post(media_graph, _attachment(kind, media_emulator.media_url(fmt, limit + 1)))
    assert (over.status_code, error_of(over)["code"], error_of(over)["error_subcode"]) == (
        400,
        100,
        2018109,
    )
    assert media_emulator.stats()["accepted"] == 1


@pytest.mark.parametrize(
    ("kind", "fmt", "lies", "subcode"),
    [
        ("audio", "pdf", {}, 2018047),
        ("image", "png", {"garbage": True}, 2018047),
        ("image", "png", {"status": 404}, 2018008),
        ("video", "mp4", {"stall": True}, 2018008),
    ],
)
def test_wrong_and_missing_files_are_refused_undelivered(
    media_emulator: EmulatorControl,
    media_graph: httpx.Client,
    kind: str,
    fmt: str,
    lies: dict[str, Any],
    subcode: int,
) -> None:
    response = post(media_graph, _attachment(kind, media_emulator.media_url(fmt, 1000, **lies)))
    assert response.status_code == 400
    assert (error_of(response)["code"], error_of(response)["error_subcode"]) == (100, subcode)
    assert media_emulator.stats()["accepted"] == 0


def test_each_of_ten_images_is_fetched(
    media_emulator: EmulatorControl, media_graph: httpx.Client
) -> None:
    urls = [media_emulator.media_url("png", 1000 + i) for i in range(10)]
    assert post(media_graph, _images(urls)).status_code == 200
    urls[6] = media_emulator.media_url("gif", 9 * MIB)
    refused = post(media_graph, _images(urls))
    assert (error_of(refused)["code"], error_of(refused)["error_subcode"]) == (36000, 2207004)
    assert media_emulator.stats()["accepted"] == 1


def test_a_lying_content_type_on_a_real_png_is_delivered(
    media_emulator: EmulatorControl, media_graph: httpx.Client
) -> None:
    url = media_emulator.media_url("png", 5000, type="text/plain", head=405)
    assert post(media_graph, _attachment("image", url)).status_code == 200


@pytest.mark.parametrize(
    "payload",
    [{"url": "https://cdn.example.test/a-huge.png"}, {"attachment_id": "1857777774821032"}],
)
def test_media_elsewhere_or_by_attachment_id_passes(
    media_emulator: EmulatorControl, media_graph: httpx.Client, payload: dict[str, str]
) -> None:
    body = {
        "recipient": {"id": USER_1},
        "message": {"attachment": {"type": "image", "payload": payload}},
    }
    assert post(media_graph, body).status_code == 200


def test_without_a_media_host_no_file_is_judged(graph: httpx.Client) -> None:
    url = media_url("https://127.0.0.1:4443", "pdf", 99 * MIB)
    assert post(graph, _attachment("image", url)).status_code == 200
