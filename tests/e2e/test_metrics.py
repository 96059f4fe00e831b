"""A worker with `IG_OUTBOUND_METRICS_PORT` serves Prometheus metrics of what it did."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from ig_outbound.harness.processes import WorkerProcess, free_port
from ig_outbound.producers.enqueue import SyncOutboundClient
from ig_outbound.producers.keys import Keys
from tests.e2e.conftest import USERS, Stack, make_intent, wait_registered

PREFIX = "igo-metrics"


def test_worker_exposes_outcome_and_graph_metrics(stack: Stack, new_key: Any) -> None:
    port = free_port()
    env = {
        "IG_OUTBOUND_REDIS_URL": stack.redis_url,
        "IG_OUTBOUND_KEY_PREFIX": PREFIX,
        "IG_OUTBOUND_GRAPH__BASE_URL": stack.graph_url,
        "IG_OUTBOUND_TOKENS": json.dumps(stack.tokens),
        "IG_OUTBOUND_METRICS_PORT": str(port),
    }
    worker = WorkerProcess(env).start()
    try:
        wait_registered(stack.redis_url, Keys(PREFIX), len(stack.tokens))
        settings = stack.settings.model_copy(update={"key_prefix": PREFIX})
        intents = [
            make_intent(new_key("m"), {"kind": "text", "text": "metrics"},
                        recipient={"id": USERS[14]}),
            make_intent(new_key("m"), {"kind": "text", "text": "ghost"},
                        recipient={"id": "99999999999"}),
        ]  # fmt: skip
        with SyncOutboundClient.connect(stack.redis_url, settings) as client:
            client.enqueue_many(intents)
            outcomes = [client.wait(i["idempotency_key"], timeout=20) for i in intents]
        assert [o.status for o in outcomes] == ["sent", "failed"]
        text = ""
        for _ in range(50):  # the exporter thread may take a moment to bind
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert 'ig_outbound_outcomes_total{kind="text",reason="",status="sent"} 1.0' in text
        assert (
            'ig_outbound_outcomes_total{kind="text",reason="no_matching_user",status="failed"} 1.0'
            in text
        )
        assert 'ig_outbound_graph_requests_total{code="100",error_class="permanent"} 1.0' in text
        assert "ig_outbound_end_to_end_latency_seconds_count 2.0" in text
        # No per-recipient labels, no tokens.
        assert USERS[14] not in text
        assert not any(token in text for token in stack.tokens.values())
    finally:
        worker.stop()
