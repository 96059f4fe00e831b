"""Errors the producer side raises, each machine-readable (`code`, `as_dict()`).

    OutboundError                  base of every producer-side refusal
     ├── IntentError               the intent is malformed; `problems` names each problem
     ├── UnknownAccountError       no worker of the fleet holds a token for the account
     │    └── AccountRemovedError  the account was removed (`ig-outbound accounts remove`)
     ├── WindowClosedError         the conversation's messaging window is closed (or unknown
     │                             and refused by policy; or the comment was answered)
     ├── IdempotencyConflictError  the key was used before with other content
     ├── ShardConfigError          the shard list cannot be used (empty, a URL twice, ...)
     └── ShardUnavailableError     the account's shard (one Redis of several) did not answer:
                                   nothing of it was queued there for sure; enqueue again
                                   (idempotent); other shards' intents are unaffected

The worker side has its own root (`ig_outbound.worker.errors.WorkerError`), the local
harness too (`ig_outbound.harness.errors.HarnessError`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pydantic import ValidationError

from ig_outbound.producers.intent import ALL_KINDS

_CONTENT_TAGS = ALL_KINDS


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an intent: where (`content.text`), what kind, and a message."""

    loc: str
    type: str
    msg: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def problems_from(exc: ValidationError) -> list[Problem]:
    """Every problem pydantic found, flattened to dotted locations."""
    out: list[Problem] = []
    for err in exc.errors(include_url=False, include_input=False):
        parts = [str(part) for part in err["loc"]]
        # pydantic puts the union tag in the path (`content.text.text`); drop it.
        if len(parts) >= 2 and parts[0] == "content" and parts[1] in _CONTENT_TAGS:
            del parts[1]
        loc = ".".join(parts) or "intent"
        msg = err["msg"].removeprefix("Value error, ")
        out.append(Problem(loc=loc, type=err["type"], msg=msg))
    return out


class OutboundError(Exception):
    """Base class of producer-side errors."""

    code: str = "error"

    def as_dict(self) -> dict[str, Any]:
        return {"error": self.code, "message": str(self)}


class IntentError(OutboundError, ValueError):
    """The intent is malformed; `problems` names every problem."""

    code = "invalid_intent"

    def __init__(self, problems: list[Problem], key: str | None = None) -> None:
        self.problems = problems
        self.key = key
        summary = "; ".join(f"{p.loc}: {p.msg}" for p in problems)
        super().__init__(f"invalid intent ({len(problems)} problem(s)): {summary}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "error": self.code,
            "key": self.key,
            "problems": [p.as_dict() for p in self.problems],
        }


class UnknownAccountError(OutboundError, ValueError):
    """No worker of the fleet holds a token for this account."""

    code = "unknown_account"


class AccountRemovedError(UnknownAccountError):
    """The account was removed from the registry (`ig-outbound accounts remove`)."""

    code = "account_removed"


class IdempotencyConflictError(OutboundError, ValueError):
    """The key was used before with different content (Stripe's semantics)."""

    code = "idempotency_conflict"


class WindowClosedError(OutboundError, ValueError):
    """Meta would refuse this send: its conversation window has closed (`reason`:
    `window_closed`, `window_unknown` when the policy refuses unknown windows, or
    `private_reply_already_sent`). Nothing was queued."""

    code = "window_closed"

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason

    def as_dict(self) -> dict[str, Any]:
        return {"error": self.code, "reason": self.reason, "message": str(self)}


class ShardConfigError(OutboundError, ValueError):
    """The shard list cannot be used: empty, a URL listed twice, an index out of range."""

    code = "invalid_shards"


class ShardUnavailableError(OutboundError):
    """One shard (one Redis primary) did not answer. `shard` is its index, `redis` its URL
    without the password. Enqueue is idempotent: the same intents can be sent again."""

    code = "shard_unavailable"

    def __init__(self, message: str, *, shard: int, redis: str, detail: str) -> None:
        super().__init__(message)
        self.shard = shard
        self.redis = redis
        self.detail = detail

    def as_dict(self) -> dict[str, Any]:
        return {
            "error": self.code,
            "shard": self.shard,
            "redis": self.redis,
            "detail": self.detail,
            "message": str(self),
        }
