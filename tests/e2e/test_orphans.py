"""No orphaned conversation under a live fleet: a head whose job key vanished (evicted,
expired, dropped) ends with an outcome and the rest of its conversation is sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ig_outbound.emulator import EmulatorControl
from ig_outbound.harness.intents import make_intent
from ig_outbound.producers.enqueue import OutboundClient
from tests.e2e.conftest import ACCOUNT_A, USERS, Stack, calls_for

pytestmark = pytest.mark.slow


async def test_a_head_whose_job_key_vanished_does_not_hold_its_conversation(
    client: OutboundClient, control: EmulatorControl, raw_redis: Any, stack: Stack, new_key: Any
) -> None:
    user = USERS[35]
    later = [
        make_intent(new_key("orphan"), ACCOUNT_A, user, {"kind": "text", "text": f"later {n}"})
        for n in range(3)
    ]
    # The head waits a minute (not_before), so its job sits in the queue: then it vanishes.
    soon = datetime.now(UTC) + timedelta(seconds=60)
    head = make_intent(
        new_key("orphan-head"), ACCOUNT_A, user, {"kind": "text", "text": "head"},
        not_before=soon.isoformat(),
    )  # fmt: skip
    await client.enqueue(head)
    for intent in later:
        await client.enqueue(intent)
    raw_redis.delete(stack.keys.arq_job(head["idempotency_key"]))
    outcome = await client.wait(head["idempotency_key"], timeout=20)
    assert (outcome.status, outcome.reason) == ("failed", "job_lost")
    outcomes = await client.wait_many([i["idempotency_key"] for i in later], timeout=20)
    assert [outcomes[i["idempotency_key"]].status for i in later] == ["sent"] * 3
    assert calls_for(control, head) == []
    # ... and in order.
    sent = [c["body"]["message"]["text"] for c in control.calls()["calls"]
            if c["recipient_id"] == user]  # fmt: skip
    assert sent == ["later 0", "later 1", "later 2"]
