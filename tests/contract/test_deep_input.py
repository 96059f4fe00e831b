"""Input nested deeper than Python's stack (or NaN/inf) is an `IntentError`, never a
traceback, and one such item does not sink a batch."""

from __future__ import annotations

import math

import pytest
import redis.asyncio as aioredis

from ig_outbound.harness.intents import make_intent
from ig_outbound.producers.enqueue import OutboundClient
from ig_outbound.producers.errors import IntentError
from ig_outbound.producers.settings import ClientSettings
from ig_outbound.producers.validation import parse_intent

DEEP_TEXT = '{"idempotency_key": "deep", "metadata": ' + "[" * 100_000 + "]" * 100_000 + "}"


@pytest.mark.parametrize("data", [DEEP_TEXT, DEEP_TEXT.encode(), "[" * 50_000])
def test_deep_json_text_is_an_intent_error(data: str | bytes) -> None:
    with pytest.raises(IntentError):
        parse_intent(data)


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_refused_from_the_python_client(number: float) -> None:
    with pytest.raises(IntentError, match="metadata"):
        parse_intent(make_intent("nan", "1", "2", {"kind": "sticker"}, metadata={"n": number}))


async def test_one_deep_item_does_not_sink_a_batch(aredis: aioredis.Redis) -> None:
    client = OutboundClient(aredis, ClientSettings(key_prefix="deep"))
    await client.register_accounts(["1"])
    good = make_intent("good", "1", "2", {"kind": "sticker"})
    bad, ok = await client.enqueue_many([DEEP_TEXT, good])
    assert bad.status == "refused" and isinstance(bad.error, IntentError)
    assert ok.status == "queued"
