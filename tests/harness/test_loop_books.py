"""The books of the inbound loop and of a chaos run: what was recorded, which replies are owed,
who was delivered twice and why; and the auto-responder thread the demo runs."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from ig_outbound.harness.errors import LocalStackError
from ig_outbound.harness.ledger import Ledger
from ig_outbound.harness.loop_books import InboundTail, read_outcomes, reply_keys, user_events
from ig_outbound.harness.processes import RedisServer, free_port
from ig_outbound.harness.responder import ResponderThread
from ig_outbound.harness.wait import wait_until
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.settings import ClientSettings

ACCOUNT = "17841400000000951"


@pytest.fixture
def db(redis_server: RedisServer) -> Iterator[Any]:
    r = redis.Redis.from_url(redis_server.url, decode_responses=True)
    yield r
    r.close()


def _entry(db: Any, keys: Keys, kind: str, event_id: str, **event: Any) -> None:
    """An inbound stream entry as the gateway writes it (docs/inbound.md)."""
    body = {"type": kind, "event_id": event_id, "account_id": ACCOUNT, "user_id": "52001", **event}
    fields = {"type": kind, "account": ACCOUNT, "user": "52001", "timestamp_ms": "1000",
              "event_id": event_id, "event": json.dumps(body)}  # fmt: skip
    db.xadd(keys.inbound, fields)


def test_the_tail_reads_each_entry_once_and_owes_replies_to_users_only(db: Any) -> None:
    keys = Keys(f"books-{uuid.uuid4().hex[:8]}")
    tail = InboundTail(db, keys.inbound)
    assert tail.read() == []
    _entry(db, keys, "message", "m1")
    _entry(db, keys, "echo", "m2", from_business=True)
    assert [e.event_id for e in tail.read()] == ["m1", "m2"]
    _entry(db, keys, "comment", "c1", comment_id="c1")
    entries = tail.read()
    assert [e.event_id for e in entries] == ["m1", "m2", "c1"]
    assert entries[0].recorded_ms > 0 and entries[0].timestamp_ms == 1000
    users = user_events(entries)
    assert [e.event_id for e in users] == ["m1", "c1"]
    assert reply_keys(users) == ["m1:reply:0", "c1:reply:0"]


def test_outcomes_are_read_per_key_and_unknown_keys_named(db: Any) -> None:
    keys = Keys(f"books-{uuid.uuid4().hex[:8]}")
    outcome = {"key": "a", "status": "sent", "finished_at": "2026-12-01T00:00:00Z"}
    db.hset(keys.record("a"), mapping={"state": "sent", "outcome": json.dumps(outcome)})
    db.hset(keys.record("b"), mapping={"state": "queued"})
    found, missing = read_outcomes(db, keys, ["a", "b", "c"], chunk=2)
    assert found["a"] is not None and found["a"].status == "sent"
    assert found["b"] is None
    assert missing == ["c"]


def test_the_ledger_names_the_answer_that_made_an_intent_go_twice() -> None:
    ledger = Ledger(
        accepted=["a", "b", "c", "d"],
        statuses=dict.fromkeys("abcd", "sent"),
        ambiguous={"a": 0, "b": 1, "c": 0, "d": 0},
        stream=Counter("abcd"),
        deliveries=Counter({"a": 2, "b": 2, "c": 1, "d": 3}),
        unmapped_calls=0,
        ambiguous_counter=1,
        delivery_faults={
            "a": ["error_5xx_after_send", ""],
            "b": ["", ""],
            "c": ["timeout"],
            "d": ["timeout", "timeout", ""],
        },
    )
    assert ledger.doubled_keys() == ["a", "b", "d"]
    assert ledger.doubled == 3
    assert ledger.doubled_causes() == {"error_5xx_after_send": 1, "none": 1, "timeout": 1}


def test_the_responder_thread_answers_and_says_when_it_caught_up(
    redis_server: RedisServer, db: Any
) -> None:
    settings = ClientSettings(redis_url=redis_server.url, key_prefix=f"rt-{uuid.uuid4().hex[:6]}")
    keys = Keys(settings.key_prefix)
    db.sadd(keys.accounts, ACCOUNT)  # what workers publish: the account is served
    with ResponderThread(settings, block_ms=20) as responder:
        _entry(db, keys, "message", f"mid-{uuid.uuid4().hex}")
        _entry(db, keys, "seen", "seen-1")
        wait_until(responder.caught_up, 10, "the responder to read both entries")
        assert responder.counts == {"queued": 1}  # a read gets no reply
    assert not responder.alive()


def test_a_responder_that_cannot_reach_redis_fails_its_start() -> None:
    nowhere = ClientSettings(
        redis_url=f"redis://127.0.0.1:{free_port()}/0", redis_connect_timeout_s=0.2
    )
    responder = ResponderThread(nowhere)
    with pytest.raises(LocalStackError, match="auto-responder failed"):
        responder.start()
