"""Hostile shard settings and a shard that is down, through the commands people run: one
machine-readable line, never a password, and nothing of the live shard lost."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from ig_outbound.harness.env import inherited_env
from ig_outbound.harness.intents import text_intent
from ig_outbound.harness.processes import RedisServer, free_port
from ig_outbound.producers.keys import Keys
from tests.shards.conftest import PREFIX, accounts_on, now_hint, raw

pytestmark = pytest.mark.slow

PASSWORD = "shard-secret-pw"
KEYS = Keys(PREFIX)


def _run(args: list[str], env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ig_outbound.cli", *args],
        env={**inherited_env(), "IG_OUTBOUND_KEY_PREFIX": PREFIX, **env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _lines(done: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    """Every JSON object the command printed (one per line, or pretty-printed)."""
    decoder, text, out = json.JSONDecoder(), done.stdout, []
    at = text.find("{")
    while at != -1:
        value, end = decoder.raw_decode(text, at)
        out.append(value)
        at = text.find("{", end)
    return out


@pytest.mark.parametrize(
    "shards",
    [
        [f"redis://:{PASSWORD}@127.0.0.1:1/0", f"redis://:{PASSWORD}@127.0.0.1:1/0"],
        [f"redis://:{PASSWORD}@127.0.0.1:1/0", ""],
        "not a list",
    ],
    ids=["a-url-twice", "an-empty-url", "not-json"],
)
def test_a_shard_list_that_cannot_work_is_one_line_without_its_urls(shards: Any) -> None:
    value = shards if isinstance(shards, str) else json.dumps(shards)
    done = _run(["status", "some-key"], {"IG_OUTBOUND_SHARDS": value})
    assert done.returncode == 2
    [report] = _lines(done)
    assert report["error"] == "invalid_settings"
    assert report["problems"][0]["setting"].startswith("shards")
    assert PASSWORD not in done.stdout + done.stderr


def test_an_empty_shard_list_is_the_one_redis_url(
    two_redis: tuple[RedisServer, RedisServer],
) -> None:
    done = _run(
        ["status", "nothing-here"],
        {"IG_OUTBOUND_SHARDS": "[]", "IG_OUTBOUND_REDIS_URL": two_redis[0].url},
    )
    assert _lines(done) == [{"key": "nothing-here", "state": None, "error": "unknown_key"}]


def test_send_with_a_shard_down_queues_the_live_shards_intents_and_names_the_dead_one(
    sharded: Any, two_redis: tuple[RedisServer, RedisServer]
) -> None:
    live, dead = two_redis[0], f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0"
    zero, one = accounts_on(0, 1)[0], accounts_on(1, 1)[0]
    raw(live).sadd(KEYS.accounts, zero)
    intents = [
        text_intent("h-0", zero, "1254477777700001", "live", window_hint=now_hint()),
        text_intent("h-1", one, "1254477777700001", "dead", window_hint=now_hint()),
    ]
    env = {
        "IG_OUTBOUND_SHARDS": json.dumps([live.url, dead]),
        "IG_OUTBOUND_REDIS_ALLOW_DATA_LOSS": "true",
        "IG_OUTBOUND_REDIS_CONNECT_TIMEOUT_S": "0.5",
    }
    done = _run(["send", "-"], env, stdin=json.dumps(intents))
    assert done.returncode == 2  # one was refused
    rows = {row["key"]: row for row in _lines(done)}
    assert rows["h-0"]["status"] == "queued"
    assert rows["h-1"]["status"] == "refused"
    assert rows["h-1"]["error"] == "shard_unavailable" and rows["h-1"]["shard"] == 1
    assert PASSWORD not in done.stdout + done.stderr
    assert raw(live).exists(KEYS.record("h-0"))


def test_a_worker_serving_every_shard_stops_when_one_is_unreachable(
    two_redis: tuple[RedisServer, RedisServer],
) -> None:
    """The shard that cannot be reached ends its process with the usual JSON line; the
    parent stops the other shard's worker and exits with that code (an orchestrator
    restarts the set)."""
    dead = f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0"
    env = {
        "IG_OUTBOUND_SHARDS": json.dumps([two_redis[0].url, dead]),
        "IG_OUTBOUND_REDIS_ALLOW_DATA_LOSS": "true",
        "IG_OUTBOUND_TOKENS": json.dumps({accounts_on(0, 1)[0]: "IGAA" + "x" * 30}),
        "IG_OUTBOUND_WORKER__HEARTBEAT_FILE": "/tmp/igo-hostile-shards.alive",
        "IG_OUTBOUND_LOG_LEVEL": "error",
    }
    done = _run(["worker"], env)
    assert done.returncode == 2
    reports = [r for r in _lines(done) if r.get("error") == "redis_unreachable"]
    assert reports and reports[0]["redis"] == f"redis://:***@127.0.0.1:{dead.rsplit(':', 1)[1]}"
    assert PASSWORD not in done.stdout + done.stderr
