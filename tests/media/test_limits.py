"""The one media table equals the seed's (plus the fact sheet's file row)."""

from __future__ import annotations

import pytest

from ig_outbound.worker.media import MB, MEDIA_LIMITS, limits_for
from tests.media.seed import MEDIA_TABLE


def test_the_table_has_the_seeds_kinds_formats_and_sizes() -> None:
    code = {kind: (row.format_names, row.max_bytes) for kind, row in MEDIA_LIMITS.items()}
    seed = {kind: (formats, mb * 1024 * 1024) for kind, (formats, mb) in MEDIA_TABLE.items()}
    assert code == seed


def test_megabytes_are_binary_as_in_metas_8_mib_error_text() -> None:
    assert MB == 1024 * 1024
    assert MEDIA_LIMITS["image"].max_bytes == 8_388_608


@pytest.mark.parametrize(
    ("kind", "mime"),
    [
        ("image", "image/png"),
        ("image", "image/jpeg"),
        ("image", "image/jpg"),
        ("image", "image/gif"),
        ("audio", "audio/aac"),
        ("audio", "audio/mp4"),
        ("audio", "audio/x-m4a"),
        ("audio", "audio/wav"),
        ("audio", "audio/x-wav"),
        ("audio", "audio/wave"),
        ("audio", "video/mp4"),
        ("video", "video/mp4"),
        ("video", "video/ogg"),
        ("video", "video/x-msvideo"),
        ("video", "video/avi"),
        ("video", "video/quicktime"),
        ("video", "video/webm"),
        ("file", "application/pdf"),
    ],
)
def test_each_kind_accepts_the_usual_mime_aliases(kind: str, mime: str) -> None:
    assert limits_for(kind).allows_mime(mime)


@pytest.mark.parametrize(
    ("kind", "mime"),
    [
        ("image", "image/webp"),
        ("image", "text/html"),
        ("audio", "audio/mpeg"),
        ("audio", "audio/ogg"),
        ("video", "video/x-matroska"),
        ("file", "application/zip"),
        ("image", "application/octet-stream"),
    ],
)
def test_other_types_are_not_allowed(kind: str, mime: str) -> None:
    assert not limits_for(kind).allows_mime(mime)


def test_an_images_intent_is_checked_against_the_image_row() -> None:
    assert limits_for("images") is MEDIA_LIMITS["image"]


def test_a_kind_without_media_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="carries no media"):
        limits_for("text")
