"""An example auto-responder: it reads the inbound stream (docs/inbound.md) with a consumer
group and answers bursts in batches with `enqueue_many`.

    a DM           -> a text reply with quick replies
    a comment      -> a private reply to the commenter
    a reaction     -> a reaction on the same message
    a postback     -> a text reply naming the button

Every reply's idempotency key is derived from the inbound event's identity
(`<event_id>:reply:0`), so a redelivered webhook, or a batch read twice after a crash,
enqueues nothing new: the second enqueue is a `duplicate`. Echoes (our own messages), reads,
edits and the rest get no reply. Replies outside the conversation's window are refused at
enqueue (`window_closed`) and counted, never sent.

    python -m ig_outbound.producers.examples.auto_responder   # IG_OUTBOUND_* settings

With shards (`IG_OUTBOUND_SHARDS`, docs/scaling.md) each shard's inbound stream holds the
events of that shard's accounts, so a responder per shard reads it and enqueues the replies
on the same Redis, which is their account's shard; `main` runs one per shard.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections import Counter
from collections.abc import Mapping
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from ig_outbound.producers.connection import connect_async
from ig_outbound.producers.enqueue import OutboundClient
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.redis_util import resolve
from ig_outbound.producers.settings import ClientSettings

GROUP = "auto-responder"
QUICK_REPLIES = [
    {"title": "Order status", "payload": "ORDER_STATUS"},
    {"title": "Talk to a human", "payload": "HUMAN"},
]


def replies_for(event: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The intents answering one inbound event (its `event` JSON, docs/inbound.md)."""
    kind, account, user = event.get("type"), event.get("account_id"), event.get("user_id")
    if event.get("from_business") or not account or not user:
        return []
    key = f"{event['event_id']}:reply:0"
    base: dict[str, Any] = {"idempotency_key": key, "account_id": account}
    if kind == "message" and not event.get("is_deleted") and not event.get("is_unsupported"):
        text = "Thanks for your message! How can we help?"
        content = {"kind": "text", "text": text, "quick_replies": QUICK_REPLIES}
        return [{**base, "recipient": {"id": user}, "content": content}]
    if kind == "comment":
        text = "Thanks for your comment! We sent you the details."
        recipient = {"comment_id": event["comment_id"]}
        return [{**base, "recipient": recipient, "content": {"kind": "text", "text": text}}]
    if kind == "reaction" and event.get("action") == "react":
        content = {"kind": "react", "message_id": event["mid"], "reaction": "love"}
        return [{**base, "recipient": {"id": user}, "content": content}]
    if kind == "postback":
        text = f"You chose {str(event.get('title') or 'that')[:200]}: on it."
        return [{**base, "recipient": {"id": user}, "content": {"kind": "text", "text": text}}]
    return []


class AutoResponder:
    """One consumer of the group; several processes share the stream's entries."""

    def __init__(self, redis: Redis, settings: ClientSettings, consumer: str | None = None) -> None:
        self.redis = redis
        self.keys = Keys(settings.key_prefix)
        self.client = OutboundClient(redis, settings)
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.counts: Counter[str] = Counter()

    async def start(self, from_id: str = "$") -> None:
        """Create the group (new events only, unless `from_id` says otherwise)."""
        try:
            await resolve(
                self.redis.xgroup_create(self.keys.inbound, GROUP, from_id, mkstream=True)
            )
        except ResponseError as exc:  # BUSYGROUP: it exists
            if "BUSYGROUP" not in str(exc):
                raise

    async def step(self, count: int = 500, block_ms: int | None = 1000) -> int:
        """Answer one batch of events; returns how many events were read (None: do not
        wait for events)."""
        reply: Any = await resolve(
            self.redis.xreadgroup(
                GROUP, self.consumer, {self.keys.inbound: ">"}, count=count, block=block_ms
            )
        )
        entries = reply[0][1] if reply else []
        intents = [i for _, fields in entries for i in replies_for(json.loads(fields[b"event"]))]
        if intents:
            for result in await self.client.enqueue_many(intents):
                reason = getattr(result.error, "reason", None) or getattr(result.error, "code", "")
                self.counts[result.status if result.accepted else f"refused:{reason}"] += 1
        if entries:
            await resolve(self.redis.xack(self.keys.inbound, GROUP, *[e for e, _ in entries]))
        return len(entries)

    async def run(self) -> None:
        await self.start()
        while True:
            await self.step()


async def serve(settings: ClientSettings) -> None:
    """A responder per shard (one without shards), until cancelled."""
    responders = [
        AutoResponder(connect_async(settings, url), settings) for url in settings.shard_urls()
    ]
    await asyncio.gather(*(r.run() for r in responders))


def main() -> None:
    asyncio.run(serve(ClientSettings()))


if __name__ == "__main__":
    main()
