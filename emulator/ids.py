"""Ids shaped like Graph's."""

from __future__ import annotations

import base64


def message_id(ig_id: str, counter: int) -> str:
    """A message id like Graph's ``aWdf…``: url-safe base64 (no padding) of an item key."""
    raw = f"ig_message_item:1:IGMessageThread:{ig_id}:{counter}".encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
