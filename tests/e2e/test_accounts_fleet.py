"""Accounts and tokens across a fleet of real processes (issue 11): a private Redis, the
emulator, three `ig-outbound worker` processes reading a tokens file and the registry, and
`ig-outbound accounts` run as an operator runs it.

Onboarding needs no restart; the tokens file is hot-reloaded under load without a lost
intent or a send without a valid token; a refresh racing sends that Graph then refuses with
the old token stops nothing; a removed account's queued intents end `failed`; SIGHUP reloads
at once; and no token, given or refreshed, appears in Redis, a log or a command's output."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from pydantic import SecretStr

from ig_outbound.accounts.cipher import fingerprint, new_key
from ig_outbound.emulator import (
    AccountConfig,
    EmulatorConfig,
    EmulatorControl,
    run_emulator_process,
)
from ig_outbound.harness.env import client_view, fleet_settings, process_env, tuned
from ig_outbound.harness.intents import text_intent
from ig_outbound.harness.leaks import redis_blobs
from ig_outbound.harness.processes import RedisServer, WorkerProcess
from ig_outbound.harness.wait import wait_until
from ig_outbound.producers.enqueue import SyncOutboundClient
from ig_outbound.producers.outcome import Outcome
from ig_outbound.worker.settings import Settings

pytestmark = pytest.mark.slow

PREFIX = "igo-accounts"
DAY = 86_400
FILE_ACCOUNT = "17841400000000601"  # from the tokens file
RACE_ACCOUNT = "17841400000000602"  # added with `accounts add`, refreshed under load
GONE_ACCOUNT = "17841400000000603"  # removed with intents queued
NEW_ACCOUNT = "17841400000000604"  # onboarded while the fleet runs
HUP_ACCOUNT = "17841400000000605"  # the SIGHUP worker's
ACCOUNTS = [FILE_ACCOUNT, RACE_ACCOUNT, GONE_ACCOUNT, NEW_ACCOUNT, HUP_ACCOUNT]
USERS = [f"12544777779{n:05d}" for n in range(40)]
TOKEN_SHAPED = re.compile(rb"IGAA[A-Za-z0-9_\-]{16,}")


def _age(account: str) -> float:
    return 3600.0 if account in (FILE_ACCOUNT, HUP_ACCOUNT) else 3.0 * DAY


def _refused_tokens(control: EmulatorControl) -> int:
    """Graph calls the emulator refused with a token error (190, any subcode)."""
    refused = control.stats()["rejected_by_error"]
    return sum(n for error, n in refused.items() if error.split("/")[0] == "190")


def _token() -> str:
    return "IGAA" + secrets.token_urlsafe(32)


@dataclass
class Fleet:
    redis_url: str
    control: EmulatorControl
    settings: Settings
    tokens_file: Path
    log_dir: Path
    given: dict[str, str]  # every token the tests handed out (for the leak scan)
    outputs: list[str] = field(default_factory=list)  # every CLI output
    workers: list[WorkerProcess] = field(default_factory=list)

    def start_worker(self, settings: Settings | None = None) -> WorkerProcess:
        log = self.log_dir / f"worker-{len(self.workers)}.log"
        worker = WorkerProcess.from_settings(settings or self.settings, log_path=log).start()
        self.workers.append(worker)
        return worker

    def client(self) -> SyncOutboundClient:
        return SyncOutboundClient.connect(self.redis_url, client_view(self.settings))

    def cli(self, *args: str, stdin: str | None = None, **env: str) -> tuple[int, Any]:
        done = subprocess.run(
            [sys.executable, "-m", "ig_outbound.cli", "accounts", *args],
            env={**process_env(self.settings), **env},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.outputs += [done.stdout, done.stderr]
        try:
            return done.returncode, json.loads(done.stdout)
        except json.JSONDecodeError:
            return done.returncode, done.stdout

    def entry(self, account: str) -> dict[str, str]:
        r = redis.Redis.from_url(self.redis_url, decode_responses=True)
        try:
            return r.hgetall(f"{PREFIX}:acct:{account}")  # type: ignore[return-value]
        finally:
            r.close()

    def run(self, intents: list[dict[str, Any]], timeout: float = 60.0) -> dict[str, Outcome]:
        with self.client() as client:
            client.enqueue_many(intents)
            return client.wait_many([i["idempotency_key"] for i in intents], timeout)


def _texts(account: str, count: int, label: str) -> list[dict[str, Any]]:
    run = uuid.uuid4().hex[:8]
    return [
        text_intent(f"{label}:{run}:{n}", account, USERS[n % len(USERS)], f"{label} {n}")
        for n in range(count)
    ]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    given = {account: _token() for account in ACCOUNTS}
    config = EmulatorConfig(
        # The file's tokens are under a day old: Graph refuses to refresh them yet, so the
        # workers send with exactly the tokens the file gives them.
        accounts=[
            AccountConfig(ig_id=a, token=t, username=f"u{a[-3:]}", token_age_s=_age(a))
            for a, t in given.items()
        ],
        users={account: USERS for account in ACCOUNTS},
    )
    log_dir = tmp_path_factory.mktemp("accounts-e2e")
    tokens_file = log_dir / "tokens.json"
    tokens_file.write_text(json.dumps({FILE_ACCOUNT: given[FILE_ACCOUNT]}))
    with (
        RedisServer() as server,
        run_emulator_process(config) as graph_url,
        EmulatorControl(graph_url) as control,
    ):
        settings = fleet_settings(
            redis_url=server.url,
            key_prefix=PREFIX,
            graph_url=graph_url,
            tokens={},
            tokens_file=tokens_file,
            accounts={
                "encryption_keys": [SecretStr(new_key())],
                "poll_s": 0.3,
                "refresh_check_s": 0.5,
                "refresh_retry_base_s": 2.0,
            },
            ambiguous_policy="resend",
            retry={"backoff_base_s": 0.05, "backoff_cap_s": 0.5, "account_pause_s": 0.5},
            log_level="debug",
        )
        stack = Fleet(server.url, control, settings, tokens_file, log_dir, dict(given))
        for _ in range(3):
            stack.start_worker()
        try:
            wait_until(lambda: stack.entry(FILE_ACCOUNT).get("source") == "file", 20, "the file")
            yield stack
        finally:
            for worker in stack.workers:
                worker.stop()
        _no_token_anywhere(stack, server.url)


def _leaks(blob: bytes, given: list[bytes]) -> bool:
    return bool(TOKEN_SHAPED.search(blob)) or any(token in blob for token in given)


@pytest.fixture(scope="module")
def control(fleet: Fleet) -> EmulatorControl:
    """This module's emulator (the e2e conftest's autouse fixture calms it after each test)."""
    return fleet.control


def _no_token_anywhere(fleet: Fleet, redis_url: str) -> None:
    """No token handed out, nor any token-shaped string (refreshed tokens are the
    emulator's, unknown to us), in Redis, a worker's log or a command's output."""
    r = redis.Redis.from_url(redis_url)
    try:
        places = {"redis": b"\n".join(redis_blobs(r))}
    finally:
        r.close()
    places |= {p.name: p.read_bytes() for p in fleet.log_dir.glob("*.log")}
    places["cli output"] = "\n".join(fleet.outputs).encode()
    assert len(places["redis"]) > 1000 and max(len(v) for v in places.values()) > 1000
    given = [t.encode() for t in fleet.given.values()]
    leaks = [where for where, blob in places.items() if _leaks(blob, given)]
    if leaks:
        pytest.fail("TOKENS LEAKED: " + "; ".join(leaks), pytrace=False)


def test_an_account_added_while_the_fleet_runs_is_served_at_once(fleet: Fleet) -> None:
    code, out = fleet.cli(
        "add", "--token-env", "NEW_TOKEN", "--account-id", NEW_ACCOUNT,
        NEW_TOKEN=fleet.given[NEW_ACCOUNT],
    )  # fmt: skip
    assert code == 0, out
    assert out["outcome"] == "added" and out["refreshed"] is True
    assert out["account"]["subscribed_fields"]
    assert fleet.control.subscriptions()[NEW_ACCOUNT] == out["account"]["subscribed_fields"]
    intents = _texts(NEW_ACCOUNT, 5, "onboard")
    outcomes = fleet.run(intents, timeout=30)
    assert {o.status for o in outcomes.values()} == {"sent"}
    # They went with the refreshed token (the one `add` stored), not the one handed over.
    refreshed = {t["fingerprint"] for t in fleet.control.tokens(NEW_ACCOUNT) if t["refreshed_from"]}
    assert out["account"]["token_fingerprint"][:12] in refreshed
    code, listing = fleet.cli("list", "--json")
    assert code == 0 and NEW_ACCOUNT in [a["account_id"] for a in listing]


def test_an_invalid_token_is_refused_and_nothing_stored(fleet: Fleet) -> None:
    bogus = _token()
    fleet.given["bogus"] = bogus
    code, out = fleet.cli("add", "--token-stdin", stdin=bogus + "\n")
    assert code == 2 and out["error"] == "token_refused" and out["reason"] == "graph_190"
    code, out = fleet.cli("add", "--token-env", "NOPE")
    assert code == 2 and out["error"] == "token_source"


def test_the_tokens_file_reloads_under_load_without_losing_or_misusing_a_send(
    fleet: Fleet,
) -> None:
    new = _token()
    fleet.given["file-new"] = new
    fleet.control.register_token(FILE_ACCOUNT, new, age_s=3600)
    rejected_before = _refused_tokens(fleet.control)
    intents = _texts(FILE_ACCOUNT, 300, "reload")
    results: dict[str, Outcome] = {}

    def produce() -> None:
        with fleet.client() as client:
            for start in range(0, len(intents), 20):
                client.enqueue_many(intents[start : start + 20])
                time.sleep(0.05)
            results.update(client.wait_many([i["idempotency_key"] for i in intents], 60))

    producer = threading.Thread(target=produce)
    producer.start()
    time.sleep(0.3)
    fleet.tokens_file.write_text("{ broken")  # an operator's typo: the last good tokens stay
    time.sleep(0.8)
    fleet.tokens_file.write_text(json.dumps({FILE_ACCOUNT: new}))
    wait_until(lambda: fleet.entry(FILE_ACCOUNT).get("fp") == fingerprint(new), 20, "new token")
    time.sleep(1.5)  # every worker has applied it (two polls of 0.3 s agree)
    fleet.control.revoke_tokens(FILE_ACCOUNT, 460, tokens=[fleet.given[FILE_ACCOUNT]])
    producer.join(90)
    assert len(results) == len(intents)
    assert {o.status for o in results.values()} == {"sent"}
    assert _refused_tokens(fleet.control) == rejected_before
    logs = "".join(p.read_text() for p in fleet.log_dir.glob("worker-*.log"))
    assert "tokens_file_invalid" in logs


def test_a_refresh_racing_sends_refused_with_the_old_token_stops_nothing(fleet: Fleet) -> None:
    code, out = fleet.cli(
        "add", "--token-env", "T", "--account-id", RACE_ACCOUNT, "--expires-in", str(50 * DAY),
        "--no-subscribe", T=fleet.given[RACE_ACCOUNT],
    )  # fmt: skip
    assert code == 0, out
    fleet.control.set_token_settings(revoke_on_refresh=True)
    try:
        intents = _texts(RACE_ACCOUNT, 200, "race")
        results: dict[str, Outcome] = {}

        def produce() -> None:
            with fleet.client() as client:
                for start in range(0, len(intents), 10):
                    client.enqueue_many(intents[start : start + 10])
                    time.sleep(0.02)
                results.update(client.wait_many([i["idempotency_key"] for i in intents], 60))

        producer = threading.Thread(target=produce)
        producer.start()
        time.sleep(0.5)
        code, refreshed = fleet.cli("refresh", RACE_ACCOUNT, "--wait", "20")
        producer.join(90)
    finally:
        fleet.control.set_token_settings(revoke_on_refresh=False)
    assert code == 0 and refreshed["status"] == "done", refreshed
    assert {o.status for o in results.values()} == {"sent"} and len(results) == len(intents)
    entry = fleet.entry(RACE_ACCOUNT)
    assert entry["state"] == "active" and "reauth_fp" not in entry
    chain = fleet.control.tokens(RACE_ACCOUNT)
    assert sum(1 for t in chain if t["refreshed_from"]) == 1


def test_a_removed_accounts_queued_intents_end_failed(fleet: Fleet) -> None:
    code, out = fleet.cli("add", "--token-env", "T", "--no-subscribe", T=fleet.given[GONE_ACCOUNT])
    assert code == 0, out
    later = time.time() + 3
    intents = [{**i, "not_before": later} for i in _texts(GONE_ACCOUNT, 5, "gone")]
    with fleet.client() as client:
        assert {r.status for r in client.enqueue_many(intents)} == {"queued"}
    code, out = fleet.cli("remove", GONE_ACCOUNT)
    assert code == 0 and out["result"] == "removed"
    with fleet.client() as client:
        refused = client.enqueue_many(_texts(GONE_ACCOUNT, 1, "after"))
        assert refused[0].error is not None
        assert refused[0].error.as_dict()["error"] == "account_removed"
        outcomes = client.wait_many([i["idempotency_key"] for i in intents], 30)
    assert {(o.status, o.reason) for o in outcomes.values()} == {("failed", "account_removed")}
    assert not [c for c in fleet.control.calls()["calls"] if c["ig_id"] == GONE_ACCOUNT]
    code, shown = fleet.cli("show", GONE_ACCOUNT)
    assert shown["state"] == "removed"


def test_sighup_reloads_the_tokens_file_at_once(fleet: Fleet, tmp_path: Path) -> None:
    path = tmp_path / "hup.json"
    path.write_text(json.dumps({HUP_ACCOUNT: fleet.given[HUP_ACCOUNT]}))
    slow = tuned(fleet.settings, tokens_file=path, accounts={"poll_s": 600.0})
    worker = fleet.start_worker(slow)
    log = fleet.log_dir / f"worker-{len(fleet.workers) - 1}.log"
    # A SIGHUP during start-up (an operator's reload racing a restart) is harmless: sent as
    # soon as the process no longer takes SIGHUP's default action (end the process).
    assert worker.pid is not None
    pid = worker.pid
    wait_until(lambda: _handles_sighup(pid), 30, "the CLI to set SIGHUP aside")
    os.kill(pid, signal.SIGHUP)
    assert "worker_started" not in log.read_text()  # it came during the start-up
    wait_until(lambda: "worker_started" in log.read_text(), 30, "the worker's start")
    assert worker.alive()
    assert fleet.entry(HUP_ACCOUNT).get("source") == "file"
    new = _token()
    fleet.given["hup-new"] = new
    fleet.control.register_token(HUP_ACCOUNT, new, age_s=3600)
    path.write_text(json.dumps({HUP_ACCOUNT: new}))
    assert worker.pid is not None
    os.kill(worker.pid, signal.SIGHUP)
    wait_until(lambda: fleet.entry(HUP_ACCOUNT).get("fp") == fingerprint(new), 10, "SIGHUP")
    worker.stop()


def _handles_sighup(pid: int) -> bool:
    """SIGHUP is ignored or caught by `pid` (from /proc: its signal masks)."""
    masks = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("SigIgn", "SigCgt"):
            masks[name] = int(value.strip(), 16)
    return bool((masks.get("SigIgn", 0) | masks.get("SigCgt", 0)) & (1 << (signal.SIGHUP - 1)))
