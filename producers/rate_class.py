"""Which of Meta's per-account budgets a message counts against: decided here, once.

The worker's limiter calls `rate_class`; the enqueue script gets the same rule as generated
Lua (`producers/scripts.py`), and a parity test runs both over every kind and recipient type.
"""

from __future__ import annotations

from enum import StrEnum


class RateClass(StrEnum):
    """Meta's budgets per IG account (fact sheet section 3)."""

    LIGHT = "light"  # text, links, reactions, stickers and the other light kinds: 100/s
    MEDIA = "media"  # audio and video: 10/s
    PRIVATE_REPLY = "private_reply"  # private replies to posts and reels: 750/h


# Kinds that count against the audio/video budget; every other kind is light.
MEDIA_KINDS = frozenset({"audio", "video"})


def rate_class(kind: str, is_private_reply: bool) -> RateClass:
    if is_private_reply:
        return RateClass.PRIVATE_REPLY
    if kind in MEDIA_KINDS:
        return RateClass.MEDIA
    return RateClass.LIGHT
