"""Real servers for the Redis connection story (producers/connection.py on both sides).

Each test module starts its own redis-server (TLS only, ACL users, or a primary watched by a
sentinel) on free ports; this file holds what they share: a throwaway CA, one Graph
emulator, and helpers that run a producer and an `ig-outbound worker` process against a
target described only by settings, the way production configures them."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ig_outbound.emulator import EmulatorConfig, run_emulator_process
from ig_outbound.emulator.config import AccountConfig
from ig_outbound.harness.env import client_view, fleet_settings
from ig_outbound.harness.intents import make_intent
from ig_outbound.harness.processes import WorkerProcess
from ig_outbound.harness.tls import TlsFiles, make_tls_files
from ig_outbound.harness.wait import wait_until
from ig_outbound.producers.connection import connect_sync
from ig_outbound.producers.enqueue import SyncOutboundClient
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.settings import ClientSettings
from ig_outbound.worker.settings import Settings

ACCOUNT = "17841400000000201"
RECIPIENT = "1254477777700001"
WORKER_READY_S = 30.0
OUTCOME_S = 20.0


@dataclass(frozen=True)
class Graph:
    """The emulator's URL and the token of `ACCOUNT` there."""

    url: str
    tokens: dict[str, str]


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def graph() -> Iterator[Graph]:
    tokens = {ACCOUNT: "IGAA" + secrets.token_urlsafe(32)}
    config = EmulatorConfig(
        accounts=[AccountConfig(ig_id=ACCOUNT, token=tokens[ACCOUNT], username="u201")],
        users={ACCOUNT: [RECIPIENT]},
    )
    with run_emulator_process(config) as url:
        yield Graph(url, tokens)


def fleet_on(graph: Graph, redis_url: str, **changes: Any) -> Settings:
    """A one-account fleet on `redis_url` under a key prefix of its own (a module's tests
    share its servers)."""
    return fleet_settings(
        redis_url=redis_url,
        key_prefix=f"igo-{uuid.uuid4().hex[:12]}",
        graph_url=graph.url,
        tokens=graph.tokens,
        **changes,
    )


def sticker(label: str) -> dict[str, Any]:
    return make_intent(f"{label}:{uuid.uuid4().hex}", ACCOUNT, RECIPIENT, {"kind": "sticker"})


def register_account(settings: ClientSettings) -> None:
    """Serve `ACCOUNT` under the settings' prefix, as `OutboundClient.register_accounts` does
    (the sync client has no twin of it): producers refuse an account nobody serves."""
    r = connect_sync(settings)
    try:
        r.sadd(Keys(settings.key_prefix).accounts, ACCOUNT)
    finally:
        r.close()


def log_tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"


@contextmanager
def running_worker(settings: Settings, log_path: Path) -> Iterator[WorkerProcess]:
    """An `ig-outbound worker` on `settings`, ready once it has registered its account
    (read through the same connection settings, so a TLS or Sentinel target works too)."""
    worker = WorkerProcess.from_settings(settings, log_path=log_path).start()
    try:
        _wait_registered(settings, worker, log_path)
        yield worker
    finally:
        worker.stop()


def _wait_registered(settings: Settings, worker: WorkerProcess, log_path: Path) -> None:
    keys = Keys(settings.key_prefix)
    r = connect_sync(client_view(settings))

    def registered() -> bool:
        assert worker.alive(), f"the worker exited:\n{log_tail(log_path)}"
        return bool(r.sismember(keys.accounts, ACCOUNT))

    try:
        wait_until(registered, WORKER_READY_S, "the worker to register its account")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}; worker log:\n{log_tail(log_path)}") from None
    finally:
        r.close()


def send_through(settings: Settings, log_path: Path) -> str:
    """Enqueue one intent with a producer of `settings` and return its outcome's status."""
    intent = sticker("e2e")
    with SyncOutboundClient.connect(settings=client_view(settings)) as client:
        assert client.enqueue(intent).status == "queued"
        try:
            return client.wait(intent["idempotency_key"], timeout=OUTCOME_S).status
        except TimeoutError as exc:
            raise AssertionError(f"{exc}; worker log:\n{log_tail(log_path)}") from None
