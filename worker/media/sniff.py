"""A file's format from its first bytes (magic numbers), for the formats of `limits.py`.

Only what a server cannot fake by a header: a format is named when its signature is there,
else `None` ("unknown", never a guess). A few hundred bytes are enough for every format here
(the EBML header of a WebM file is the longest to read, about 40 bytes).
"""

from __future__ import annotations

from typing import Final

_PREFIXES: Final = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"%PDF-", "pdf"),
    (b"OggS", "ogg"),
)
# ISO base media file format: a `ftyp` box first, its major brand says which flavour.
_ISO_BRANDS: Final = {b"M4A ": "m4a", b"qt  ": "mov"}
_RIFF_FORMS: Final = {b"AVI ": "avi", b"WAVE": "wav"}
_EBML_MAGIC: Final = b"\x1a\x45\xdf\xa3"
_EBML_DOCTYPE_ID: Final = 0x4282


def sniff(head: bytes) -> str | None:
    """`png`, `jpeg`, `gif`, `pdf`, `ogg`, `mp4`, `m4a`, `mov`, `webm`, `avi`, `wav` or `aac`
    for a file starting with `head`; `None` when no signature matches."""
    for prefix, fmt in _PREFIXES:
        if head.startswith(prefix):
            return fmt
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return _ISO_BRANDS.get(head[8:12], "mp4")
    if len(head) >= 12 and head.startswith(b"RIFF"):
        return _RIFF_FORMS.get(head[8:12])
    if head.startswith(_EBML_MAGIC):
        return "webm" if _ebml_doctype(head) == b"webm" else None
    if _is_adts(head):
        return "aac"
    return None


def _is_adts(head: bytes) -> bool:
    """An AAC ADTS frame: 12 sync bits, then the MPEG version bit and layer `00` (FFF1 and
    FFF9, or FFF0/FFF8 with a CRC). MP3 frames share the sync bits but never layer `00`."""
    return len(head) >= 2 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0


def _ebml_doctype(head: bytes) -> bytes | None:
    """The DocType of the EBML header (`webm`, `matroska`), or None if the bytes we have end
    before it or are not EBML."""
    size, pos = _vint(head, len(_EBML_MAGIC), keep_marker=False)
    if size is None:
        return None
    end = min(len(head), pos + size)
    while pos < end:
        element, pos = _vint(head, pos, keep_marker=True)
        length, pos = _vint(head, pos, keep_marker=False)
        if element is None or length is None:
            return None
        if element == _EBML_DOCTYPE_ID:
            return head[pos : pos + length].rstrip(b"\x00")
        pos += length
    return None


def _vint(data: bytes, pos: int, *, keep_marker: bool) -> tuple[int | None, int]:
    """An EBML variable-length integer at `pos`: (value, position after it). Element ids
    keep their length marker bit, sizes do not; None when the bytes run out or are invalid."""
    if pos >= len(data) or data[pos] == 0:
        return None, pos
    length = 9 - data[pos].bit_length()  # leading zero bits + 1
    if pos + length > len(data):
        return None, pos
    value = int.from_bytes(data[pos : pos + length], "big")
    if not keep_marker:
        value &= (1 << (7 * length)) - 1
    return value, pos + length
