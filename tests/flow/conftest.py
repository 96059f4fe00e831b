"""A stack with Meta's rate limits on: private Redis, the emulator enforcing per-account
limits, and three worker processes sharing one queue."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ig_outbound.emulator import EmulatorConfig, EmulatorControl, run_emulator_process
from ig_outbound.emulator.config import AccountConfig, RateLimitConfig
from ig_outbound.harness.env import client_view, fleet_settings
from ig_outbound.harness.processes import RedisServer, WorkerProcess
from ig_outbound.harness.wait import wait_registered
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.settings import ClientSettings
from ig_outbound.worker.settings import Settings

ACCOUNTS = [f"1784150000000{n:04d}" for n in range(9)]
PREFIX = "igo-flow"
WORKERS = 3
WINDOW_MARGIN_MS = 250
UTILIZATION = 0.95


@dataclass(frozen=True)
class Flow:
    redis_url: str
    keys: Keys
    settings: Settings
    control: EmulatorControl
    logs: list[Path]


def _emulator(tokens: dict[str, str]) -> EmulatorConfig:
    return EmulatorConfig(
        accounts=[
            AccountConfig(ig_id=a, token=t, username=f"f{a[-2:]}") for a, t in tokens.items()
        ],
        allow_any_recipient=True,
        # Meta's limits; a full window says "regain in 0 min" so the worker's short
        # fallback pause applies in the throttle test.
        rate_limits=RateLimitConfig(enabled=True, regain_minutes=0),
    )


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    tokens = {acc: "IGAA" + secrets.token_urlsafe(24) for acc in ACCOUNTS}
    logdir = tmp_path_factory.mktemp("flow")
    with RedisServer() as server, run_emulator_process(_emulator(tokens)) as graph_url:
        settings = fleet_settings(
            redis_url=server.url,
            key_prefix=PREFIX,
            graph_url=graph_url,
            tokens=tokens,
            retry={"throttle_pause_s": 1.0, "backoff_base_s": 0.05},
            log_level="warning",
            # This box runs Redis, the emulator, three workers and the suite on two cores:
            # a starved process delays requests more than a network path would, so the
            # transit margin is wider than the production default (100 ms).
            rate={
                "transit_max_ms": WINDOW_MARGIN_MS,
                "transit_measured": False,
                "utilization": UTILIZATION,
            },
            # Flows measure rates and order: their media URLs are placeholders, not probed.
            media={"probe": False},
        )
        logs = [logdir / f"worker{i}.log" for i in range(WORKERS)]
        workers = [WorkerProcess.from_settings(settings, log_path=log).start() for log in logs]
        try:
            wait_registered(settings, len(ACCOUNTS))
            with EmulatorControl(graph_url) as control:
                yield Flow(server.url, Keys(PREFIX), settings, control, logs)
        finally:
            for w in workers:
                w.stop(grace_s=5)


@pytest.fixture(scope="module")
def stack_settings(flow: Flow) -> ClientSettings:
    """What `client` (tests/conftest.py) connects with: the producer side of the flow."""
    return client_view(flow.settings)
