"""CLI behaviour that needs no running stack (each test still runs the CLI as a process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ig_outbound.harness.env import inherited_env, settings_env
from ig_outbound.producers.settings import ClientSettings
from ig_outbound.worker.settings import Settings

pytestmark = pytest.mark.slow


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ig_outbound.cli", *args],
        env={**inherited_env(), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


# Nonsense settings are written as raw variables on purpose: no Settings object holds them.


def test_worker_refuses_nonsense_settings_with_every_problem() -> None:
    done = _run(
        ["worker"],
        {"IG_OUTBOUND_WORKER__MAX_JOBS": "0", "IG_OUTBOUND_GRAPH__API_VERSION": "latest"},
    )
    assert done.returncode == 2
    report = json.loads(done.stdout)
    assert report["error"] == "invalid_settings"
    assert {p["setting"] for p in report["problems"]} == {"worker.max_jobs", "graph.api_version"}


def test_worker_refuses_a_malformed_tokens_file_without_printing_tokens(tmp_path: Path) -> None:
    secret = "IGAAsecret-that-must-not-print"
    path = tmp_path / "tokens"
    path.write_text(f"17841400000000001={secret}\nnot a token line\n")
    done = _run(["worker"], settings_env(Settings(tokens_file=path)))
    assert done.returncode == 2
    assert json.loads(done.stdout)["error"] == "invalid_tokens"
    assert secret not in done.stdout + done.stderr


def test_send_refuses_bad_intents_with_machine_readable_errors(tmp_path: Path) -> None:
    path = tmp_path / "intents.json"
    path.write_text(json.dumps([{"idempotency_key": "k", "content": {"kind": "nope"}}]))
    # Refused by validation before any Redis round trip; the URL points nowhere on purpose.
    nowhere = ClientSettings(redis_url="redis://127.0.0.1:1/0")
    done = _run(["send", str(path)], settings_env(nowhere))
    assert done.returncode == 2
    row = json.loads(done.stdout)
    assert row["error"] == "invalid_intent"
    assert {p["loc"] for p in row["problems"]} == {"account_id", "recipient", "content"}


def test_worker_refuses_rate_settings_that_make_no_sense() -> None:
    done = _run(
        ["worker"],
        {
            "IG_OUTBOUND_RATE__LIGHT_PER_S": "0",
            "IG_OUTBOUND_RATE__MEDIA_PER_S": "-5",
            "IG_OUTBOUND_RATE__BURST": "0",
            "IG_OUTBOUND_RATE__UTILIZATION": "1.5",
        },
    )
    assert done.returncode == 2
    report = json.loads(done.stdout)
    assert {p["setting"] for p in report["problems"]} == {
        "rate.light_per_s",
        "rate.media_per_s",
        "rate.burst",
        "rate.utilization",
    }


def test_a_malformed_disclosure_setting_stops_the_worker_naming_it() -> None:
    done = _run(
        ["worker"],
        {
            "IG_OUTBOUND_DISCLOSURE__DEFAULT__LANGUAGE": "fr",
            "IG_OUTBOUND_DISCLOSURE__ACCOUNTS": '{"not-an-id": {"enabled": true}}',
        },
    )
    assert done.returncode == 2
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["error"] == "invalid_settings"
    settings = {p["setting"] for p in report["problems"]}
    assert {"disclosure.default.language", "disclosure.accounts"} <= settings
