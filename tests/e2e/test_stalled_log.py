"""A worker whose stderr nobody reads keeps sending (logging never blocks the event loop).

Before, log lines were written to stderr synchronously: once the pipe's buffer (64 KB) was
full the whole worker stopped (seen: stuck at 161 of 600 sends), long enough for its jobs to
be taken over as ambiguous."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from ig_outbound.harness.env import process_env, tuned
from ig_outbound.harness.intents import make_intent
from ig_outbound.harness.wait import wait_registered
from ig_outbound.producers.enqueue import OutboundClient
from tests.e2e.conftest import ACCOUNT_B, USERS, Stack

pytestmark = pytest.mark.slow

INTENTS = 600


async def test_a_worker_with_an_unread_stderr_pipe_sends_everything(stack: Stack) -> None:
    settings = tuned(stack.settings, key_prefix=f"pipe-{uuid.uuid4().hex[:8]}", log_level="debug")
    worker = subprocess.Popen(  # noqa: ASYNC220 (starts once; nothing waits on it here)
        [sys.executable, "-m", "ig_outbound.cli", "worker"],
        env=process_env(settings),
        stdout=subprocess.PIPE,  # never read: the pipe fills after 64 KB
        stderr=subprocess.STDOUT,
    )
    try:
        wait_registered(settings, 4)
        intents = [
            make_intent(f"pipe-{n}", ACCOUNT_B, USERS[n % 30], {"kind": "sticker"})
            for n in range(INTENTS)
        ]
        async with OutboundClient.connect(stack.redis_url, settings) as client:
            await client.enqueue_many(intents)
            outcomes = await client.wait_many([i["idempotency_key"] for i in intents], 120)
        assert {o.status for o in outcomes.values()} == {"sent"}
        assert worker.poll() is None
    finally:
        worker.kill()
        worker.communicate(timeout=10)
