"""The files the emulator's media host serves, and what Graph accepts as an attachment.

A file is named by its URL: ``/media/<format>/<bytes>`` is the real first bytes of that
format (``HEADERS``, copied from files made by the usual tools: libpng, libjpeg, ffmpeg,
iTunes, QuickTime, mkvmerge, libvorbis, Acrobat) padded with zeros to ``<bytes>``. Query flags
(``LIES``) make the host misbehave the ways real servers do; Graph reads the same URL to know
the file's real format and size without fetching it (``media_checks.py``).

Graph's table is the seed's (image png/jpeg/gif 8 MB; audio aac/m4a/wav/mp4 25 MB; video
mp4/ogg/avi/mov/webm 25 MB) plus the fact sheet's file row (pdf 25 MB, section 5), in binary
megabytes: Meta's own text for an oversized image says "It should be less than 8 MiB".
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


def _hex(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


# format -> the first bytes of a real file of that format
HEADERS: Final[Mapping[str, bytes]] = MappingProxyType(
    {
        # 1x1 RGBA PNG: signature, then the IHDR chunk.
        "png": _hex("89504e470d0a1a0a 0000000d 49484452 00000001 00000001 0806000000 1f15c489"),
        # JFIF (libjpeg): SOI, APP0 "JFIF".
        "jpeg": _hex("ffd8ffe0 0010 4a46494600 0101 0000 0100 0100 00"),
        "gif": b"GIF89a\x01\x00\x01\x00\x80\x00\x00",
        "pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
        # ffmpeg's default MP4: ftyp isom, compatible isom iso2 avc1 mp41.
        "mp4": _hex("00000020 66747970 69736f6d 00000200 69736f6d 69736f32 61766331 6d703431"),
        # iTunes AAC audio: ftyp "M4A ".
        "m4a": _hex("00000020 66747970 4d344120 00000000 4d344120 6d703432 69736f6d 00000000"),
        # QuickTime 7: ftyp "qt  ".
        "mov": _hex("00000014 66747970 71742020 20050300 71742020"),
        # A browser's MediaRecorder WebM: EBML header, DocType "webm".
        "webm": _hex(
            "1a45dfa3 9f 4286 8101 42f7 8101 42f2 8104 42f3 8108 4282 84 7765626d"
            " 4287 8104 4285 8102"
        ),
        # Ogg Vorbis/Theora: capture pattern, version 0, beginning of stream.
        "ogg": _hex("4f676753 00 02 0000000000000000 a1b2c3d4 00000000"),
        "avi": _hex("52494646 a0860100 41564920 4c495354 7e110000 6864726c"),
        "wav": _hex("52494646 24080000 57415645 666d7420 10000000 0100 0200 44ac0000"),
        # ADTS, MPEG-4 AAC LC, 44.1 kHz stereo, no CRC.
        "aac": _hex("fff1 5080 2e7f fc21"),
        # Formats no attachment type allows (for wrong-type answers).
        "html": b"<!DOCTYPE html>\n<html><head><title>Not found</title></head>",
        "mp3": _hex("fffb9064 00000000"),
        "mkv": _hex(
            "1a45dfa3 a3 4286 8101 42f7 8101 42f2 8104 42f3 8108 4282 88 6d6174726f736b61"
            " 4287 8104 4285 8102"
        ),
        "webp": _hex("52494646 24000000 57454250 56503820"),
        "zip": _hex("504b0304 14000000 0800"),
    }
)

# format -> the Content-Type a web server sends for it by its extension
CONTENT_TYPES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "png": "image/png",
        "jpeg": "image/jpeg",
        "gif": "image/gif",
        "pdf": "application/pdf",
        "mp4": "video/mp4",
        "m4a": "audio/x-m4a",
        "mov": "video/quicktime",
        "webm": "video/webm",
        "ogg": "video/ogg",
        "avi": "video/x-msvideo",
        "wav": "audio/wav",
        "aac": "audio/aac",
        "html": "text/html; charset=utf-8",
        "mp3": "audio/mpeg",
        "mkv": "video/x-matroska",
        "webp": "image/webp",
        "zip": "application/zip",
    }
)

MIB: Final = 1024 * 1024

# Attachment type -> (formats Graph takes for it, largest size in bytes).
ATTACHMENT_LIMITS: Final[Mapping[str, tuple[frozenset[str], int]]] = MappingProxyType(
    {
        "image": (frozenset({"png", "jpeg", "gif"}), 8 * MIB),
        "audio": (frozenset({"aac", "m4a", "wav", "mp4"}), 25 * MIB),
        "video": (frozenset({"mp4", "ogg", "avi", "mov", "webm"}), 25 * MIB),
        "file": (frozenset({"pdf"}), 25 * MIB),
    }
)

# Query flags of a media URL: how the host lies (values are strings in the URL).
LIES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "type": "this Content-Type instead of the format's (empty: none)",
        "head": "HEAD answers this status with no body (405, 501, 403 ...)",
        "status": "every request answers this status, with no file",
        "nolength": "no Content-Length on HEAD or a whole body (a 206 still says the total)",
        "hidesize": "no size anywhere: no Content-Length, Content-Range total `*`",
        "norange": "Range ignored: 200 with the whole body",
        "endless": "the body never ends (no length, Range ignored)",
        "drip": "the body one byte at a time, this many seconds apart",
        "stall": "no answer at all, until the client goes away",
        "garbage": "the body has no signature (the header still says the format's type)",
        "redirect": "302 to this URL; with `hops=<n>`, n redirects in all (the others to itself)",
        "hops": "how many redirects `redirect` makes",
        "tag": "ignored by the host: tells one test's requests apart",
    }
)

MEDIA_PREFIX: Final = "/media/"


def media_path(fmt: str, size: int) -> str:
    return f"{MEDIA_PREFIX}{fmt}/{size}"


def media_url(
    base_url: str, fmt: str, size: int, *, host: str | None = None, **lies: object
) -> str:
    """A URL of the media host at ``base_url`` (``https://127.0.0.1:PORT``), by ``host``
    instead of its address if given (e.g. ``localhost``), with ``lies`` as query flags and a
    fresh ``tag`` (unless one is given) so its requests can be told apart.

    An unknown format is allowed: the host answers it 404 (a missing file). ``True`` flags
    are ``1``; ``False`` and ``None`` ones are left out."""
    unknown = sorted(set(lies) - set(LIES))
    if unknown:
        raise ValueError(f"unknown media lies {unknown}; known: {sorted(LIES)}")
    if size < 0:
        raise ValueError("a media file's size cannot be negative")
    flags = {name: _flag(value) for name, value in lies.items() if value not in (None, False)}
    flags.setdefault("tag", uuid.uuid4().hex)
    parts = urlsplit(base_url)
    netloc = parts.netloc if host is None else f"{_bracketed(host)}:{parts.port}"
    return urlunsplit(("https", netloc, media_path(fmt, size), urlencode(flags), ""))


def _flag(value: object) -> str:
    return "1" if value is True else str(value)


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def tag_of(url: str) -> str | None:
    """The ``tag`` flag of a media URL, if it has one."""
    return dict(parse_qsl(urlsplit(url).query)).get("tag")
