"""A real stack for end-to-end tests: private redis-server, the emulator over HTTP, and an
`ig-outbound worker` process, all started by the suite on free ports."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from ig_outbound.emulator import EmulatorConfig, EmulatorControl, run_emulator_process
from ig_outbound.emulator.config import AccountConfig, CommentConfig
from ig_outbound.harness.processes import RedisServer, WorkerProcess
from ig_outbound.producers.enqueue import OutboundClient
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.validation import parse_intent
from ig_outbound.worker.payloads import build_body
from ig_outbound.worker.settings import Settings

ACCOUNT_A = "17841400000000101"
ACCOUNT_B = "17841400000000102"
# Reserved for tests that break the account (bad token, long pauses).
ACCOUNT_BROKEN = "17841400000000103"
# Reserved for the throttle test: Meta's throttle answer pauses it for a minute.
ACCOUNT_THROTTLED = "17841400000000104"
ACCOUNTS = [ACCOUNT_A, ACCOUNT_B, ACCOUNT_BROKEN, ACCOUNT_THROTTLED]
USERS = [f"12544777777{n:05d}" for n in range(40)]
COMMENTS = [f"17900000000{n:05d}" for n in range(40)]
PREFIX = "igo-test"


@dataclass(frozen=True)
class Stack:
    redis_url: str
    graph_url: str
    tokens: dict[str, str]
    worker_log: Path
    worker: WorkerProcess
    keys: Keys
    settings: Settings


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # Fresh random tokens per run, so a leak test can search for them verbatim.
    tokens = {acc: "IGAA" + secrets.token_urlsafe(32) for acc in ACCOUNTS}
    config = EmulatorConfig(
        accounts=[
            AccountConfig(ig_id=a, token=t, username=f"u{a[-3:]}") for a, t in tokens.items()
        ],
        users={a: USERS for a in ACCOUNTS},
        comments=[
            CommentConfig(comment_id=c, ig_id=ACCOUNT_A, commenter_igsid=u, created_at=time.time())
            for c, u in zip(COMMENTS, USERS, strict=True)
        ],
    )
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    with RedisServer() as server, run_emulator_process(config) as graph_url:
        env = {
            "IG_OUTBOUND_REDIS_URL": server.url,
            "IG_OUTBOUND_KEY_PREFIX": PREFIX,
            "IG_OUTBOUND_GRAPH__BASE_URL": graph_url,
            "IG_OUTBOUND_GRAPH__READ_TIMEOUT_S": "1.0",
            "IG_OUTBOUND_TOKENS": json.dumps(tokens),
            "IG_OUTBOUND_RETRY__BACKOFF_BASE_S": "0.05",
            "IG_OUTBOUND_RETRY__BACKOFF_CAP_S": "0.5",
            "IG_OUTBOUND_RETRY__THROTTLE_PAUSE_S": "0.5",
            "IG_OUTBOUND_RETRY__ACCOUNT_PAUSE_S": "0.5",
            "IG_OUTBOUND_LOG_LEVEL": "debug",
        }
        worker = WorkerProcess(env, log_path=log).start()
        settings = Settings(redis_url=server.url, key_prefix=PREFIX)
        keys = Keys(PREFIX)
        wait_registered(server.url, keys, len(ACCOUNTS))
        try:
            yield Stack(server.url, graph_url, tokens, log, worker, keys, settings)
        finally:
            worker.stop()


def wait_registered(url: str, keys: Keys, n: int) -> None:
    r = redis.Redis.from_url(url)
    deadline = time.monotonic() + 30
    try:
        while int(r.scard(keys.accounts)) < n:  # type: ignore[arg-type]
            assert time.monotonic() < deadline, "worker did not start"
            time.sleep(0.05)
    finally:
        r.close()


@pytest.fixture(scope="session")
def control(stack: Stack) -> Iterator[EmulatorControl]:
    with EmulatorControl(stack.graph_url) as ctl:
        yield ctl


@pytest.fixture(autouse=True)
def _calm_emulator(control: EmulatorControl) -> Iterator[None]:
    yield
    control.set_faults(
        latency_ms=0, latency_jitter_ms=0, error_5xx_rate=0, error_5xx_after_send_rate=0,
        timeout_rate=0, throttle_rate=0,
    )  # fmt: skip


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[OutboundClient]:
    async with OutboundClient.connect(stack.redis_url, stack.settings) as c:
        yield c


@pytest.fixture
def raw_redis(stack: Stack) -> Iterator[Any]:
    """A decoded sync client, typed Any: redis-py's stubs type sync and async at once."""
    r = redis.Redis.from_url(stack.redis_url, decode_responses=True)
    yield r
    r.close()


@pytest.fixture
def new_key() -> Callable[[str], str]:
    def make(label: str = "k") -> str:
        return f"{label}:{uuid.uuid4().hex}"

    return make


def make_intent(key: str, content: dict[str, Any], **extra: Any) -> dict[str, Any]:
    intent: dict[str, Any] = {
        "idempotency_key": key,
        "account_id": ACCOUNT_A,
        "recipient": {"id": USERS[0]},
        "content": content,
    }
    intent.update(extra)
    return intent


def calls_for(control: EmulatorControl, intent: dict[str, Any]) -> list[dict[str, Any]]:
    """Accepted emulator calls that carried this intent (its account and its exact body)."""
    body = build_body(parse_intent(intent))
    return [
        c
        for c in control.calls()["calls"]
        if c["body"] == body and c["ig_id"] == intent["account_id"]
    ]
