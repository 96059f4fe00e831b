"""A real stack for end-to-end tests: private redis-server, the emulator over HTTP, and an
`ig-outbound worker` process, all started by the suite on free ports.

At the end of the session the stack runs canary traffic of its own and is then scanned for
its tokens (Redis, every worker log): a token anywhere there fails the session in the `stack`
fixture's teardown, whatever ran and in whatever order."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from ig_outbound.emulator import EmulatorConfig, EmulatorControl, run_emulator_process
from ig_outbound.emulator.config import AccountConfig, CommentConfig
from ig_outbound.harness.env import client_view, fleet_settings
from ig_outbound.harness.intents import make_intent
from ig_outbound.harness.leaks import scan_stack
from ig_outbound.harness.processes import RedisServer, WorkerProcess
from ig_outbound.harness.wait import wait_registered
from ig_outbound.producers.enqueue import SyncOutboundClient
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.settings import ClientSettings
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
# The session must have written this much to Redis and to a log, or its scan proves little.
SCAN_MIN_BYTES = 1000


@dataclass(frozen=True)
class Stack:
    redis_url: str
    graph_url: str
    tokens: dict[str, str]
    worker_log: Path
    worker: WorkerProcess
    keys: Keys
    settings: Settings  # the worker's; other fleets of the session derive theirs from it

    @property
    def logs(self) -> list[Path]:
        """Every worker log of the session (other fleets log next to the main worker)."""
        return sorted(self.worker_log.parent.glob("*.log"))


def _emulator(tokens: dict[str, str]) -> EmulatorConfig:
    return EmulatorConfig(
        accounts=[
            AccountConfig(ig_id=a, token=t, username=f"u{a[-3:]}") for a, t in tokens.items()
        ],
        users={a: USERS for a in ACCOUNTS},
        comments=[
            CommentConfig(comment_id=c, ig_id=ACCOUNT_A, commenter_igsid=u, created_at=time.time())
            for c, u in zip(COMMENTS, USERS, strict=True)
        ],
    )


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # Fresh random tokens per run, so the leak scan can search for them verbatim.
    tokens = {acc: "IGAA" + secrets.token_urlsafe(32) for acc in ACCOUNTS}
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    with RedisServer() as server, run_emulator_process(_emulator(tokens)) as graph_url:
        settings = fleet_settings(
            redis_url=server.url,
            key_prefix=PREFIX,
            graph_url=graph_url,
            tokens=tokens,
            graph={"read_timeout_s": 1.0},
            retry={
                "backoff_base_s": 0.05,
                "backoff_cap_s": 0.5,
                "throttle_pause_s": 0.5,
                "account_pause_s": 0.5,
            },
            # The sweeper's tests wait for it: sweep often.
            worker={"sweep_interval_s": 0.5},
            # This stack's media URLs are placeholders (the media policy has its own tests
            # against the emulator's media server): not probed here.
            media={"probe": False},
            log_level="debug",
        )
        worker = WorkerProcess.from_settings(settings, log_path=log).start()
        stack = Stack(server.url, graph_url, tokens, log, worker, Keys(PREFIX), settings)
        try:
            wait_registered(settings, len(ACCOUNTS))
            yield stack
            _canary_traffic(stack)
        finally:
            worker.stop()
        # Only after every test (and with the worker's log complete): independent of order.
        _fail_on_leaked_tokens(stack)


def _canary_traffic(stack: Stack) -> None:
    """A send and a Graph error of its own, so the scan always follows real traffic,
    however few tests ran."""
    run = uuid.uuid4().hex
    intents = [
        make_intent(f"canary-sent:{run}", ACCOUNT_A, USERS[30], {"kind": "sticker"}),
        make_intent(f"canary-failed:{run}", ACCOUNT_A, "99999999999", {"kind": "sticker"}),
    ]
    with SyncOutboundClient.connect(stack.redis_url, client_view(stack.settings)) as client:
        client.enqueue_many(intents)
        outcomes = [client.wait(i["idempotency_key"], timeout=20).status for i in intents]
    assert outcomes == ["sent", "failed"], f"the canary traffic went wrong: {outcomes}"


def _fail_on_leaked_tokens(stack: Stack) -> None:
    """Tokens never reach Redis or a worker's log (docs/architecture.md, "Secrets")."""
    named = {f"the token of {account}": token for account, token in stack.tokens.items()}
    leaks = scan_stack(stack.redis_url, stack.logs, named, min_bytes=SCAN_MIN_BYTES)
    if leaks:
        pytest.fail("SECRETS LEAKED in the e2e stack: " + "; ".join(leaks), pytrace=False)


@pytest.fixture(scope="session")
def stack_settings(stack: Stack) -> ClientSettings:
    """What `client` (tests/conftest.py) connects with: the producer side of the stack."""
    return client_view(stack.settings)


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


def calls_for(control: EmulatorControl, intent: dict[str, Any]) -> list[dict[str, Any]]:
    """Accepted emulator calls that carried this intent (its account and its exact body)."""
    body = build_body(parse_intent(intent))
    return [
        c
        for c in control.calls()["calls"]
        if c["body"] == body and c["ig_id"] == intent["account_id"]
    ]
