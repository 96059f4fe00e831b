"""Two shards, real workers and the Graph emulator: every intent is sent exactly once from
its account's shard, and outcomes, the DLQ and `top` see both shards.

Shard 0 is served by a worker told to serve it (`--shard 0` in the environment's form);
shard 1 by a default worker, which serves every shard (one child process per shard), so
shard 0 has two workers and shard 1 one."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from ig_outbound.emulator import EmulatorConfig, EmulatorControl, run_emulator_process
from ig_outbound.emulator.config import AccountConfig
from ig_outbound.harness.env import client_view, fleet_settings, process_env, tuned
from ig_outbound.harness.intents import text_intent
from ig_outbound.harness.processes import RedisServer, WorkerProcess
from ig_outbound.harness.wait import wait_registered
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.sharded import SyncShardedOutboundClient
from ig_outbound.producers.shards import shard_of, shard_settings
from ig_outbound.worker.settings import Settings
from tests.shards.conftest import accounts_on, raw

pytestmark = pytest.mark.slow

PREFIX = "igo-2shards"
ACCOUNTS = accounts_on(0, 2, start=500) + accounts_on(1, 2, start=500)
KEYS = Keys(PREFIX)


@dataclass(frozen=True)
class TwoShards:
    servers: tuple[RedisServer, RedisServer]
    settings: Settings
    control: EmulatorControl


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoShards]:
    tokens = {a: "IGAA" + secrets.token_urlsafe(24) for a in ACCOUNTS}
    emulator = EmulatorConfig(
        accounts=[
            AccountConfig(ig_id=a, token=t, username=f"s{a[-3:]}") for a, t in tokens.items()
        ],
        allow_any_recipient=True,
    )
    logs = tmp_path_factory.mktemp("two-shards")
    with (
        RedisServer() as a,
        RedisServer() as b,
        run_emulator_process(emulator) as graph_url,
    ):
        settings = fleet_settings(
            redis_url=a.url,
            key_prefix=PREFIX,
            graph_url=graph_url,
            tokens=tokens,
            shards=[a.url, b.url],
            log_level="warning",
            redis_allow_data_loss=True,
            retry={"backoff_base_s": 0.05},
            media={"probe": False},
            accounts={"encryption_keys": [SecretStr(Fernet.generate_key().decode())]},
        )
        only_zero = tuned(settings, worker={"shards": [0]})
        workers = [
            WorkerProcess.from_settings(only_zero, log_path=logs / "shard0.log").start(),
            WorkerProcess.from_settings(settings, log_path=logs / "all.log").start(),
        ]
        try:
            for index in (0, 1):
                wait_registered(shard_settings(settings, index), 2)
            with EmulatorControl(graph_url) as control:
                yield TwoShards((a, b), settings, control)
        finally:
            codes = [w.stop(grace_s=10) for w in workers]
        assert codes == [0, 0], codes


def _cli(stack: TwoShards, *args: str, **env: str) -> Any:
    done = subprocess.run(
        [sys.executable, "-m", "ig_outbound.cli", *args],
        env={**process_env(stack.settings), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode in (0, 2), done.stderr[-2000:]
    return json.loads(done.stdout)


def test_each_shard_holds_only_its_accounts(stack: TwoShards) -> None:
    for index, server in enumerate(stack.servers):
        registered = raw(server).smembers(KEYS.accounts)
        assert registered == {a for a in ACCOUNTS if shard_of(a, 2) == index}


def test_every_intent_is_sent_once_and_outcomes_dlq_and_top_see_both_shards(
    stack: TwoShards,
) -> None:
    run = uuid.uuid4().hex[:8]
    # One permanent refusal per shard: a dead letter on each.
    failing = [accounts_on(0, 1, start=500)[0], accounts_on(1, 1, start=500)[0]]
    stack.control.script(
        [{"status": 400, "code": 100, "subcode": 2018001, "ig_id": a} for a in failing]
    )
    intents = [
        text_intent(f"{run}:{a}:{i}", a, f"7{i % 10:04d}", f"{run} {a} {i}")
        for a in ACCOUNTS
        for i in range(60)
    ]
    keys = [i["idempotency_key"] for i in intents]
    with SyncShardedOutboundClient.connect(client_view(stack.settings)) as client:
        results = client.enqueue_many(intents)
        assert {r.status for r in results} == {"queued"}
        outcomes = client.wait_many(keys, timeout=120)
    by_status = Counter(o.status for o in outcomes.values())
    assert by_status == {"sent": len(intents) - 2, "failed": 2}
    failed_accounts = sorted(o.account_id or "" for o in outcomes.values() if o.status == "failed")
    assert failed_accounts == sorted(failing)

    # Every sent intent reached Graph exactly once (the refused two are not delivered).
    texts = Counter(
        c["body"]["message"]["text"]
        for c in stack.control.calls()["calls"]
        if run in str(c["body"].get("message", {}).get("text", ""))
    )
    sent = {
        i["content"]["text"] for i in intents if outcomes[i["idempotency_key"]].status == "sent"
    }
    assert set(texts) == sent and set(texts.values()) == {1}

    # Each outcome was written on its account's shard, and only there.
    for server_index, server in enumerate(stack.servers):
        r = raw(server)
        mine = [i for i in intents if shard_of(i["account_id"], 2) == server_index]
        assert all(r.hget(KEYS.record(i["idempotency_key"]), "outcome") for i in mine)
        others = [i for i in intents if shard_of(i["account_id"], 2) != server_index]
        assert not any(r.exists(KEYS.record(i["idempotency_key"])) for i in others)

    listed = _cli(stack, "dlq", "list")
    assert sorted(e["shard"] for e in listed["entries"]) == [0, 1]
    one = _cli(stack, "dlq", "list", "--shard", "1")
    assert [e["shard"] for e in one["entries"]] == [1]
    entry = one["entries"][0]
    assert _cli(stack, "dlq", "show", entry["entry_id"])["key"] == entry["key"]
    refused = _cli(stack, "dlq", "replay", entry["entry_id"])
    assert refused["error"] == "shard_required"
    dry = _cli(stack, "dlq", "replay", "--all", "--dry-run")
    assert sorted(r["shard"] for r in dry["results"]) == [0, 1]

    status = _cli(stack, "status", keys[-1])
    assert status["state"] == "sent"

    top = _cli(stack, "top", "--json", "--window", "300")
    assert [s["shard"] for s in top["shards"]] == [0, 1]
    assert top["outcomes"]["sent"] == sum(s["outcomes"]["sent"] for s in top["shards"])
    assert top["outcomes"]["sent"] >= len(intents) - 2
    assert top["workers"] == 3  # two on shard 0, one on shard 1
    assert top["dead_letters"] == 2


def test_a_worker_told_to_serve_a_shard_that_does_not_exist_says_so(
    stack: TwoShards, tmp_path: Path
) -> None:
    env = {**process_env(stack.settings), "IG_OUTBOUND_WORKER__SHARDS": "[2]"}
    done = subprocess.run(
        [sys.executable, "-m", "ig_outbound.cli", "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["error"] == "invalid_settings"
    assert "shard 2 does not exist" in json.dumps(report)


def test_an_account_added_at_run_time_lives_on_its_shard_and_sends(stack: TwoShards) -> None:
    account = accounts_on(1, 1, start=900)[0]
    token = "IGAA" + secrets.token_urlsafe(24)
    stack.control.add_account(account, token, "added1")
    added = _cli(stack, "accounts", "add", "--token-env", "NEW_TOKEN", NEW_TOKEN=token)
    assert added["account"]["account_id"] == account, added
    zero, one = raw(stack.servers[0]), raw(stack.servers[1])
    assert one.exists(KEYS.account(account)) and not zero.exists(KEYS.account(account))
    assert one.sismember(KEYS.accounts, account) and not zero.sismember(KEYS.accounts, account)
    listed = {a["account_id"] for a in _cli(stack, "accounts", "list", "--json")}
    assert listed == {*ACCOUNTS, account}  # both shards' registries
    assert _cli(stack, "accounts", "show", account)["account_id"] == account

    intent = text_intent(f"added-{uuid.uuid4().hex[:8]}", account, "70001", "to the new one")
    with SyncShardedOutboundClient.connect(client_view(stack.settings)) as client:
        # The shard-1 worker reads its registry within a poll: then the token is there.
        assert client.enqueue(intent).status == "queued"
        assert client.wait(intent["idempotency_key"], timeout=60).status == "sent"

    removed = _cli(stack, "accounts", "remove", account)
    assert removed, removed
    assert not one.sismember(KEYS.accounts, account)
    assert zero.scard(KEYS.accounts) == 2  # the other shard is untouched


def test_the_readiness_probe_pings_every_shard_the_worker_serves(stack: TwoShards) -> None:
    for served in ("[0]", "[1]", "[]"):
        done = subprocess.run(
            [sys.executable, "-m", "ig_outbound.cli", "health", "ready"],
            env={**process_env(stack.settings), "IG_OUTBOUND_WORKER__SHARDS": served},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, (served, done.stdout, done.stderr[-1000:])
        assert json.loads(done.stdout)["redis"] == "ok"
