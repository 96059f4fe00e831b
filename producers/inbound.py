"""Inbound facts from webhooks: recording them (window facts, the echo index, the inbound
stream), and the echoes the worker reads.

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
from typing import Any, Literal, cast

from redis.asyncio import Redis

from ig_outbound.producers.keys import Keys
from ig_outbound.producers.scripts import ECHO_CLAIM, INBOUND_EVENT
from ig_outbound.producers.webhooks import (
    CommentEvent,
    EchoEvent,
    InboundEvent,
    MessageEvent,
    UnknownEvent,
)
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
    fingerprint: str | None, claimer: str = "", claim_field: str = "echo_claim",
) -> str | None:  # fmt: skip
    """The mid of the first unclaimed echo in this conversation since `since_ms` that
    matches `fingerprint`, claimed for the caller (`producers/lua/echo_claim.lua`); None if
    there is none yet. `claimer`: the idempotency key whose record keeps the claim (in
    `claim_field`), so a re-run of that send finds its own echo again."""
    if fingerprint is None:
        return None
    claim = redis.register_script(ECHO_CLAIM.source)
    record = keys.record(claimer) if claimer else ""
    reply = await claim(
        keys=[
            keys.echoes(account_id, recipient_id),
            keys.echo_claims(account_id, recipient_id),
            record,
        ],
        args=[since_ms, fingerprint, claim_field],
    )
    if not reply:
        return None
    return reply.decode() if isinstance(reply, bytes) else str(reply)


# Meta retries an unacknowledged webhook for up to 36 hours [IGL-WH]: remember an event's
# identity a little longer, so every redelivery counts once.
INBOUND_DEDUPE_S = 2 * 24 * 3600
INBOUND_STREAM_MAXLEN = 100_000

RecordResult = Literal["recorded", "duplicate", "unknown_account"]


def _opens_window(event: InboundEvent) -> bool:
    """Only a message the user sent starts (or moves) the 24-hour window: the emulator and
    Meta agree on that much; postbacks, reactions and reads are left out to stay safe."""
    return isinstance(event, MessageEvent) and not event.is_deleted


async def record_inbound(
    redis: Redis,
    keys: Keys,
    event: InboundEvent,
    *,
    stream_maxlen: int = INBOUND_STREAM_MAXLEN,
    dedupe_s: int = INBOUND_DEDUPE_S,
) -> RecordResult:
    """Record one parsed webhook event exactly once (`producers/lua/inbound_event.lua`):
    window facts, the echo index, and the normalised event on `Keys.inbound`. Usable from an
    upstream service's own webhook handler as well as from our gateway."""
    if isinstance(event, UnknownEvent) and (event.account_id is None or event.user_id is None):
        account, user = event.account_id or "", event.user_id or ""
    else:
        account, user = str(event.account_id), str(event.user_id)
    echo = ""
    if isinstance(event, EchoEvent):
        echo = echo_member(event.mid, message_fingerprint(event.raw.get("message")))
    script = redis.register_script(INBOUND_EVENT.source)
    reply = await script(
        args=[
            keys.prefix,
            account,
            user,
            event.type,
            event.event_id,
            event.timestamp_ms or 0,
            event.model_dump_json(),
            "1" if _opens_window(event) else "",
            event.comment_id if isinstance(event, CommentEvent) else "",
            echo,
            stream_maxlen,
            dedupe_s * 1000,
        ]
    )
    return cast(RecordResult, reply.decode() if isinstance(reply, bytes) else str(reply))
