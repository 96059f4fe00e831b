"""Logs an operator can use: JSON in production (the default), readable console lines in
development; exactly one line per terminal outcome with its context (key, account, job id,
try, kind, status, reason, latency), never the message text."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from ig_outbound.harness.env import client_view, tuned
from ig_outbound.harness.intents import make_intent
from ig_outbound.harness.processes import WorkerProcess
from ig_outbound.harness.wait import wait_registered, wait_until
from ig_outbound.producers.enqueue import SyncOutboundClient
from tests.e2e.conftest import ACCOUNT_A, USERS, Stack

pytestmark = pytest.mark.slow

SECRET_TEXT = "the-text-nobody-may-log"
CONTEXT = {"key", "account", "job_id", "job_try", "kind", "status", "reason", "latency_ms"}


def _run(stack: Stack, tmp_path: Path, log_format: str) -> tuple[list[str], list[str]]:
    """A worker of its own sends one intent and fails one; its log's lines, and the keys."""
    prefix = f"logs-{uuid.uuid4().hex[:8]}"
    settings = tuned(stack.settings, key_prefix=prefix, log_format=log_format, log_level="info")
    log = tmp_path / f"{log_format}.log"
    worker = WorkerProcess.from_settings(settings, log_path=log).start()
    keys = [f"{prefix}:sent", f"{prefix}:failed"]
    try:
        wait_registered(settings, len(stack.tokens))
        intents = [
            make_intent(keys[0], ACCOUNT_A, USERS[20], {"kind": "text", "text": SECRET_TEXT}),
            make_intent(keys[1], ACCOUNT_A, "99999999977", {"kind": "text", "text": SECRET_TEXT}),
        ]
        with SyncOutboundClient.connect(stack.redis_url, client_view(settings)) as client:
            client.enqueue_many(intents)
            client.wait_many(keys, 30)
        # Lines are written by a background thread: wait until both outcomes are out.
        wait_until(lambda: log.read_text().count(keys[1]) >= 1, 10, "the outcome lines", 0.1)
    finally:
        worker.stop()
    return log.read_text().splitlines(), keys


def test_json_logs_have_one_line_per_outcome_with_its_context(stack: Stack, tmp_path: Path) -> None:
    lines, keys = _run(stack, tmp_path, "json")
    records = [json.loads(line) for line in lines if line.startswith("{")]
    outcomes = [r for r in records if r.get("event") == "outcome"]
    assert sorted(r["key"] for r in outcomes) == sorted(keys)  # one each, no more
    by_key = {r["key"]: r for r in outcomes}
    assert by_key[keys[0]]["status"] == "sent"
    assert (by_key[keys[1]]["status"], by_key[keys[1]]["reason"]) == ("failed", "no_matching_user")
    for record in outcomes:
        assert record.keys() >= CONTEXT, record
        assert record["account"] == ACCOUNT_A and record["kind"] == "text"
        assert record["job_try"] >= 1 and record["job_id"].endswith(record["key"])
    assert not any(SECRET_TEXT in line for line in lines)
    assert not any(token in line for line in lines for token in stack.tokens.values())


def test_console_logs_are_readable_lines(stack: Stack, tmp_path: Path) -> None:
    lines, keys = _run(stack, tmp_path, "console")
    outcome_lines = [line for line in lines if " outcome " in line]
    assert len(outcome_lines) == 2
    assert not any(line.startswith("{") for line in lines)  # not JSON
    failed = next(line for line in outcome_lines if keys[1] in line)
    assert "status=failed" in failed and "reason=no_matching_user" in failed
    assert not any(SECRET_TEXT in line for line in lines)
