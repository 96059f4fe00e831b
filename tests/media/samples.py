"""The first bytes of real files, per format (copied from files made by the usual tools:
libpng, libjpeg, ffmpeg, iTunes, QuickTime, mkvmerge, libvorbis, Acrobat), and the type a
web server sends for each. The media server pads them to any size; the sniff tests read them."""

from __future__ import annotations


def _hex(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


# format -> the first bytes of a real file of that format
HEADERS: dict[str, bytes] = {
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
        "1a45dfa3 9f 4286 8101 42f7 8101 42f2 8104 42f3 8108 4282 84 7765626d 4287 8104 4285 8102"
    ),
    # Ogg Vorbis/Theora: capture pattern, version 0, beginning of stream.
    "ogg": _hex("4f676753 00 02 0000000000000000 a1b2c3d4 00000000"),
    "avi": _hex("52494646 a0860100 41564920 4c495354 7e110000 6864726c"),
    "wav": _hex("52494646 24080000 57415645 666d7420 10000000 0100 0200 44ac0000"),
    # ADTS, MPEG-4 AAC LC, 44.1 kHz stereo, no CRC.
    "aac": _hex("fff1 5080 2e7f fc21"),
    # Formats no kind allows (for wrong-type verdicts).
    "html": b"<!DOCTYPE html>\n<html><head><title>Not found</title></head>",
    "mp3": _hex("fffb9064 00000000"),
    "mkv": _hex(
        "1a45dfa3 a3 4286 8101 42f7 8101 42f2 8104 42f3 8108 4282 88 6d6174726f736b61"
        " 4287 8104 4285 8102"
    ),
    "webp": _hex("52494646 24000000 57454250 56503820"),
    "zip": _hex("504b0304 14000000 0800"),
}

# format -> the Content-Type a web server sends for it by its extension
CONTENT_TYPES: dict[str, str] = {
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
