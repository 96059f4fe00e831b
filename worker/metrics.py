"""Prometheus metrics (names prefixed `ig_outbound_`, units in names, bounded labels)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
    "ig_outbound_end_to_end_latency_seconds",
    "Enqueue to terminal outcome.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
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
ACCOUNTS = Gauge(
    "ig_outbound_accounts",
    "Registry accounts by state: active, paused (fleet-wide pause now), needs_reauth (Graph "
    "refused the token: an operator must add a new one), removed, corrupt (entry unreadable).",
    ["state"],
)
TOKENS_EXPIRING_SOON = Gauge(
    "ig_outbound_tokens_expiring_soon",
    "Accounts whose token expires within accounts.expiring_soon_s (default 7 days).",
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
