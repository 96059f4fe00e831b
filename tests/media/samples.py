"""The first bytes of real files, per format (the emulator's `HEADERS`, copied from files made
by the usual tools: libpng, libjpeg, ffmpeg, iTunes, QuickTime, mkvmerge, libvorbis, Acrobat),
and the type a web server sends for each. The emulator's media host pads them to any size; the
sniff tests read them, with more writers' variants and bytes that are no media."""

from __future__ import annotations

from ig_outbound.emulator.media_files import CONTENT_TYPES, HEADERS

# The first bytes the emulator's media host serves per format, and the type a web server
# sends for each, are the emulator's (one table for the host and these tests).
__all__ = ["CONTENT_TYPES", "HEADERS", "NOT_MEDIA", "VARIANTS"]


def _hex(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


# More real first bytes: other writers of the same formats.
VARIANTS: dict[str, tuple[bytes, str]] = {
    "jpeg with Exif (a phone camera)": (_hex("ffd8ffe1 1c45 457869660000 4d4d002a"), "jpeg"),
    "GIF87a": (b"GIF87a\x01\x00\x01\x00\x80\x00\x00", "gif"),
    "PDF 1.4": (b"%PDF-1.4\n", "pdf"),
    "MP4 with brand mp42": (_hex("00000018 66747970 6d703432 00000000 6d703432 69736f6d"), "mp4"),
    "3GP (brand 3gp4)": (_hex("00000014 66747970 33677034 00000000 33677034"), "mp4"),
    "M4V (brand M4V )": (_hex("0000001c 66747970 4d345620 00000001 4d345620 4d344120"), "mp4"),
    "WebM with an 8-byte header size (mkvmerge)": (
        _hex(
            "1a45dfa3 010000000000001f 4286 8101 42f7 8101 42f2 8104 42f3 8108"
            " 4282 84 7765626d 4287 8104 4285 8102"
        ),
        "webm",
    ),
    "ADTS MPEG-2 (FFF9)": (_hex("fff9 5080 2e7f fc21"), "aac"),
}

# First bytes that must not be taken for any allowed format.
NOT_MEDIA: dict[str, bytes] = {
    "empty": b"",
    "HTML": HEADERS["html"],
    "MP3 frame (FFFB)": HEADERS["mp3"],
    "MP3 with an ID3 tag": b"ID3\x04\x00\x00\x00\x00\x00\x00",
    "Matroska (DocType matroska)": HEADERS["mkv"],
    "WebP (RIFF, WEBP)": HEADERS["webp"],
    "ZIP": HEADERS["zip"],
    "PNG cut short": HEADERS["png"][:5],
    "ftyp cut short": HEADERS["mp4"][:10],
    "EBML header cut before its DocType": HEADERS["webm"][:20],
    "JSON": b'{"error": "not found"}',
}
