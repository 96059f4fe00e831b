"""The harness's gateway: its settings come from a stack's, it runs as `ig-outbound gateway`,
is ready when `/readyz` says so, verifies what the emulator signs and stops on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from ig_outbound.gateway.app import WEBHOOK_PATH as GATEWAY_WEBHOOK_PATH
from ig_outbound.harness.env import gateway_settings, settings_env
from ig_outbound.harness.errors import LocalStackError
from ig_outbound.harness.processes import (
    WEBHOOK_PATH,
    GatewayProcess,
    RedisServer,
    free_port,
    metric_total,
    parse_metrics,
)
from ig_outbound.harness.wait import wait_until
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.settings import ClientSettings
from ig_outbound.producers.webhooks import SIGNATURE_HEADER, signature_header

SECRET = "harness-app-secret-" + "x" * 16
ACCOUNT = "17841400000000901"


@pytest.fixture(autouse=True)
def _no_settings_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("IG_OUTBOUND_"):
            monkeypatch.delenv(name)


def _body(mid: str) -> bytes:
    item = {
        "sender": {"id": "1254477777700901"},
        "recipient": {"id": ACCOUNT},
        "timestamp": 1_800_000_000_000,
        "message": {"mid": mid, "text": "hi"},
    }
    payload = {"object": "instagram", "entry": [{"id": ACCOUNT, "time": 1, "messaging": [item]}]}
    return json.dumps(payload).encode()


def test_the_gateway_shares_the_stacks_redis_and_prefix_and_the_emulators_secret() -> None:
    stack = ClientSettings(
        redis_url="redis://127.0.0.1:6390/3", key_prefix="igo-h", log_level="warning"
    )
    settings = gateway_settings(stack, port=18080, app_secrets=[SECRET], max_backlog=10)
    env = settings_env(settings)
    assert env["IG_OUTBOUND_REDIS_URL"] == stack.redis_url
    assert env["IG_OUTBOUND_KEY_PREFIX"] == "igo-h"
    assert env["IG_OUTBOUND_LOG_LEVEL"] == "warning"
    assert env["IG_OUTBOUND_GATEWAY__PORT"] == "18080"
    assert env["IG_OUTBOUND_GATEWAY__HOST"] == "127.0.0.1"
    assert json.loads(env["IG_OUTBOUND_GATEWAY__APP_SECRETS"]) == [SECRET]
    assert env["IG_OUTBOUND_GATEWAY__MAX_BACKLOG"] == "10"
    gateway = GatewayProcess.from_settings(settings)
    assert gateway.webhook_url == "http://127.0.0.1:18080/webhooks/instagram"
    assert WEBHOOK_PATH == GATEWAY_WEBHOOK_PATH


def test_metrics_are_read_by_name_and_labels() -> None:
    text = (
        "# TYPE ig_outbound_webhooks_total counter\n"
        'ig_outbound_webhooks_total{reason="",result="verified"} 7.0\n'
        'ig_outbound_webhooks_total{reason="bad_signature",result="refused"} 2.0\n'
    )
    samples = parse_metrics(text)
    assert metric_total(samples, "ig_outbound_webhooks_total") == 9
    assert metric_total(samples, "ig_outbound_webhooks_total", result="verified") == 7
    assert metric_total(samples, "ig_outbound_webhooks_total", result="throttled") == 0


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with RedisServer() as s:
        yield s


@pytest.mark.slow
def test_a_gateway_process_verifies_records_and_stops_on_sigterm(
    server: RedisServer, tmp_path: Path
) -> None:
    stack = ClientSettings(redis_url=server.url, key_prefix="igo-gwp", log_level="warning")
    keys = Keys("igo-gwp")
    r = redis.Redis.from_url(server.url, decode_responses=True)
    r.sadd(keys.accounts, ACCOUNT)
    settings = gateway_settings(stack, port=free_port(), app_secrets=[SECRET])
    gateway = GatewayProcess.from_settings(settings, log_path=tmp_path / "gateway.log")
    gateway.start()
    try:
        assert gateway.ready() and gateway.alive()
        body = _body("mid-harness-1")
        signed = {SIGNATURE_HEADER: signature_header(body, SECRET)}
        assert httpx.post(gateway.webhook_url, content=body, headers=signed).status_code == 200
        forged = {SIGNATURE_HEADER: signature_header(body, "not-the-secret")}
        assert httpx.post(gateway.webhook_url, content=body, headers=forged).status_code == 403
        # The processor records it after the acknowledgement: wait for the stream entry.
        wait_until(lambda: r.xlen(keys.inbound) == 1, 10, "the event on the inbound stream")
        samples = gateway.metrics()
        assert metric_total(samples, "ig_outbound_webhooks_total", result="verified") == 1
        assert metric_total(samples, "ig_outbound_webhooks_total", result="refused") == 1
        assert r.exists(keys.gateway_alive)
        # uvicorn shuts down gracefully, then re-raises the SIGTERM it caught.
        assert gateway.stop() in (0, -signal.SIGTERM) and not gateway.alive()
    finally:
        gateway.stop()
        r.close()


@pytest.mark.slow
def test_a_gateway_that_cannot_start_fails_at_once_with_its_log(tmp_path: Path) -> None:
    nobody = f"redis://127.0.0.1:{free_port()}/0"
    stack = ClientSettings(redis_url=nobody, redis_connect_timeout_s=0.2)
    settings = gateway_settings(stack, port=free_port(), app_secrets=[SECRET])
    gateway = GatewayProcess.from_settings(settings, log_path=tmp_path / "gateway.log")
    with pytest.raises(LocalStackError, match="redis_unreachable"):
        gateway.start()
    assert not gateway.alive()
