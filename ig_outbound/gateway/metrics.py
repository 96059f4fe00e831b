"""The gateway's Prometheus metrics (served on its own `/metrics`)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

WEBHOOKS = Counter(
    "ig_outbound_webhooks_total",
    "Webhook deliveries received, by result: verified (acknowledged), refused (a bad "
    "signature, body or size), throttled (429: the backlog is full), unavailable (503: "
    "Redis could not keep it; Meta delivers it again).",
    ["result", "reason"],
)
INBOUND_EVENTS = Counter(
    "ig_outbound_inbound_events_total",
    "Events of acknowledged webhooks, by type and what recording did (recorded, duplicate, "
    "unknown_account).",
    ["type", "result"],
)
WEBHOOK_ACK_SECONDS = Histogram(
    "ig_outbound_webhook_ack_seconds",
    "Time from a webhook delivery's arrival to its answer.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
INTAKE = Counter(
    "ig_outbound_intake_intents_total",
    "Intents received on the HTTP intake, by status (queued, duplicate, refused).",
    ["status"],
)
