"""Dead-letter tools at their edges, against a real Redis (no worker): an entry id Redis
would refuse spoils only its own result, and a purge racing a replay leaves no mapping of
a removed entry behind."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
import redis

from ig_outbound.harness.intents import text_intent
from ig_outbound.harness.processes import RedisServer
from ig_outbound.producers.dlq import DeadLetters, valid_entry_id
from ig_outbound.producers.enqueue import EnqueueResult, SyncOutboundClient
from ig_outbound.producers.outcome import Outcome, OutcomeStatus
from ig_outbound.producers.settings import ClientSettings

ACCOUNT = "17841400000000501"
# Passes the `<ms>-<seq>` pattern, but is past 2**64 - 1: Redis refuses it.
TOO_BIG = "99999999999999999999-0"


@pytest.fixture
def dlq(redis_server: RedisServer) -> Iterator[DeadLetters]:
    settings = ClientSettings(
        redis_url=redis_server.url,
        key_prefix=f"dlq-{uuid.uuid4().hex[:8]}",
        redis_allow_data_loss=True,
    )
    client = redis.Redis.from_url(redis_server.url)
    client.sadd(f"{settings.key_prefix}:accounts", ACCOUNT)
    with DeadLetters(client, settings) as letters:
        yield letters


def _dead_letter(dlq: DeadLetters, label: str) -> str:
    """A `failed` dead letter as the worker writes it; returns its entry id."""
    key = f"{label}:{uuid.uuid4().hex}"
    intent = text_intent(key, ACCOUNT, "1254477777700501", label)
    outcome = Outcome(key=key, status=OutcomeStatus.FAILED, finished_at=datetime.now(UTC))
    fields = {"key": key, "status": "failed", "outcome": outcome.model_dump_json(),
              "intent": json.dumps(intent)}  # fmt: skip
    entry_id: Any = dlq._redis.xadd(dlq.keys.dead_letters, fields)  # type: ignore[arg-type]
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


def _mappings(dlq: DeadLetters) -> dict[bytes, bytes]:
    found: Any = dlq._redis.hgetall(dlq.keys.dead_letter_replays)
    return dict(found)


def test_an_id_redis_would_refuse_is_not_an_entry_id() -> None:
    assert not valid_entry_id(TOO_BIG)
    assert not valid_entry_id("1-18446744073709551616")
    assert valid_entry_id("18446744073709551615-18446744073709551615")


def test_one_bad_id_is_refused_alone_and_the_rest_of_the_batch_is_replayed(
    dlq: DeadLetters,
) -> None:
    first, second = _dead_letter(dlq, "first"), _dead_letter(dlq, "second")

    results = dlq.replay([first, TOO_BIG, "garbage", second])

    assert [r.status for r in results] == ["queued", "refused", "refused", "queued"]
    assert [r.error["error"] for r in results if r.error] == ["invalid_entry_id"] * 2
    assert set(_mappings(dlq)) == {first.encode(), second.encode()}


def test_show_and_purge_call_an_id_redis_would_refuse_invalid(dlq: DeadLetters) -> None:
    with pytest.raises(ValueError, match="not a stream entry id"):
        dlq.show(TOO_BIG)
    with pytest.raises(ValueError, match="not a stream entry id"):
        dlq.purge([TOO_BIG])


def test_a_purge_between_enqueue_and_bookkeeping_leaves_no_orphan_mapping(
    dlq: DeadLetters, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The purge lands after the replay enqueued the intent and before it records the
    mapping: the entry is gone, so must its mapping be."""
    raced, kept = _dead_letter(dlq, "raced"), _dead_letter(dlq, "kept")
    enqueue_many = SyncOutboundClient.enqueue_many

    def purge_first(client: SyncOutboundClient, intents: Sequence[Any]) -> list[EnqueueResult]:
        results = enqueue_many(client, intents)
        assert dlq.purge([raced]) == 1
        return results

    monkeypatch.setattr(SyncOutboundClient, "enqueue_many", purge_first)

    results = dlq.replay([raced, kept])

    assert [r.status for r in results] == ["queued", "queued"]
    assert _mappings(dlq) == {kept.encode(): (results[1].new_key or "").encode()}
