"""A real Prometheus scrapes two workers and the gateway while a flow with injected faults
runs; PromQL over what it scraped must match what the emulator (Graph) saw: sends accepted,
5xx answers, permanent errors, the DLQ, webhooks verified and one forged. The fleet's gauges
come from one worker only, so summing them would still be right here, and `promtool check
metrics` accepts a real scrape of each process."""

from __future__ import annotations

import secrets
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from ig_outbound.emulator import (
    AccountConfig,
    EmulatorConfig,
    EmulatorControl,
    run_emulator_process,
)
from ig_outbound.emulator.config import FaultSettings, WebhookConfig
from ig_outbound.harness.env import client_view, fleet_settings, gateway_settings, tuned
from ig_outbound.harness.intents import text_intent
from ig_outbound.harness.processes import GatewayProcess, RedisServer, WorkerProcess, free_port
from ig_outbound.harness.prometheus import PrometheusServer
from ig_outbound.harness.wait import wait_registered
from ig_outbound.producers.enqueue import SyncOutboundClient
from ig_outbound.worker.settings import Settings

pytestmark = pytest.mark.slow

ACCOUNTS = ["17841400000000501", "17841400000000502"]
USERS = [f"12544777775{n:05d}" for n in range(30)]
GHOSTS = [f"40404040{n:04d}" for n in range(7)]  # no such user at Graph: failed, dead-lettered
NO_SUCH_USER = "100/2534014"
RULES = Path(__file__).parents[2] / "deploy" / "prometheus" / "alerts.yml"


@dataclass
class Fleet:
    settings: Settings
    control: EmulatorControl
    gateway: GatewayProcess
    worker_ports: list[int]
    prometheus: PrometheusServer


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    logs = tmp_path_factory.mktemp("prom-fleet")
    tokens = {a: "IGAA" + secrets.token_urlsafe(24) for a in ACCOUNTS}
    app_secret = secrets.token_urlsafe(24)
    with RedisServer() as redis_server:
        base = fleet_settings(
            redis_url=redis_server.url, key_prefix="igo-prom", graph_url="http://unused",
            tokens=tokens, retry={"backoff_base_s": 0.05, "backoff_cap_s": 0.2},
            ambiguous_policy="resend", worker={"fleet_metrics_interval_s": 0.5},
        )  # fmt: skip
        gateway = GatewayProcess.from_settings(
            gateway_settings(base, port=free_port(), app_secrets=[app_secret]),
            log_path=logs / "gateway.log",
        )
        with gateway:
            config = EmulatorConfig(
                accounts=[
                    AccountConfig(ig_id=a, token=t, username=f"shop{a[-3:]}")
                    for a, t in tokens.items()
                ],
                users={a: USERS for a in ACCOUNTS},
                # 5xx before the send only: each is a failed request Graph never processed.
                faults=FaultSettings(error_5xx_rate=0.1, seed=11),
                webhooks=WebhookConfig(url=gateway.webhook_url, app_secret=SecretStr(app_secret)),
            )
            with run_emulator_process(config) as graph_url, EmulatorControl(graph_url) as control:
                settings = tuned(base, graph={"base_url": graph_url})
                ports = [free_port(), free_port()]
                workers = [
                    WorkerProcess.from_settings(
                        tuned(settings, metrics_port=port, metrics_addr="127.0.0.1"),
                        log_path=logs / f"worker-{port}.log",
                    ).start()
                    for port in ports
                ]
                jobs = {
                    "ig-outbound-worker": [f"127.0.0.1:{p}" for p in ports],
                    "ig-outbound-gateway": [f"127.0.0.1:{gateway.port}"],
                }
                try:
                    wait_registered(settings, len(ACCOUNTS))
                    with PrometheusServer(jobs=jobs, rule_files=[RULES]) as prometheus:
                        yield Fleet(settings, control, gateway, ports, prometheus)
                finally:
                    for worker in workers:
                        worker.stop()


def _value(fleet: Fleet, expr: str, expected: float, timeout_s: float = 30.0) -> None:
    """Wait until `expr` is exactly `expected` (scrapes lag the flow by an interval)."""
    fleet.prometheus.wait_for(
        expr, lambda result: bool(result) and float(result[0]["value"][1]) == expected, timeout_s
    )


