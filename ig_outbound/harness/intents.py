"""Intents as a producer writes them (plain JSON-shaped dicts), for the demo, tests and
benchmarks: one factory, so every stack enqueues the same shape."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def make_intent(
    key: str,
    account: str,
    recipient: str | Mapping[str, str],
    content: Mapping[str, Any],
    **extra: Any,
) -> dict[str, Any]:
    """One intent; `recipient` is an IGSID or a whole recipient object (`{"comment_id": ..}`
    for a private reply), and `extra` adds or overrides any top-level field."""
    return {
        "idempotency_key": key,
        "account_id": account,
        "recipient": {"id": recipient} if isinstance(recipient, str) else dict(recipient),
        "content": dict(content),
        **extra,
    }


def text_intent(
    key: str, account: str, recipient: str | Mapping[str, str], text: str, **extra: Any
) -> dict[str, Any]:
    """A text message intent (see `make_intent`)."""
    return make_intent(key, account, recipient, {"kind": "text", "text": text}, **extra)
