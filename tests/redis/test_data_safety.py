"""A Redis that will lose data is noticed: refused by producers and workers unless allowed;
where CONFIG is forbidden, said and gone on; what workers publish comes back after a loss."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ig_outbound.harness.env import settings_env, tuned
from ig_outbound.harness.processes import RedisServer
from ig_outbound.harness.wait import wait_until
from ig_outbound.producers.connection import connect_sync
from ig_outbound.producers.enqueue import SyncOutboundClient
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.redis_safety import UnsafeRedisError
from ig_outbound.producers.settings import ClientSettings
from tests.redis.conftest import ACCOUNT, Graph, fleet_on, running_worker, send_through, sticker

pytestmark = pytest.mark.slow


@pytest.fixture
def volatile() -> Iterator[RedisServer]:
    """No AOF, no snapshots: a restart forgets everything."""
    with RedisServer(persistent=False) as server:
        yield server


@pytest.fixture
def evicting() -> Iterator[RedisServer]:
    with RedisServer(extra_args=["--maxmemory-policy", "allkeys-lru"]) as server:
        yield server


def _enqueue(settings: ClientSettings) -> str:
    with SyncOutboundClient.connect(settings=settings) as client:
        client.register_accounts([ACCOUNT])
        return client.enqueue(sticker("safety")).status


@pytest.mark.parametrize("server", ["volatile", "evicting"])
def test_a_producer_refuses_a_redis_that_can_lose_intents(
    server: str, request: pytest.FixtureRequest
) -> None:
    target: RedisServer = request.getfixturevalue(server)
    settings = ClientSettings(redis_url=target.url, key_prefix="safe")
    with pytest.raises(UnsafeRedisError, match="REDIS_ALLOW_DATA_LOSS"):
        _enqueue(settings)
    # Refused before the intent was written (only the accounts set registered above is).
    assert connect_sync(settings).keys("*") == [Keys("safe").accounts.encode()]
    allowed = settings.model_copy(update={"redis_allow_data_loss": True})
    assert _enqueue(allowed) == "queued"


def test_a_worker_refuses_it_with_one_line(volatile: RedisServer, graph: Graph) -> None:
    settings = fleet_on(graph, volatile.url)
    done = subprocess.run(
        [sys.executable, "-m", "ig_outbound.cli", "worker"],
        env={**os.environ, **settings_env(settings)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["error"] == "unsafe_redis" and "appendonly" in report["message"]
    assert "Traceback" not in done.stderr


def test_without_config_rights_the_check_is_skipped_with_a_warning(
    graph: Graph, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Managed Redis forbids CONFIG: the provider decides; producers and workers go on."""
    user = ["--user", "app", "on", ">pw", "~*", "+@all", "-config"]
    with RedisServer(persistent=False, extra_args=user) as server:
        url = server.url.replace("redis://", "redis://app:pw@")
        assert _enqueue(ClientSettings(redis_url=url, key_prefix="managed")) == "queued"
        assert "CONFIG is not allowed" in caplog.text
        settings = fleet_on(graph, url, redis_allow_data_loss=False)
        log = tmp_path / "worker.log"
        with running_worker(settings, log):
            assert send_through(settings, log) == "sent"
        assert "CONFIG is not allowed" in log.read_text()


def test_what_workers_publish_comes_back_after_redis_lost_it(
    volatile: RedisServer, graph: Graph, tmp_path: Path
) -> None:
    settings = tuned(
        fleet_on(graph, volatile.url, redis_allow_data_loss=True),
        worker={"republish_interval_s": 0.3},
    )
    log = tmp_path / "worker.log"
    with running_worker(settings, log):
        r, keys = connect_sync(settings), Keys(settings.key_prefix)
        r.flushall()  # a restart without persistence
        # (The accounts come back with the tokens' own poll too, maybe before the spacing.)
        wait_until(lambda: bool(r.scard(keys.accounts)), 10, "the accounts republished")
        wait_until(lambda: bool(r.hlen(keys.rates)), 10, "the rate spacing republished")
        assert send_through(settings, log) == "sent"
