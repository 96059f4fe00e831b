"""The echo index (for reconciling ambiguous sends) stays bounded per conversation."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from ig_outbound.producers.inbound import (
    claim_echo,
    message_fingerprint,
    record_echo,
)
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.wire import ECHOES_PER_CONVERSATION

KEYS = Keys("echo")


async def test_a_chatty_conversation_keeps_only_its_newest_echoes(aredis: aioredis.Redis) -> None:
    for n in range(ECHOES_PER_CONVERSATION + 100):
        await record_echo(
            aredis, KEYS, account_id="1", recipient_id="2", mid=f"m{n}",
            timestamp_ms=1_800_000_000_000 + n, message={"text": f"t{n}"},
        )  # fmt: skip
    key = KEYS.echoes("1", "2")
    assert await aredis.zcard(key) == ECHOES_PER_CONVERSATION
    assert await aredis.ttl(key) > 0
    newest = await claim_echo(
        aredis, KEYS, account_id="1", recipient_id="2", since_ms=0,
        fingerprint=message_fingerprint({"text": "t599"}),
    )  # fmt: skip
    assert newest == "m599"


async def test_echoes_older_than_the_retention_are_dropped(aredis: aioredis.Redis) -> None:
    for ts in (1_000, 1_800_000_000_000):
        await record_echo(
            aredis, KEYS, account_id="1", recipient_id="3", mid=str(ts), timestamp_ms=ts,
            message={"text": "x"},
        )  # fmt: skip
    assert await aredis.zcard(KEYS.echoes("1", "3")) == 1


async def test_one_echo_settles_at_most_one_send(aredis: aioredis.Redis) -> None:
    """Two sends of the same text: the first claims the echo; the second finds none until
    its own echo comes, and a mid Graph confirmed for another send is never claimed."""
    fp = message_fingerprint({"text": "same"})
    claim: dict[str, Any] = {
        "account_id": "1",
        "recipient_id": "4",
        "since_ms": 0,
        "fingerprint": fp,
    }
    await record_echo(
        aredis, KEYS, account_id="1", recipient_id="4", mid="a", timestamp_ms=1_800_000_000_000,
        message={"text": "same"},
    )  # fmt: skip
    assert await claim_echo(aredis, KEYS, **claim) == "a"
    assert await claim_echo(aredis, KEYS, **claim) is None
    await aredis.zadd(KEYS.echo_claims("1", "4"), {"b": 1})  # confirmed by Graph for another
    await record_echo(
        aredis, KEYS, account_id="1", recipient_id="4", mid="b", timestamp_ms=1_800_000_000_001,
        message={"text": "same"},
    )  # fmt: skip
    assert await claim_echo(aredis, KEYS, **claim) is None
    await record_echo(
        aredis, KEYS, account_id="1", recipient_id="4", mid="c", timestamp_ms=1_800_000_000_002,
        message={"text": "same"},
    )  # fmt: skip
    assert await claim_echo(aredis, KEYS, **claim) == "c"
