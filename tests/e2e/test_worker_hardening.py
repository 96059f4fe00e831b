"""`ig-outbound worker` as a process: a job ARQ itself cannot prepare is dead-lettered by
the worker the supervisor runs (not a crash and a restart loop), and the metrics server
listens only where it is told to."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from ig_outbound.harness.env import tuned
from ig_outbound.harness.intents import make_intent
from ig_outbound.harness.processes import WorkerProcess, free_port
from ig_outbound.harness.wait import wait_registered, wait_until, wait_until_async
from ig_outbound.producers.enqueue import OutboundClient
from ig_outbound.producers.keys import ARQ_IN_PROGRESS_PREFIX, ARQ_JOB_PREFIX
from tests.e2e.conftest import ACCOUNT_A, USERS, Stack

pytestmark = pytest.mark.slow

TEXT = {"kind": "text", "text": "hardening"}


async def test_a_job_key_of_the_wrong_type_ends_its_intent_and_leaves_arq(
    client: OutboundClient, raw_redis: Any, stack: Stack, new_key: Any
) -> None:
    """ARQ's own read of the job fails (WRONGTYPE): before, every worker that picked it up
    died of it and the intent never ended."""
    key = new_key("wrong-type")
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    await client.enqueue(make_intent(key, ACCOUNT_A, USERS[38], TEXT, not_before=later))
    job_id = stack.keys.job_id(key)
    raw_redis.delete(ARQ_JOB_PREFIX + job_id)
    raw_redis.hset(ARQ_JOB_PREFIX + job_id, "not", "a job")
    raw_redis.zadd(stack.keys.queue, {job_id: 1})

    outcome = await client.wait(key, timeout=20)

    assert (outcome.status, outcome.reason) == ("rejected", "bad_job")
    assert "WRONGTYPE" in outcome.reasons[0]["msg"]

    def left_arq() -> bool:
        held = raw_redis.exists(ARQ_JOB_PREFIX + job_id, ARQ_IN_PROGRESS_PREFIX + job_id)
        return held == 0 and raw_redis.zscore(stack.keys.queue, job_id) is None

    await wait_until_async(left_arq, 10, "the job to leave ARQ")
    assert stack.worker.alive()
    good = make_intent(new_key("after-wrong-type"), ACCOUNT_A, USERS[39], TEXT)
    await client.enqueue(good)
    assert (await client.wait(good["idempotency_key"], timeout=20)).status == "sent"


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def test_metrics_listen_only_on_the_configured_address(stack: Stack) -> None:
    """127.0.0.1 and 127.0.0.2 are both this host's loopback: bound to the first, the
    metrics server must not answer on the second (the default, 0.0.0.0, answers on both)."""
    port = free_port()
    settings = tuned(
        stack.settings, key_prefix="igo-metrics-addr", metrics_port=port, metrics_addr="127.0.0.1"
    )
    worker = WorkerProcess.from_settings(settings).start()
    try:
        wait_registered(settings, len(stack.tokens))
        wait_until(lambda: _answers("127.0.0.1", port), 10, "the metrics server", 0.1)
        assert "ig_outbound" in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert not _answers("127.0.0.2", port)
    finally:
        worker.stop()
