"""A producer in another language: plain Redis commands, exactly as docs/producers.md says."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from typing import Any

import pytest

from ig_outbound.producers.enqueue import OutboundClient
from tests.e2e.conftest import ACCOUNT_A, USERS, Stack

pytestmark = pytest.mark.slow


@cache
def _script() -> str:
    """What `ig-outbound enqueue-script` gives a Go or Node service (run once, when first
    needed: collecting the fast suite spawns no process)."""
    return subprocess.run(
        [sys.executable, "-m", "ig_outbound.cli", "enqueue-script"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout


def _evalsha(r: Any, stack: Stack, key: str, intent_json: str, account: str = ACCOUNT_A) -> Any:
    p = stack.keys.prefix
    sha = r.execute_command("SCRIPT", "LOAD", _script())
    return r.execute_command(
        "EVALSHA", sha, 4,
        f"{p}:idem:{key}", f"arq:job:{p}:{key}", f"{p}:queue", f"{p}:accounts",
        intent_json, key, account, p, 0, 0, 86_400_000, 604_800_000, 0,
    )  # fmt: skip


async def test_raw_redis_enqueue_is_sent_like_any_other(
    raw_redis: Any, stack: Stack, client: OutboundClient, new_key: Any
) -> None:
    key = new_key("go")
    # Hand-written JSON, as a Go or Node service would produce it (no Python model involved).
    intent_json = (
        f'{{"idempotency_key":"{key}","account_id":"{ACCOUNT_A}","recipient":{{"id":"{USERS[7]}"}},'
        '"content":{"kind":"text","text":"from Go"},"metadata":{"svc":"go"}}'
    )
    assert _evalsha(raw_redis, stack, key, intent_json) == ["queued", f"{stack.keys.prefix}:{key}"]
    assert _evalsha(raw_redis, stack, key, intent_json)[0] == "duplicate"
    conflicting = intent_json.replace("from Go", "from Node")
    assert _evalsha(raw_redis, stack, key, conflicting)[0] == "conflict"
    job = json.loads(raw_redis.get(f"arq:job:{stack.keys.prefix}:{key}"))
    assert job["f"] == "ig_outbound.send" and job["t"] is None and job["k"] == {}
    outcome = await client.wait(key, timeout=20)
    assert outcome.status == "sent"
    assert outcome.metadata == {"svc": "go"}


async def test_raw_redis_refusals_are_machine_readable(
    raw_redis: Any, stack: Stack, client: OutboundClient, new_key: Any
) -> None:
    key = new_key("raw-bad")
    assert _evalsha(raw_redis, stack, key, "{oops")[0] == "invalid"
    other = json.dumps({"idempotency_key": "other", "account_id": ACCOUNT_A})
    assert _evalsha(raw_redis, stack, key, other)[0] == "invalid"
    unknown = json.dumps({"idempotency_key": key, "account_id": "555"})
    assert _evalsha(raw_redis, stack, key, unknown, account="555") == ["unknown_account", "555"]
    # The envelope passes the script but the content is bad: the worker rejects it with reasons.
    bad = json.dumps(
        {"idempotency_key": key, "account_id": ACCOUNT_A, "recipient": {"id": USERS[7]},
         "content": {"kind": "text", "text": ""}}
    )  # fmt: skip
    assert _evalsha(raw_redis, stack, key, bad)[0] == "queued"
    outcome = await client.wait(key, timeout=20)
    assert (outcome.status, outcome.reason) == ("rejected", "invalid_intent")
    assert outcome.reasons[0]["loc"] == "content.text"
