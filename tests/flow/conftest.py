"""A stack with Meta's rate limits on: private Redis, the emulator enforcing per-account
limits, and three worker processes sharing one queue."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ig_outbound.emulator import EmulatorConfig, EmulatorControl, run_emulator_process
from ig_outbound.emulator.config import AccountConfig, RateLimitConfig
from ig_outbound.harness.processes import RedisServer, WorkerProcess
from ig_outbound.producers.enqueue import OutboundClient
from ig_outbound.producers.keys import Keys
from ig_outbound.worker.settings import Settings
from tests.e2e.conftest import wait_registered

ACCOUNTS = [f"1784150000000{n:04d}" for n in range(8)]
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


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    tokens = {acc: "IGAA" + secrets.token_urlsafe(24) for acc in ACCOUNTS}
    config = EmulatorConfig(
        accounts=[
            AccountConfig(ig_id=a, token=t, username=f"f{a[-2:]}") for a, t in tokens.items()
        ],
        allow_any_recipient=True,
        # Meta's limits; a full window says "regain in 0 min" so the worker's short
        # fallback pause applies in the throttle test.
        rate_limits=RateLimitConfig(enabled=True, regain_minutes=0),
    )
    logdir = tmp_path_factory.mktemp("flow")
    with RedisServer() as server, run_emulator_process(config) as graph_url:
        env = {
            "IG_OUTBOUND_REDIS_URL": server.url,
            "IG_OUTBOUND_KEY_PREFIX": PREFIX,
            "IG_OUTBOUND_GRAPH__BASE_URL": graph_url,
            "IG_OUTBOUND_TOKENS": json.dumps(tokens),
            "IG_OUTBOUND_RETRY__THROTTLE_PAUSE_S": "1.0",
            "IG_OUTBOUND_RETRY__BACKOFF_BASE_S": "0.05",
            "IG_OUTBOUND_LOG_LEVEL": "warning",
            # This box runs Redis, the emulator, three workers and the suite on two cores:
            # a starved process delays requests more than a network path would, so the
            # transit margin is wider than the production default (100 ms).
            "IG_OUTBOUND_RATE__WINDOW_MARGIN_MS": str(WINDOW_MARGIN_MS),
        }
        logs = [logdir / f"worker{i}.log" for i in range(WORKERS)]
        workers = [WorkerProcess(env, log_path=log).start() for log in logs]
        keys = Keys(PREFIX)
        wait_registered(server.url, keys, len(ACCOUNTS))
        try:
            with EmulatorControl(graph_url) as control:
                yield Flow(server.url, keys, Settings(redis_url=server.url, key_prefix=PREFIX),
                           control, logs)  # fmt: skip
        finally:
            for w in workers:
                w.stop(grace_s=5)


@pytest.fixture
async def client(flow: Flow) -> AsyncIterator[OutboundClient]:
    async with OutboundClient.connect(flow.redis_url, flow.settings) as c:
        yield c


def text_intent(key: str, account: str, recipient: str, text: str, **extra: Any) -> dict[str, Any]:
    return {
        "idempotency_key": key,
        "account_id": account,
        "recipient": {"id": recipient},
        "content": {"kind": "text", "text": text},
        **extra,
    }
