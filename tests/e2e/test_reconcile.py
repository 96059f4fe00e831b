"""The `reconcile` policy: an unanswered send is settled by its echo webhook, not resent."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import pytest

from ig_outbound.emulator import EmulatorControl
from ig_outbound.harness.processes import WorkerProcess
from ig_outbound.producers.enqueue import OutboundClient
from ig_outbound.producers.inbound import record_echo
from ig_outbound.producers.keys import Keys
from tests.e2e.conftest import ACCOUNT_B, USERS, Stack, calls_for, make_intent, wait_registered

PREFIX = "igo-reconcile"


@pytest.fixture(scope="module")
def reconcile_stack(stack: Stack) -> Iterator[Stack]:
    """A second worker fleet (own prefix, own queue) with the reconcile policy."""
    env = {
        "IG_OUTBOUND_REDIS_URL": stack.redis_url,
        "IG_OUTBOUND_KEY_PREFIX": PREFIX,
        "IG_OUTBOUND_GRAPH__BASE_URL": stack.graph_url,
        "IG_OUTBOUND_GRAPH__READ_TIMEOUT_S": "1.0",
        "IG_OUTBOUND_TOKENS": json.dumps(stack.tokens),
        "IG_OUTBOUND_AMBIGUOUS_POLICY": "reconcile",
        "IG_OUTBOUND_RECONCILE_GRACE_S": "3",
    }
    worker = WorkerProcess(env, log_path=stack.worker_log.with_name("reconcile.log")).start()
    keys = Keys(PREFIX)
    wait_registered(stack.redis_url, keys, len(stack.tokens))
    try:
        yield replace(
            stack, keys=keys, settings=stack.settings.model_copy(update={"key_prefix": PREFIX})
        )
    finally:
        worker.stop()


@pytest.fixture
async def rclient(reconcile_stack: Stack) -> AsyncIterator[OutboundClient]:
    async with OutboundClient.connect(reconcile_stack.redis_url, reconcile_stack.settings) as c:
        yield c


async def _wait_state(client: OutboundClient, key: str, state: str) -> None:
    for _ in range(200):
        if await client.state(key) == state:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{key} never reached {state}")


async def test_unanswered_send_is_settled_by_its_echo_without_resending(
    rclient: OutboundClient, reconcile_stack: Stack, control: EmulatorControl, raw_redis: Any,
    new_key: Any,
) -> None:  # fmt: skip
    control.script([{"status": 200, "code": None, "hang_s": 2.0, "ig_id": ACCOUNT_B}])
    text = f"echo me {new_key('t')}"
    intent = make_intent(
        new_key("rec"), {"kind": "text", "text": text}, account_id=ACCOUNT_B,
        recipient={"id": USERS[9]},
    )  # fmt: skip
    await rclient.enqueue(intent)
    await _wait_state(rclient, intent["idempotency_key"], "unconfirmed")
    (call,) = calls_for(control, intent)
    # What the webhook parser does when Meta's echo for that message arrives.
    await record_echo(
        rclient._redis, reconcile_stack.keys, account_id=ACCOUNT_B, recipient_id=USERS[9],
        mid=call["message_id"], timestamp_ms=int(call["arrived_at"] * 1000),
        message={"mid": call["message_id"], "text": text, "is_echo": True},
    )  # fmt: skip
    outcome = await rclient.wait(intent["idempotency_key"], timeout=20)
    assert (outcome.status, outcome.reason) == ("sent", "reconciled")
    assert outcome.message_id == call["message_id"]
    assert len(calls_for(control, intent)) == 1
    assert raw_redis.hget(reconcile_stack.keys.counters, "ambiguous_sends") is None


async def test_unanswered_send_without_echo_is_resent_after_the_grace_period(
    rclient: OutboundClient, reconcile_stack: Stack, control: EmulatorControl, raw_redis: Any,
    new_key: Any,
) -> None:  # fmt: skip
    control.script([{"status": 200, "code": None, "hang_s": 2.0, "ig_id": ACCOUNT_B}])
    intent = make_intent(
        new_key("rec"), {"kind": "text", "text": f"no echo {new_key('t')}"},
        account_id=ACCOUNT_B, recipient={"id": USERS[10]},
    )  # fmt: skip
    await rclient.enqueue(intent)
    outcome = await rclient.wait(intent["idempotency_key"], timeout=30)
    assert outcome.status == "sent" and outcome.reason is None
    record = raw_redis.hgetall(reconcile_stack.keys.record(intent["idempotency_key"]))
    assert record["ambiguous"] == "1"
    assert len(calls_for(control, intent)) == 2
