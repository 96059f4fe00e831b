"""What Instagram accepts as an attachment: one table, per content kind.

The seed's media table (image png/jpeg/gif 8 MB; audio aac/m4a/wav/mp4 25 MB; video
mp4/ogg/avi/mov/webm 25 MB) plus the fact sheet's file row (pdf 25 MB, `instagram-api.md`
section 5); `tests/media/test_limits.py` pins it to both. Each format lists the MIME types
servers really send for it, the registered one first. Generic types (`application/octet-stream`,
`binary/octet-stream`) belong to no kind, so a probe reads the first bytes for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType
from typing import Final

MB: Final = 1024 * 1024
# Binary megabytes: Meta's own error text for an oversized image says "It should be less than
# 8 MiB" (fact sheet section 2, error 36000/2207004), so "8 MB" in its tables is 8 * 1024 * 1024
# bytes; the other rows are read the same way.
IMAGE_MAX_BYTES: Final = 8 * MB
MEDIA_MAX_BYTES: Final = 25 * MB


@dataclass(frozen=True)
class KindLimits:
    """The formats (each with its MIME types) and the largest size one content kind allows."""

    kind: str
    max_bytes: int
    formats: Mapping[str, tuple[str, ...]]

    @property
    def format_names(self) -> tuple[str, ...]:
        return tuple(self.formats)

    @cached_property
    def mime_types(self) -> frozenset[str]:
        return frozenset(mime for mimes in self.formats.values() for mime in mimes)

    def allows_format(self, fmt: str) -> bool:
        return fmt in self.formats

    def allows_mime(self, mime: str) -> bool:
        return mime in self.mime_types

    def describe(self) -> str:
        """`image (png, jpeg, gif)`: how a verdict names what was expected."""
        return f"{self.kind} ({', '.join(self.formats)})"


def _kind(kind: str, max_bytes: int, **formats: tuple[str, ...]) -> KindLimits:
    return KindLimits(kind, max_bytes, MappingProxyType(formats))


MEDIA_LIMITS: Final[Mapping[str, KindLimits]] = MappingProxyType(
    {
        "image": _kind(
            "image",
            IMAGE_MAX_BYTES,
            png=("image/png",),
            jpeg=("image/jpeg", "image/jpg", "image/pjpeg"),
            gif=("image/gif",),
        ),
        "audio": _kind(
            "audio",
            MEDIA_MAX_BYTES,
            aac=("audio/aac", "audio/x-aac", "audio/aacp"),
            m4a=("audio/mp4", "audio/x-m4a", "audio/m4a"),
            wav=("audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"),
            # An audio-only .mp4 is usually served as video/mp4 (servers go by the extension).
            mp4=("audio/mp4", "video/mp4"),
        ),
        "video": _kind(
            "video",
            MEDIA_MAX_BYTES,
            mp4=("video/mp4",),
            ogg=("video/ogg", "application/ogg"),
            avi=("video/x-msvideo", "video/avi", "video/msvideo"),
            mov=("video/quicktime",),
            webm=("video/webm",),
        ),
        "file": _kind("file", MEDIA_MAX_BYTES, pdf=("application/pdf", "application/x-pdf")),
    }
)

# Intent kinds that carry media, and the table row each is checked against.
_KIND_OF_INTENT: Final = MappingProxyType({"images": "image"})

ALL_MEDIA_TYPES: Final = frozenset(m for limits in MEDIA_LIMITS.values() for m in limits.mime_types)
# Every format any kind knows, with its MIME types (mp4's from audio and video together).
FORMAT_TYPES: Final[Mapping[str, frozenset[str]]] = MappingProxyType(
    {
        fmt: frozenset(m for lim in MEDIA_LIMITS.values() for m in lim.formats.get(fmt, ()))
        for fmt in {f for lim in MEDIA_LIMITS.values() for f in lim.formats}
    }
)


def limits_for(kind: str) -> KindLimits:
    """The row for a content kind (`image`, `audio`, `video`, `file`; the intent kind
    `images` is checked as `image`); `ValueError` for a kind that carries no media."""
    row = MEDIA_LIMITS.get(_KIND_OF_INTENT.get(kind, kind))
    if row is None:
        raise ValueError(f"{kind!r} carries no media (one of {', '.join(MEDIA_LIMITS)})")
    return row
