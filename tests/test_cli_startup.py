"""A worker whose operations settings cannot work stops at start with one JSON line naming
the setting (exit 2), never a traceback and never half started: a bad URL, an unknown log
level, a metrics port another process holds, an allow-list naming accounts nobody serves.
And the exec probes: `ig-outbound health live|ready`."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ig_outbound.harness.env import inherited_env
from ig_outbound.harness.processes import RedisServer

pytestmark = pytest.mark.slow

ACCOUNT = "17841400000000777"
TOKENS = json.dumps({ACCOUNT: "IGAA-startup-test-token"})


def _run(args: list[str], env: dict[str, str]) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "ig_outbound.cli", *args],
        env={**inherited_env(), "IG_OUTBOUND_REDIS_ALLOW_DATA_LOSS": "true", **env},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def _one_line(done: Any) -> dict[str, Any]:
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, (done.stdout, done.stderr[-2000:])
    report: dict[str, Any] = json.loads(lines[0])
    return report


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"IG_OUTBOUND_LOG_LEVEL": "loud"}, "log_level"),
        ({"IG_OUTBOUND_GRAPH__BASE_URL": "not a url"}, "graph.base_url"),
        ({"IG_OUTBOUND_METRICS_PORT": "70000"}, "metrics_port"),
        ({"IG_OUTBOUND_WORKER__HEARTBEAT_INTERVAL_S": "0"}, "worker.heartbeat_interval_s"),
    ],
)
def test_an_invalid_setting_is_named_in_one_line(env: dict[str, str], setting: str) -> None:
    done = _run(["worker"], {"IG_OUTBOUND_TOKENS": TOKENS, **env})
    assert done.returncode == 2
    report = _one_line(done)
    assert report["error"] == "invalid_settings"
    assert [p["setting"] for p in report["problems"]] == [setting]


def test_a_metrics_port_in_use_stops_the_start(redis_server: RedisServer) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _run(
            ["worker"],
            {
                "IG_OUTBOUND_REDIS_URL": redis_server.url,
                "IG_OUTBOUND_TOKENS": TOKENS,
                "IG_OUTBOUND_METRICS_PORT": str(port),
                "IG_OUTBOUND_METRICS_ADDR": "127.0.0.1",
            },
        )
    assert done.returncode == 2
    report = _one_line(done)
    assert (report["error"], report["setting"]) == ("metrics_port_unavailable", "metrics_port")
    assert str(port) in report["message"]


def test_an_allow_list_naming_unknown_accounts_stops_the_start(redis_server: RedisServer) -> None:
    done = _run(
        ["worker"],
        {
            "IG_OUTBOUND_REDIS_URL": redis_server.url,
            "IG_OUTBOUND_TOKENS": TOKENS,
            "IG_OUTBOUND_METRICS_ACCOUNTS": json.dumps([ACCOUNT, "17841499999999999"]),
        },
    )
    assert done.returncode == 2
    report = _one_line(done)
    assert report["error"] == "invalid_settings"
    [problem] = report["problems"]
    assert problem["setting"] == "metrics_accounts"
    assert "17841499999999999" in problem["msg"] and ACCOUNT not in problem["msg"]


def test_the_liveness_probe_reads_only_the_heartbeat_file(tmp_path: Path) -> None:
    beat = tmp_path / "alive"
    # Redis is nowhere: liveness never asks it.
    env = {
        "IG_OUTBOUND_WORKER__HEARTBEAT_FILE": str(beat),
        "IG_OUTBOUND_REDIS_URL": "redis://127.0.0.1:1/0",
    }
    missing = _run(["health", "live"], env)
    assert (missing.returncode, _one_line(missing)["error"]) == (1, "no_heartbeat")
    beat.touch()
    assert _run(["health", "live"], env).returncode == 0
    old = time.time() - 120
    import os

    os.utime(beat, (old, old))
    stale = _run(["health", "live", "--max-age", "60"], env)
    assert stale.returncode == 1 and _one_line(stale)["ok"] is False
    # Readiness also needs Redis, which is nowhere.
    beat.touch()
    ready = _run(["health", "ready"], env)
    assert (ready.returncode, _one_line(ready)["error"]) == (1, "redis_unavailable")
