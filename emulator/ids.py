"""Ids shaped like Graph's."""

from __future__ import annotations

import base64
import hashlib


def message_id(ig_id: str, counter: int) -> str:
    """A message id like Graph's ``aWdf…``: url-safe base64 (no padding) of an item key."""
    raw = f"ig_message_item:1:IGMessageThread:{ig_id}:{counter}".encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def app_scoped_id(ig_id: str) -> str:
    """The id an app sees for an account (``GET /me`` ``id``): stable, 17 digits, never the
    IG_ID (IG_IDs start 1784; these start 2)."""
    digest = int(hashlib.sha256(f"app-scoped:{ig_id}".encode()).hexdigest()[:15], 16)
    return "2" + str(digest % 10**16).rjust(16, "0")
