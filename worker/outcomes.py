"""Building outcomes, and recording them in metrics and the log (one line per outcome)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog

from ig_outbound.producers.errors import Problem
from ig_outbound.producers.intent import MessageIntent
from ig_outbound.producers.outcome import DisclosureInfo, GraphErrorInfo, Outcome, OutcomeStatus
from ig_outbound.worker import metrics

log = structlog.get_logger("ig_outbound.outcome")


MAX_REASONS = 50


def _from_ms(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


def make_outcome(
    *,
    key: str,
    status: OutcomeStatus,
    intent: MessageIntent | None = None,
    reason: str | None = None,
    problems: list[Problem] | None = None,
    message_id: str | None = None,
    recipient_id: str | None = None,
    error: GraphErrorInfo | None = None,
    attempts: int = 0,
    enqueued_ms: int | None = None,
    now_ms: int | None = None,
    disclosure: DisclosureInfo | None = None,
) -> Outcome:
    """An outcome stamped `now_ms` (Redis's clock, `worker/clock.py`; this machine's when
    none is given)."""
    now = _from_ms(now_ms) or datetime.now(UTC)
    enqueued_at = _from_ms(enqueued_ms)
    latency = (now - enqueued_at).total_seconds() * 1000 if enqueued_at else None
    return Outcome(
        key=key,
        status=status,
        reason=reason,
        # Bounded, like everything an outcome carries into the streams.
        reasons=[p.as_dict() for p in (problems or [])[:MAX_REASONS]],
        account_id=intent.account_id if intent else None,
        recipient=intent.recipient.key if intent else None,
        kind=intent.kind if intent else None,
        message_id=message_id,
        recipient_id=recipient_id,
        error=error,
        attempts=attempts,
        enqueued_at=enqueued_at,
        sent_at=now if status is OutcomeStatus.SENT else None,
        finished_at=now,
        latency_ms=latency,
        metadata=dict(intent.metadata) if intent else {},
        disclosure=disclosure,
    )


def observe(outcome: Outcome, published: bool, **context: Any) -> None:
    """Count and log an outcome the moment it is published (never for a lost race)."""
    if not published:
        return
    metrics.OUTCOMES.labels(
        kind=outcome.kind or "unknown",
        status=outcome.status.value,
        reason=outcome.reason or "",
    ).inc()
    if outcome.latency_ms is not None:
        metrics.END_TO_END_SECONDS.observe(outcome.latency_ms / 1000)
    log.info(
        "outcome",
        key=outcome.key,
        account=outcome.account_id,
        kind=outcome.kind,
        status=outcome.status.value,
        reason=outcome.reason,
        message_id=outcome.message_id,
        attempts=outcome.attempts,
        latency_ms=round(outcome.latency_ms, 1) if outcome.latency_ms is not None else None,
        error_code=outcome.error.code if outcome.error else None,
        error_subcode=outcome.error.subcode if outcome.error else None,
        **context,
    )
