"""The terminal outcome of an intent: exactly one per accepted intent (docs/outcomes.md)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class OutcomeStatus(StrEnum):
    SENT = "sent"
    FAILED = "failed"
    REJECTED = "rejected"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


DEAD_LETTER_STATUSES = frozenset(
    {OutcomeStatus.FAILED, OutcomeStatus.REJECTED, OutcomeStatus.EXPIRED, OutcomeStatus.UNKNOWN}
)


class GraphErrorInfo(BaseModel):
    """What Graph answered, without anything secret."""

    model_config = ConfigDict(frozen=True)

    http_status: int | None = None
    code: int | None = None
    subcode: int | None = None
    error_class: str
    message: str | None = None
    fbtrace_id: str | None = None


class DisclosureInfo(BaseModel):
    """The bot disclosure sent just before the intent's message (worker/disclosure.py)."""

    model_config = ConfigDict(frozen=True)

    trigger: str = Field(description="conversation_start, lapse or human_handover.")
    message_id: str | None = None
    sent_at: datetime | None = None


class Outcome(BaseModel):
    """What finally happened to one intent."""

    model_config = ConfigDict(frozen=True)

    key: str
    status: OutcomeStatus
    reason: str | None = Field(default=None, description="Machine-readable reason slug.")
    reasons: list[dict[str, str]] = Field(
        default_factory=list, description="Every validation problem, for `rejected`."
    )
    account_id: str | None = None
    recipient: str | None = None
    kind: str | None = None
    message_id: str | None = None
    recipient_id: str | None = None
    error: GraphErrorInfo | None = None
    attempts: int = 0
    enqueued_at: datetime | None = None
    sent_at: datetime | None = None
    finished_at: datetime
    latency_ms: float | None = Field(default=None, description="Enqueue to outcome.")
    metadata: dict[str, Any] = Field(default_factory=dict)
    disclosure: DisclosureInfo | None = Field(
        default=None, description="The bot disclosure sent just before this message, if any."
    )
