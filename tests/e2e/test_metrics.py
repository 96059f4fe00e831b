"""A worker with `IG_OUTBOUND_METRICS_PORT` serves Prometheus metrics of what it did."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ig_outbound.harness.env import client_view, tuned
from ig_outbound.harness.intents import make_intent
from ig_outbound.harness.processes import WorkerProcess, free_port
from ig_outbound.harness.wait import wait_registered, wait_until
from ig_outbound.producers.enqueue import SyncOutboundClient
from tests.e2e.conftest import ACCOUNT_A, USERS, Stack

pytestmark = pytest.mark.slow

PREFIX = "igo-metrics"


def _scrape(url: str, pages: list[str]) -> bool:
    """GET the metrics page into `pages`; False while nothing listens there yet."""
    try:
        pages.append(httpx.get(url, timeout=2).text)
    except httpx.TransportError:
        return False
    return True


def test_worker_exposes_outcome_and_graph_metrics(stack: Stack, new_key: Any) -> None:
    port = free_port()
    settings = tuned(stack.settings, key_prefix=PREFIX, metrics_port=port)
    worker = WorkerProcess.from_settings(settings).start()
    try:
        wait_registered(settings, len(stack.tokens))
        intents = [
            make_intent(new_key("m"), ACCOUNT_A, USERS[14], {"kind": "text", "text": "metrics"}),
            make_intent(new_key("m"), ACCOUNT_A, "99999999999", {"kind": "text", "text": "ghost"}),
        ]  # fmt: skip
        with SyncOutboundClient.connect(stack.redis_url, client_view(settings)) as client:
            client.enqueue_many(intents)
            outcomes = [client.wait(i["idempotency_key"], timeout=20) for i in intents]
        assert [o.status for o in outcomes] == ["sent", "failed"]
        pages: list[str] = []
        url = f"http://127.0.0.1:{port}/metrics"
        # The exporter thread may take a moment to bind.
        wait_until(lambda: _scrape(url, pages), 5, "the metrics endpoint", 0.1)
        text = pages[-1]
        assert 'ig_outbound_outcomes_total{kind="text",reason="",status="sent"} 1.0' in text
        assert (
            'ig_outbound_outcomes_total{kind="text",reason="no_matching_user",status="failed"} 1.0'
            in text
        )
        assert 'ig_outbound_graph_requests_total{code="100",error_class="permanent"} 1.0' in text
        assert "ig_outbound_end_to_end_seconds_count 2.0" in text
        # No per-recipient labels, no tokens.
        assert USERS[14] not in text
        assert not any(token in text for token in stack.tokens.values())
    finally:
        worker.stop()
