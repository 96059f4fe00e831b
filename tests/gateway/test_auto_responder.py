"""The example auto-responder: a burst of inbound events answered in one batch, keys derived
from the events' identities (a redelivery or a re-read enqueues nothing new)."""

from __future__ import annotations

import uuid
from typing import Any

from ig_outbound.producers.examples.auto_responder import AutoResponder, replies_for
from tests.gateway.conftest import ACCOUNT, USER, Bench, body_of, message


def _item(kind: str, body: dict[str, Any], ts: int = 1_800_000_000_000) -> dict[str, Any]:
    return {
        "object": "instagram",
        "entry": [
            {
                "id": ACCOUNT,
                "time": ts,
                "messaging": [
                    {"sender": {"id": USER}, "recipient": {"id": ACCOUNT}, "timestamp": ts,
                     kind: body}
                ],
            }
        ],
    }  # fmt: skip


async def test_a_burst_is_answered_in_one_batch_once(bench: Bench) -> None:
    responder = AutoResponder(bench.redis, bench.gateway.settings, consumer="t")
    await responder.start()
    now_ms = int((await bench.redis.time())[0]) * 1000
    bodies = [
        body_of(message(f"dm-{uuid.uuid4().hex}", ts=now_ms + n)) for n in range(20)
    ] + [
        body_of(_item("postback", {"mid": "pb-1", "title": "Track", "payload": "TRACK"}, now_ms)),
        body_of(_item("reaction", {"mid": "m1", "action": "react", "reaction": "love"}, now_ms)),
        body_of(_item("read", {"mid": "our-mid"}, now_ms)),
    ]  # fmt: skip
    for body in bodies:  # the bench's backlog holds 5: process as they come
        assert (await bench.deliver(body)).status_code == 200
        await bench.process()
    assert await responder.step(block_ms=None) == 23
    assert responder.counts == {"queued": 22}  # the read gets no reply
    # The same webhooks again (Meta redelivers): nothing new reaches the stream or the queue.
    for body in bodies:
        assert (await bench.deliver(body)).status_code == 200
        await bench.process()
    assert await responder.step(block_ms=None) == 0
    assert responder.counts == {"queued": 22}


def test_replies_are_keyed_on_the_event_and_echoes_get_none() -> None:
    event = {"type": "message", "event_id": "aWdf", "account_id": "1", "user_id": "2"}
    (reply,) = replies_for(event)
    assert reply["idempotency_key"] == "aWdf:reply:0" and reply["recipient"] == {"id": "2"}
    assert replies_for({**event, "type": "echo", "from_business": True}) == []
    assert replies_for({**event, "is_deleted": True}) == []
    comment = {**event, "type": "comment", "comment_id": "179"}
    assert replies_for(comment)[0]["recipient"] == {"comment_id": "179"}