def test_what_prometheus_scraped_matches_what_graph_saw(fleet: Fleet) -> None:
    run = uuid.uuid4().hex[:8]
    good = [
        text_intent(f"{run}:{a}:{u}", a, u, "Your order has shipped")
        for a in ACCOUNTS
        for u in USERS
    ]
    ghosts = [text_intent(f"{run}:ghost:{g}", ACCOUNTS[0], g, "hello?") for g in GHOSTS]
    with SyncOutboundClient.connect(fleet.settings.redis_url, client_view(fleet.settings)) as c:
        c.enqueue_many([*good, ghosts[0], *ghosts[1:]])
        c.enqueue_many([{"idempotency_key": f"{run}:bad", "account_id": ACCOUNTS[0]}])
        outcomes = c.wait_many([i["idempotency_key"] for i in [*good, *ghosts]], 90)
    assert sum(o.status == "sent" for o in outcomes.values()) == len(good)
    assert sum(o.status == "failed" for o in outcomes.values()) == len(ghosts)
    stats = fleet.control.stats()
    faults = stats["faults_injected"].get("error_5xx", 0)
    assert faults > 0  # the flow really met failures

    # Per-process series, summed over both workers.
    _value(fleet, 'sum(ig_outbound_outcomes_total{status="sent"})', len(good))
    _value(fleet, 'sum(ig_outbound_outcomes_total{status="failed"})', len(ghosts))
    _value(fleet, 'sum(ig_outbound_graph_requests_total{error_class="success"})', stats["accepted"])
    _value(
        fleet,
        f'sum(ig_outbound_graph_requests_total{{code="{NO_SUCH_USER.split("/")[0]}"}})',
        stats["rejected_by_error"][NO_SUCH_USER],
    )
    _value(fleet, 'sum(ig_outbound_graph_requests_total{error_class="transient"})', faults)
    assert len(fleet.prometheus.query("ig_outbound_outcomes_total")) >= 2  # both workers sent
    # The fleet's series: one worker serves them.
    _value(fleet, "count(ig_outbound_dead_letters)", 1)
    _value(fleet, "max(ig_outbound_dead_letters)", len(ghosts))
    _value(fleet, "max(ig_outbound_workers_live)", 2)
    _value(fleet, "max(ig_outbound_queue_ready)", 0)
    _value(fleet, "max(ig_outbound_intents_enqueued_total)", len(good) + len(ghosts))
    _value(fleet, 'max(ig_outbound_intents_refused_total{reason="invalid"})', 1)
    _value(fleet, 'count(up{job="ig-outbound-worker"} == 1)', 2)


def test_webhooks_verified_and_forged_are_counted(fleet: Fleet) -> None:
    before = fleet.control.stats()["webhooks"]["delivered"]
    for user in USERS[:5]:
        fleet.control.user_message(ACCOUNTS[1], user, "Is it in stock?")
    fleet.control.wait_for_webhooks(before + 5)
    delivered = fleet.control.stats()["webhooks"]["delivered"]
    forged = httpx.post(
        fleet.gateway.webhook_url,
        content=b'{"object":"instagram","entry":[]}',
        headers={"X-Hub-Signature-256": "sha256=" + "0" * 64},
    )
    assert forged.status_code == 403
    _value(fleet, 'sum(ig_outbound_webhooks_total{result="verified"})', delivered)
    _value(fleet, 'sum(ig_outbound_webhooks_total{result="refused",reason="bad_signature"})', 1)


def test_promtool_accepts_a_real_scrape_of_each_process(fleet: Fleet) -> None:
    urls = [f"http://127.0.0.1:{p}/metrics" for p in fleet.worker_ports]
    urls.append(fleet.gateway.url + "/metrics")
    for url in urls:
        page = httpx.get(url, timeout=5).text
        assert "ig_outbound_" in page
        checked = subprocess.run(
            ["promtool", "check", "metrics"], input=page, capture_output=True, text=True,
            check=False, timeout=30,
        )  # fmt: skip
        assert checked.returncode == 0, (url, checked.stdout, checked.stderr)


def test_the_alert_rules_load_in_the_real_prometheus(fleet: Fleet) -> None:
    rules = httpx.get(fleet.prometheus.url + "/api/v1/rules", timeout=5).json()
    groups = rules["data"]["groups"]
    assert groups and all(rule["health"] != "err" for g in groups for rule in g["rules"])
