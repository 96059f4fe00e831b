"""ARQ's own CLI (`arq ig_outbound.worker.WorkerSettings`) runs the same worker."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from ig_outbound.harness.env import client_view, process_env, tuned
from ig_outbound.harness.intents import make_intent
from ig_outbound.producers.enqueue import SyncOutboundClient
from tests.e2e.conftest import ACCOUNT_A, USERS, Stack

pytestmark = pytest.mark.slow

PREFIX = "igo-arqcli"


def test_arq_cli_runs_the_worker(stack: Stack, new_key: Any) -> None:
    settings = tuned(stack.settings, key_prefix=PREFIX)
    intent = make_intent(
        new_key("arq-cli"), ACCOUNT_A, USERS[11], {"kind": "text", "text": "via arq"}
    )
    with SyncOutboundClient.connect(stack.redis_url, client_view(settings)) as client:
        # No worker of this prefix has started yet: register the account as one would.
        client._redis.sadd(client.keys.accounts, ACCOUNT_A)
        assert client.enqueue(intent).status == "queued"
        # --burst: ARQ exits once the queue is empty.
        done = subprocess.run(
            [sys.executable, "-m", "arq", "ig_outbound.worker.WorkerSettings", "--burst"],
            env=process_env(settings), capture_output=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        outcome = client.outcome(intent["idempotency_key"])
    assert outcome is not None and outcome.status == "sent"
    assert outcome.message_id is not None
