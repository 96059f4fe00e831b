"""Inbound facts from webhooks that the worker reads: for now, message echoes.

Meta echoes every message the business sends (`message.is_echo: true`, sender = the IG
account, recipient = the user) on the `messages` webhook field. The worker uses echoes to
settle an *ambiguous* send (the request left, no answer came) without resending it: the
`reconcile` policy (docs/outcomes.md). The webhook parser records each echo here; this module
is the one definition of how an echo is indexed and matched.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from redis.asyncio import Redis

from ig_outbound.producers.keys import Keys
from ig_outbound.producers.scripts import ECHO_CLAIM
from ig_outbound.producers.wire import ECHO_RETENTION_S, ECHOES_PER_CONVERSATION

_MEDIA_TYPES = frozenset({"image", "audio", "video", "file"})


def message_fingerprint(message: Mapping[str, Any] | None) -> str | None:
    """What an echo and a sent Graph `message` have in common: the text, or the attachment
    types (echoed media URLs are Meta's CDN copies, so URLs cannot be compared)."""
    if not isinstance(message, Mapping):
        return None
    text = message.get("text")
    if isinstance(text, str):
        return "text:" + hashlib.sha1(text.encode("utf-8")).hexdigest()
    items: list[Any] = []
    if isinstance(message.get("attachment"), Mapping):
        items = [message["attachment"]]
    elif isinstance(message.get("attachments"), list):
        items = message["attachments"]
    types = sorted(
        str(i.get("type"))
        for i in items
        if isinstance(i, Mapping) and i.get("type") in _MEDIA_TYPES
    )
    return "media:" + ",".join(types) if types and len(types) == len(items) else None


def echo_member(mid: str, fingerprint: str | None) -> str:
    """An echo's entry in its conversation's index (the one definition of its format)."""
    return json.dumps({"fp": fingerprint, "mid": mid}, separators=(",", ":"), sort_keys=True)


async def record_echo(
    redis: Redis, keys: Keys, *, account_id: str, recipient_id: str, mid: str, timestamp_ms: int,
    message: Mapping[str, Any],
) -> None:  # fmt: skip
    """Index one echo (the gateway records echoes with every other inbound fact through
    `record_inbound`; this is the same index, for tests and for producers without it)."""
    member = echo_member(mid, message_fingerprint(message))
    key = keys.echoes(account_id, recipient_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zadd(key, {member: timestamp_ms})
        pipe.zremrangebyscore(key, "-inf", timestamp_ms - ECHO_RETENTION_S * 1000)
        pipe.zremrangebyrank(key, 0, -ECHOES_PER_CONVERSATION - 1)
        pipe.expire(key, ECHO_RETENTION_S)
        await pipe.execute()


async def claim_echo(
    redis: Redis, keys: Keys, *, account_id: str, recipient_id: str, since_ms: int,
    fingerprint: str | None,
) -> str | None:  # fmt: skip
    """The mid of the first unclaimed echo in this conversation since `since_ms` that
    matches `fingerprint`, claimed for the caller (`producers/lua/echo_claim.lua`); None if
    there is none yet."""
    if fingerprint is None:
        return None
    claim = redis.register_script(ECHO_CLAIM.source)
    reply = await claim(
        keys=[keys.echoes(account_id, recipient_id), keys.echo_claims(account_id, recipient_id)],
        args=[since_ms, fingerprint],
    )
    if not reply:
        return None
    return reply.decode() if isinstance(reply, bytes) else str(reply)
