"""The measured transit allowance against requests delayed on their way (emulator `transit`
faults: the arrival time itself moves): the fleet widens its windows by what it measured, and
Meta's strict per-arrival counter sees no call over the limit at the fleet's full pace.
The pace itself (>= 97 % of Meta's limit) is a benchmark's figure (bench.rates precision)."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

import pytest
import redis

from ig_outbound.emulator import EmulatorConfig, EmulatorControl, run_emulator_process
from ig_outbound.emulator.config import AccountConfig, RateLimitConfig
from ig_outbound.harness.env import client_view, fleet_settings
from ig_outbound.harness.intents import text_intent
from ig_outbound.harness.processes import RedisServer, WorkerProcess
from ig_outbound.harness.wait import wait_registered
from ig_outbound.producers.enqueue import SyncOutboundClient
from ig_outbound.producers.keys import Keys
from ig_outbound.worker.settings import RateSettings, Settings

pytestmark = pytest.mark.slow

FLOOD = "17841500000009001"
WARM = "17841500000009002"
PREFIX = "igo-transit"
JITTER_MS = 40
WORKERS = 2


@dataclass(frozen=True)
class TransitStack:
    settings: Settings
    control: EmulatorControl
    r: redis.Redis


@pytest.fixture(scope="module")
def transit_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TransitStack]:
    tokens = {acc: "IGAA" + secrets.token_urlsafe(24) for acc in (FLOOD, WARM)}
    config = EmulatorConfig(
        accounts=[
            AccountConfig(ig_id=a, token=t, username=f"t{a[-2:]}") for a, t in tokens.items()
        ],
        allow_any_recipient=True,
        rate_limits=RateLimitConfig(enabled=True),
    )
    logdir = tmp_path_factory.mktemp("transit")
    with RedisServer() as server, run_emulator_process(config) as graph_url:
        # The production defaults: Meta's full limit, the measured allowance.
        settings = fleet_settings(
            redis_url=server.url,
            key_prefix=PREFIX,
            graph_url=graph_url,
            tokens=tokens,
            log_level="warning",
        )
        assert settings.rate == RateSettings()
        workers = [
            WorkerProcess.from_settings(settings, log_path=logdir / f"w{i}.log").start()
            for i in range(WORKERS)
        ]
        r = redis.Redis.from_url(server.url)
        try:
            wait_registered(settings, 2)
            with EmulatorControl(graph_url) as control:
                control.set_faults(transit_ms=5, transit_jitter_ms=JITTER_MS, seed=4)
                yield TransitStack(settings, control, r)
        finally:
            r.close()
            for w in workers:
                w.stop(grace_s=5)


def test_requests_delayed_in_transit_never_crowd_a_window_at_arrival(
    transit_stack: TransitStack,
) -> None:
    run = uuid.uuid4().hex[:8]
    keys = Keys(PREFIX)
    with SyncOutboundClient.connect(
        transit_stack.settings.redis_url, client_view(transit_stack.settings)
    ) as client:
        # The fleet measures its round trips on some traffic first (as a running fleet has).
        warm = [text_intent(f"{run}:w{i}", WARM, f"40{i:06d}", "warm-up") for i in range(120)]
        client.enqueue_many(warm)
        assert {client.wait(i["idempotency_key"], timeout=60).status for i in warm} == {"sent"}
        flood = [text_intent(f"{run}:f{i}", FLOOD, f"41{i:06d}", "flood") for i in range(700)]
        client.enqueue_many(flood)
        statuses = {client.wait(i["idempotency_key"], timeout=120).status for i in flood}
        allowance = [int(v) for v in cast(list[bytes], transit_stack.r.hvals(keys.transit))]
    assert statuses == {"sent"}
    stats = transit_stack.control.stats()
    assert stats["faults_injected"]["transit"] >= len(warm) + len(flood)
    # What each call's delay could not hide: the strict counter at arrival times.
    assert stats["violations"] == 0
    assert stats["max_calls_in_any_window"][FLOOD]["light"] <= 100
    # The measurement covers the injected spread (and says so for every measuring worker).
    assert allowance and min(allowance) >= JITTER_MS
    # The fleet's own full pace reads ~100 % in Meta's usage header: never a slowdown.
    assert transit_stack.r.exists(keys.slow(FLOOD)) == 0
