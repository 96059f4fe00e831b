"""`ig-outbound send` and `ig-outbound status` against the running stack."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ig_outbound.harness.env import client_view, process_env
from ig_outbound.harness.intents import make_intent
from tests.e2e.conftest import ACCOUNT_A, USERS, Stack

pytestmark = pytest.mark.slow


def _cli(stack: Stack, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = process_env(client_view(stack.settings))
    return subprocess.run(
        [sys.executable, "-m", "ig_outbound.cli", *args],
        env=env, input=stdin, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def _documents(text: str) -> list[Any]:
    decoder, docs, at = json.JSONDecoder(), [], 0
    while at < len(text):
        if text[at].isspace():
            at += 1
            continue
        doc, at = decoder.raw_decode(text, at)
        docs.append(doc)
    return docs


def test_send_waits_for_outcomes_and_status_reports_them(
    stack: Stack, tmp_path: Path, new_key: Any
) -> None:
    good = make_intent(new_key("cli"), ACCOUNT_A, USERS[12], {"kind": "sticker"})
    bad = make_intent(new_key("cli-bad"), ACCOUNT_A, USERS[0], {"kind": "text", "text": ""})
    path = tmp_path / "intents.json"
    path.write_text(json.dumps([good, bad]))
    done = _cli(stack, "send", str(path), "--wait", "20")
    assert done.returncode == 2  # one was refused
    rows = _documents(done.stdout)
    assert rows[0]["status"] == "queued" and rows[0]["outcome"]["status"] == "sent"
    assert rows[1]["status"] == "refused" and rows[1]["error"] == "invalid_intent"
    status = _cli(stack, "status", good["idempotency_key"])
    assert status.returncode == 0
    report = json.loads(status.stdout)
    assert report["state"] == "sent" and report["outcome"]["message_id"]
    unknown = _cli(stack, "status", "never-enqueued")
    assert unknown.returncode == 1 and json.loads(unknown.stdout)["error"] == "unknown_key"


def test_send_reads_stdin(stack: Stack, new_key: Any) -> None:
    intent = make_intent(new_key("cli-stdin"), ACCOUNT_A, USERS[13], {"kind": "typing_on"})
    done = _cli(stack, "send", "-", stdin=json.dumps(intent))
    assert done.returncode == 0, done.stdout + done.stderr
    assert _documents(done.stdout)[0]["status"] == "queued"
