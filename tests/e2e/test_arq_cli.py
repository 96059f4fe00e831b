"""ARQ's own CLI (`arq ig_outbound.worker.WorkerSettings`) runs the same worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from ig_outbound.producers.enqueue import SyncOutboundClient
from tests.e2e.conftest import ACCOUNT_A, USERS, Stack, make_intent

PREFIX = "igo-arqcli"


def test_arq_cli_runs_the_worker(stack: Stack, new_key: Any) -> None:
    settings = stack.settings.model_copy(update={"key_prefix": PREFIX})
    intent = make_intent(new_key("arq-cli"), {"kind": "text", "text": "via arq"},
                         recipient={"id": USERS[11]})  # fmt: skip
    with SyncOutboundClient.connect(stack.redis_url, settings) as client:
        # No worker of this prefix has started yet: register the account as one would.
        client._redis.sadd(client.keys.accounts, ACCOUNT_A)
        assert client.enqueue(intent).status == "queued"
        env = {
            **os.environ,
            "IG_OUTBOUND_REDIS_URL": stack.redis_url,
            "IG_OUTBOUND_KEY_PREFIX": PREFIX,
            "IG_OUTBOUND_GRAPH__BASE_URL": stack.graph_url,
            "IG_OUTBOUND_TOKENS": json.dumps(stack.tokens),
        }
        # --burst: ARQ exits once the queue is empty.
        done = subprocess.run(
            [sys.executable, "-m", "arq", "ig_outbound.worker.WorkerSettings", "--burst"],
            env=env, capture_output=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        outcome = client.outcome(intent["idempotency_key"])
    assert outcome is not None and outcome.status == "sent"
    assert outcome.message_id is not None
