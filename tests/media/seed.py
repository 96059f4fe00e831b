"""The media limits as the sources state them, transcribed independently of the code's table
(worker/media/limits.py), which the tests pin to this."""

from __future__ import annotations

import re

# The seed's table (shared seeds/000_ecbfbf7b6b1579b9.txt, "미디어 유형 | 지원 형식 | 최대 크기"),
# rows as written there.
SEED_ROWS = """
| 오디오 | aac, m4a, wav, mp4 | 25MB |
| 이미지 | png, jpeg, gif | 8MB |
| 비디오 | mp4, ogg, avi, mov, webm | 25MB |
"""
# The fact sheet's file row (shared docs/instagram-api.md section 5).
FACT_SHEET_ROWS = """
| File | pdf | 25 MB | IGL-SEND, MIG-UPLOAD |
"""
KIND_NAMES = {"오디오": "audio", "이미지": "image", "비디오": "video", "File": "file"}


def _rows(text: str) -> dict[str, tuple[tuple[str, ...], int]]:
    table: dict[str, tuple[tuple[str, ...], int]] = {}
    for line in text.strip().splitlines():
        kind, formats, size = (cell.strip() for cell in line.strip("|").split("|")[:3])
        megabytes = re.fullmatch(r"(\d+)\s*MB", size)
        assert megabytes, line
        table[KIND_NAMES[kind]] = (
            tuple(f.strip() for f in formats.split(",")),
            int(megabytes.group(1)),
        )
    return table


# kind -> (formats in the sources' order, max size in (binary) megabytes)
MEDIA_TABLE = _rows(SEED_ROWS) | _rows(FACT_SHEET_ROWS)
# Every (kind, format) pair the sources allow.
ALLOWED = [(kind, fmt) for kind, (formats, _) in MEDIA_TABLE.items() for fmt in formats]
