"""The CLI when Redis cannot be used, and settings that must not echo their values: every
command answers with one JSON line (the Redis URL shown without its password) and a
non-zero exit, never a traceback. Each case runs the CLI as a process, against nothing,
or a real redis-server that wants a password."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ig_outbound.harness.env import inherited_env
from ig_outbound.harness.intents import text_intent
from ig_outbound.harness.processes import RedisServer

pytestmark = pytest.mark.slow

PASSWORD = "right-horse-battery"
WRONG = "wrong-staple-secret"
# Nobody listens on port 1: a refused connection, at once.
NOWHERE = "redis://:nowhere-secret@127.0.0.1:1/0"


def _run(args: list[str], env: dict[str, str], module: str = "ig_outbound.cli") -> Any:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        env={**inherited_env(), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _one_line(done: Any) -> dict[str, Any]:
    """The command's whole output: one JSON line on stdout, nothing on stderr."""
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and done.stderr == "", (done.stdout, done.stderr[-3000:])
    report: dict[str, Any] = json.loads(lines[0])
    return report


@pytest.fixture(scope="module")
def intent_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "intent.json"
    path.write_text(json.dumps(text_intent("cli-k1", "17841400000000001", "1254477", "hi")))
    return path


@pytest.fixture(scope="module")
def locked_redis() -> Iterator[RedisServer]:
    with RedisServer(extra_args=["--requirepass", PASSWORD]) as server:
        yield server


COMMANDS: dict[str, list[str]] = {
    "send": ["send", "INTENT_FILE"],
    "status": ["status", "cli-k1"],
    "dlq list": ["dlq", "list"],
    "dlq show": ["dlq", "show", "1-0"],
    "dlq replay": ["dlq", "replay", "1-0"],
    "dlq purge": ["dlq", "purge", "--older-than", "7d"],
    "worker": ["worker"],
}


@pytest.mark.parametrize("args", COMMANDS.values(), ids=COMMANDS.keys())
def test_an_unreachable_redis_is_one_line_naming_it_without_its_password(
    args: list[str], intent_file: Path
) -> None:
    args = [str(intent_file) if a == "INTENT_FILE" else a for a in args]
    done = _run(args, {"IG_OUTBOUND_REDIS_URL": NOWHERE})
    assert done.returncode == 2
    report = _one_line(done)
    assert report["error"] == "redis_unreachable"
    assert report["redis"] == "redis://:***@127.0.0.1:1/0"
    assert "nowhere-secret" not in done.stdout + done.stderr


CREDENTIALS = {"wrong password": f":{WRONG}@", "no password": ""}


@pytest.mark.parametrize("auth", CREDENTIALS.values(), ids=CREDENTIALS.keys())
def test_a_worker_whose_credentials_redis_refuses_stops_with_one_line(
    auth: str, locked_redis: RedisServer
) -> None:
    url = f"redis://{auth}127.0.0.1:{locked_redis.port}/0"
    done = _run(["worker"], {"IG_OUTBOUND_REDIS_URL": url})
    assert done.returncode == 2
    report = _one_line(done)
    assert report["error"] == "redis_auth_failed"
    assert report["redis"] == url.replace(WRONG, "***")
    assert WRONG not in done.stdout + done.stderr


def test_a_dlq_command_whose_credentials_redis_refuses_says_so(locked_redis: RedisServer) -> None:
    url = f"redis://:{WRONG}@127.0.0.1:{locked_redis.port}/0"
    done = _run(["dlq", "list"], {"IG_OUTBOUND_REDIS_URL": url})
    assert done.returncode == 2
    assert _one_line(done)["error"] == "redis_auth_failed"


SECRET = "IGAAplanted-secret-token-value"
MALFORMED_TOKENS = {
    "a list of tokens": f'["{SECRET}"]',
    "a token in a list": f'{{"17841400000000001": ["{SECRET}"]}}',
    "a number beside a token": f'{{"17841400000000001": "{SECRET}", "17841400000000002": 5}}',
    "not JSON": f"17841400000000001={SECRET}",
    "a trailing comma": f'{{"17841400000000001": "{SECRET}",}}',
}
RUNS = {
    "arq --check": (["ig_outbound.worker.WorkerSettings", "--check"], "arq"),
    "worker": (["worker"], "ig_outbound.cli"),
    "dlq list": (["dlq", "list"], "ig_outbound.cli"),
}


@pytest.mark.parametrize("tokens", MALFORMED_TOKENS.values(), ids=MALFORMED_TOKENS.keys())
@pytest.mark.parametrize("run", RUNS.values(), ids=RUNS.keys())
def test_malformed_tokens_are_reported_without_their_values(
    tokens: str, run: tuple[list[str], str]
) -> None:
    args, module = run
    done = _run(args, {"IG_OUTBOUND_TOKENS": tokens, "IG_OUTBOUND_REDIS_URL": NOWHERE}, module)
    assert done.returncode != 0
    assert SECRET not in done.stdout + done.stderr
    if module == "ig_outbound.cli" and args == ["worker"]:
        report = _one_line(done)
        assert report["error"] == "invalid_settings"
        assert report["problems"][0]["setting"].startswith("tokens")


def test_a_metrics_address_that_is_no_ip_address_stops_the_start_with_one_line() -> None:
    done = _run(["worker"], {"IG_OUTBOUND_METRICS_ADDR": "all-interfaces"})
    assert done.returncode == 2
    report = _one_line(done)
    assert report["error"] == "invalid_settings"
    assert [p["setting"] for p in report["problems"]] == ["metrics_addr"]


@pytest.mark.parametrize("age", ["99999999999999w", "1" * 5000 + "d", "36501d"])
def test_a_purge_age_beyond_any_entry_is_a_clear_error(age: str) -> None:
    done = _run(["dlq", "purge", "--older-than", age], {"IG_OUTBOUND_REDIS_URL": NOWHERE})
    assert done.returncode == 2
    assert json.loads(done.stdout)["error"] == "invalid_duration"
    assert done.stderr == ""
