"""The `reconcile` policy: an unanswered send is settled by its echo webhook, not resent."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import pytest

from ig_outbound.emulator import EmulatorControl
from ig_outbound.harness.env import client_view, tuned
from ig_outbound.harness.intents import make_intent
from ig_outbound.harness.processes import WorkerProcess
from ig_outbound.harness.wait import wait_registered, wait_until_async
from ig_outbound.producers.enqueue import OutboundClient
from ig_outbound.producers.inbound import record_echo
from ig_outbound.producers.keys import Keys
from tests.e2e.conftest import ACCOUNT_B, USERS, Stack, calls_for

pytestmark = pytest.mark.slow

PREFIX = "igo-reconcile"


@pytest.fixture(scope="module")
def reconcile_stack(stack: Stack) -> Iterator[Stack]:
    """A second worker fleet (own prefix, own queue) with the reconcile policy."""
    settings = tuned(
        stack.settings, key_prefix=PREFIX, ambiguous_policy="reconcile", reconcile_grace_s=3
    )
    log = stack.worker_log.with_name("reconcile.log")
    worker = WorkerProcess.from_settings(settings, log_path=log).start()
    try:
        wait_registered(settings, len(stack.tokens))
        yield replace(stack, keys=Keys(PREFIX), settings=settings)
    finally:
        worker.stop()


@pytest.fixture
async def rclient(reconcile_stack: Stack) -> AsyncIterator[OutboundClient]:
    settings = client_view(reconcile_stack.settings)
    async with OutboundClient.connect(reconcile_stack.redis_url, settings) as c:
        yield c


async def _wait_state(client: OutboundClient, key: str, state: str) -> None:
    async def reached() -> bool:
        return await client.state(key) == state

    await wait_until_async(reached, 10, f"{key} to reach {state}")


async def test_unanswered_send_is_settled_by_its_echo_without_resending(
    rclient: OutboundClient, reconcile_stack: Stack, control: EmulatorControl, raw_redis: Any,
    new_key: Any,
) -> None:  # fmt: skip
    control.script([{"status": 200, "code": None, "hang_s": 2.0, "ig_id": ACCOUNT_B}])
    text = f"echo me {new_key('t')}"
    intent = make_intent(new_key("rec"), ACCOUNT_B, USERS[9], {"kind": "text", "text": text})
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
        new_key("rec"), ACCOUNT_B, USERS[10], {"kind": "text", "text": f"no echo {new_key('t')}"}
    )
    await rclient.enqueue(intent)
    outcome = await rclient.wait(intent["idempotency_key"], timeout=30)
    assert outcome.status == "sent" and outcome.reason is None
    record = raw_redis.hgetall(reconcile_stack.keys.record(intent["idempotency_key"]))
    assert record["ambiguous"] == "1"
    assert len(calls_for(control, intent)) == 2
