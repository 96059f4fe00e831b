"""Prometheus metrics (names prefixed `ig_outbound_`, units in names, bounded labels).

These are per process: each worker counts what it did, and Prometheus sums them over the
fleet. The fleet's state (queue depth, DLQ size, accounts by state, live workers, intents
enqueued) is not here: one worker at a time computes it for everyone (worker/fleet_metrics.py).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Queue wait and end to end: from 10 ms (a reply sent at once) to 24 h (the window's end).
LATENCY_BUCKETS_S = (
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600,
    7200, 21600, 43200, 86400,
)  # fmt: skip

OUTCOMES = Counter(
    "ig_outbound_outcomes_total",
    "Terminal outcomes by message kind, status and reason.",
    ["kind", "status", "reason"],
)
GRAPH_REQUESTS = Counter(
    "ig_outbound_graph_requests_total",
    "Graph API send requests by result class and Graph error code.",
    ["error_class", "code"],
)
GRAPH_REQUEST_SECONDS = Histogram(
    "ig_outbound_graph_request_duration_seconds",
    "Duration of one Graph API send request.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
END_TO_END_SECONDS = Histogram(
    "ig_outbound_end_to_end_seconds",
    "Enqueue to terminal outcome (sent, failed, rejected, expired, unknown).",
    buckets=LATENCY_BUCKETS_S,
)
QUEUE_WAIT_SECONDS = Histogram(
    "ig_outbound_queue_wait_seconds",
    "Enqueue (or not_before, when later) to the first send attempt: time spent waiting in "
    "the queue, its conversation and its account's rate budget.",
    buckets=LATENCY_BUCKETS_S,
)
ACCOUNT_SENDS = Counter(
    "ig_outbound_account_sends_total",
    "Requests Graph accepted, per account of the allow-list (`IG_OUTBOUND_METRICS_ACCOUNTS`) "
    "and rate class (light, media, private_reply): compare with ig_outbound_rate_limit.",
    ["account", "rate_class"],
)
RATE_LIMIT = Gauge(
    "ig_outbound_rate_limit",
    "Meta's limit per account and rate class, in calls per `window` (light and media per "
    "second, private replies per hour), as configured.",
    ["rate_class", "window"],
)
RETRIES = Counter(
    "ig_outbound_retries_total", "Deferred re-runs of an intent, by reason.", ["reason"]
)
AMBIGUOUS_SENDS = Counter(
    "ig_outbound_ambiguous_sends_total",
    "Sends whose fate was unknown (request left, no answer), by policy decision.",
    ["decision"],
)
ACCOUNT_PAUSES = Counter(
    "ig_outbound_account_pauses_total", "Fleet-wide account pauses started, by reason.", ["reason"]
)
JOBS_IN_FLIGHT = Gauge("ig_outbound_jobs_in_flight", "Send jobs running in this process.")
TRANSIT_ALLOWANCE_SECONDS = Gauge(
    "ig_outbound_transit_allowance_seconds",
    "The transit allowance this worker's rate windows add to Meta's window: the largest "
    "round-trip spread measured among live workers (worker/transit.py).",
)
STALE_SLOTS_RETAKEN = Counter(
    "ig_outbound_stale_slots_retaken_total",
    "Rate slots given back and taken again because this process stalled between the slot's "
    "admission and the request (the transit allowance would not have covered the delay).",
)
RATE_WAITS = Counter(
    "ig_outbound_rate_waits_total",
    "Short in-process waits for a reserved rate slot, by rate class.",
    ["rate_class"],
)
ACCOUNT_SLOWDOWNS = Counter(
    "ig_outbound_account_slowdowns_total",
    "Accounts slowed because Meta's usage header neared 100 %.",
)
LOG_LINES_DROPPED = Counter(
    "ig_outbound_log_lines_dropped_total",
    "Log lines dropped because stderr could not keep up (logging never blocks sends).",
)
RECLAIMED_JOBS = Counter(
    "ig_outbound_reclaimed_jobs_total",
    "Jobs of dead workers (heartbeat stopped) taken back and run again by a live worker.",
)
SWEPT = Counter(
    "ig_outbound_swept_total",
    "Conversation heads the sweeper ended or queued again, by what it did.",
    ["action"],
)
WINDOW_REFUSALS = Counter(
    "ig_outbound_window_refusals_total",
    "Intents ended without a send because their conversation window had closed, by reason.",
    ["stage", "reason"],
)
DISCLOSURES = Counter(
    "ig_outbound_disclosures_total",
    "Bot disclosures sent before an automated message, by trigger.",
    ["trigger"],
)
MEDIA_REFUSALS = Counter(
    "ig_outbound_media_refusals_total",
    "Intents refused unsent because a media URL broke the seed's rules, by reason.",
    ["reason"],
)
TOKEN_REFRESHES = Counter(
    "ig_outbound_token_refreshes_total",
    "Token refreshes by result: ok, refused (Graph said no; retried later), invalid (190: "
    "needs re-authorisation), error (no answer; retried later).",
    ["result"],
)
TOKEN_RELOADS = Counter(
    "ig_outbound_tokens_file_reloads_total",
    "Tokens file re-reads that found a change, by result (changed, error: kept the last good).",
    ["result"],
)
