"""One clock: a worker whose own clock is off by seconds judges deadlines, `not_before` and
which jobs are due on Redis's clock (libfaketime shifts the worker process's clock)."""

from __future__ import annotations

import glob
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ig_outbound.emulator import EmulatorControl
from ig_outbound.harness.env import settings_env, tuned
from ig_outbound.harness.intents import make_intent
from ig_outbound.harness.processes import WorkerProcess
from ig_outbound.harness.wait import wait_registered
from ig_outbound.producers.enqueue import OutboundClient
from ig_outbound.producers.keys import Keys
from tests.e2e.conftest import ACCOUNT_B, USERS, Stack, calls_for

pytestmark = pytest.mark.slow

LIBFAKETIME = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
SKEW_S = 30


@pytest.fixture(params=[SKEW_S, -SKEW_S], ids=["ahead", "behind"])
def skewed(request: pytest.FixtureRequest, stack: Stack, tmp_path: Path) -> Iterator[Stack]:
    """A worker of its own (own key prefix) whose clock is `param` seconds off."""
    if not LIBFAKETIME:
        pytest.fail("libfaketime is missing: scripts/setup.sh installs Debian's faketime")
    settings = tuned(stack.settings, key_prefix=f"skew-{uuid.uuid4().hex[:8]}")
    env = {
        **settings_env(settings),
        "LD_PRELOAD": LIBFAKETIME[0],
        "FAKETIME": f"{request.param:+d}s",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }
    worker = WorkerProcess(env, log_path=tmp_path / "skewed.log", isolated=True).start()
    try:
        wait_registered(settings, 4)
        log = tmp_path / "skewed.log"
        yield Stack(
            stack.redis_url, stack.graph_url, stack.tokens, log, worker,
            Keys(settings.key_prefix), settings,
        )  # fmt: skip
    finally:
        worker.stop()


async def test_a_skewed_worker_keeps_not_before_and_deadlines_on_redis_time(
    skewed: Stack, control: EmulatorControl
) -> None:
    now, run = datetime.now(UTC), uuid.uuid4().hex
    not_before = now + timedelta(seconds=3)
    scheduled = make_intent(
        f"clock-nb:{run}", ACCOUNT_B, USERS[36], {"kind": "text", "text": f"at 3 s {run}"},
        not_before=not_before.isoformat(),
    )  # fmt: skip
    # Ahead by 30 s, a local clock would expire this at once; behind, it would not even pick
    # the job up before its deadline.
    short = make_intent(
        f"clock-dl:{run}", ACCOUNT_B, USERS[37], {"kind": "text", "text": f"soon {run}"},
        not_after=(now + timedelta(seconds=10)).isoformat(),
    )  # fmt: skip
    async with OutboundClient.connect(skewed.redis_url, skewed.settings) as client:
        await client.enqueue(scheduled)
        await client.enqueue(short)
        outcomes = await client.wait_many(
            [scheduled["idempotency_key"], short["idempotency_key"]], timeout=20
        )
    assert [o.status for o in outcomes.values()] == ["sent", "sent"]
    (call,) = calls_for(control, scheduled)
    assert call["arrived_at"] >= not_before.timestamp()  # never early
    # Due-ness is Redis's too: the job was not picked up early and deferred back.
    assert "not_before" not in skewed.worker_log.read_text()
