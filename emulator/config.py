"""Pydantic model of the emulator's configuration (JSON file or built in code)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

Digits = Annotated[str, Field(pattern=r"^[0-9]+$", min_length=1, max_length=64)]
Rate = Annotated[float, Field(ge=0.0, le=1.0)]

# Graph keeps a private reply possible for 7 days after the comment (IGL-PR).
PRIVATE_REPLY_WINDOW_S = 7 * 24 * 3600.0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AccountConfig(_Strict):
    """An Instagram professional account (IG_ID) and the user token that may send for it."""

    ig_id: Digits
    # SecretStr keeps the token out of repr(), logs and model_dump() output.
    token: SecretStr = Field(min_length=1)
    username: str = Field(min_length=1)


class CommentConfig(_Strict):
    """A comment on one of the account's posts; the target of a private reply."""

    comment_id: str = Field(min_length=1, max_length=128)
    ig_id: Digits
    commenter_igsid: Digits
    created_at: float  # epoch seconds


class FaultSettings(_Strict):
    """Injected misbehaviour. Rates are probabilities per call, drawn from a seeded RNG."""

    latency_ms: float = Field(default=0.0, ge=0.0)
    latency_jitter_ms: float = Field(default=0.0, ge=0.0)
    error_5xx_rate: Rate = 0.0
    # Graph answers code 2 ("service temporarily unavailable") or 1 ("unknown") on its 500s.
    error_5xx_code: Annotated[int, Field(ge=1, le=2)] = 2
    error_5xx_after_send_rate: Rate = 0.0
    timeout_rate: Rate = 0.0
    timeout_hang_s: float = Field(default=30.0, ge=0.0)
    throttle_rate: Rate = 0.0
    # Seed of the fault dice; setting it (config or PUT /_emulator/faults) re-seeds the RNG.
    seed: int | None = None


class ScriptedAnswer(_Strict):
    """One canned answer for a coming call: "the next call (of ig_id) gets this"."""

    status: int = Field(default=500, ge=200, le=599)
    # None means "no error": only useful together with hang_s (a timeout after success).
    code: int | None = 2
    subcode: int | None = None
    message: str | None = None
    error_type: str | None = None
    is_transient: bool | None = None
    # Record the call as delivered, then answer the error (the ambiguous case).
    after_send: bool = False
    # Sleep this long before answering; the call is processed (delivered) first.
    hang_s: float | None = Field(default=None, ge=0.0)
    ig_id: Digits | None = None
    # Shorthand for pushing the same answer several times.
    times: int = Field(default=1, ge=1, le=100_000)

    @model_validator(mode="after")
    def _meaningful(self) -> ScriptedAnswer:
        if self.code is None and self.hang_s is None:
            raise ValueError("a scripted answer needs an error code or hang_s")
        if self.code is not None and self.status < 400:
            raise ValueError("an error answer needs an HTTP status >= 400")
        return self


ThrottleAnswer = Literal["613", "4", "80002"]


class RateLimitConfig(_Strict):
    """Meta's per-account Send API limits (fact sheet §3), enforced over sliding windows.

    Three separate budgets per account (IG_ID): ``media`` (a message whose attachment is audio
    or video), ``private_reply`` (``recipient.comment_id``) and ``light`` (everything else:
    text, links, quick replies, templates, reactions, stickers, media shares, images, files,
    sender actions). A call arriving when its window already holds ``limit`` accepted calls is
    answered with the throttle error chosen by ``throttle_answer`` and not delivered.
    """

    # On by default, as on Graph; off only for measuring the worker without Meta's limits.
    enabled: bool = True
    light_per_s: int = Field(default=100, ge=1)
    media_per_s: int = Field(default=10, ge=1)
    private_replies_per_h: int = Field(default=750, ge=1)
    # Span of the per-second windows (light, media).
    window_s: float = Field(default=1.0, gt=0.0)
    # Span of the private-reply window: an hour, as Meta's limit; shorter only for tests.
    private_replies_window_s: float = Field(default=3600.0, gt=0.0)
    # Which of Graph's throttle answers to give: 613/2534040 (IG messaging), 4 (application
    # request limit) or 80002 (BUC throttling, Instagram). Which one graph.instagram.com really
    # sends is UNCONFIRMED (fact sheet §10.2).
    throttle_answer: ThrottleAnswer = "613"
    # estimated_time_to_regain_access (minutes) reported while throttled.
    regain_minutes: int = Field(default=1, ge=0)
    # Usage the header reports at least (percent): someone else spending the account's budget.
    usage_floor_pct: int = Field(default=0, ge=0, le=100)

    @field_validator("throttle_answer", mode="before")
    @classmethod
    def _code_as_text(cls, value: Any) -> Any:
        # Accept 613 as well as "613" (JSON clients send the code as a number).
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class EmulatorConfig(_Strict):
    """Everything the emulator starts with; all of it can also be changed at run time."""

    accounts: list[AccountConfig] = Field(default_factory=list)
    # IGSIDs that exist, per account (ig_id -> IGSIDs the account may message).
    users: dict[str, list[Digits]] = Field(default_factory=dict)
    allow_any_recipient: bool = False
    comments: list[CommentConfig] = Field(default_factory=list)
    faults: FaultSettings = Field(default_factory=FaultSettings)
    script: list[ScriptedAnswer] = Field(default_factory=list)
    rate_limits: RateLimitConfig = Field(default_factory=RateLimitConfig)

    @classmethod
    def from_json_file(cls, path: str | Path) -> EmulatorConfig:
        return cls.model_validate_json(Path(path).read_text(encoding="utf-8"))

    def to_json_with_secrets(self) -> str:
        """JSON including the real tokens: only for handing the config to a child process."""
        data: dict[str, Any] = self.model_dump(mode="json")
        data["accounts"] = [
            {**acc.model_dump(mode="json"), "token": acc.token.get_secret_value()}
            for acc in self.accounts
        ]
        return json.dumps(data)
