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
# The standard messaging window, and the HUMAN_AGENT tag's (fact sheet §0, §1.2).
STANDARD_WINDOW_S = 24 * 3600.0
HUMAN_AGENT_WINDOW_S = 7 * 24 * 3600.0
# What simulated users do, by default (``users/act`` and the steady rate).
EVENT_KINDS = ("message", "comment", "reaction", "postback", "seen")
DEFAULT_MIX = {"message": 0.6, "comment": 0.15, "reaction": 0.1, "postback": 0.1, "seen": 0.05}
# A long-lived Instagram user token lives 60 days; it can be refreshed once 24 h old
# (fact sheet §0, "Business Login for Instagram").
TOKEN_LIFETIME_S = 60 * 24 * 3600.0
TOKEN_MIN_REFRESH_AGE_S = 24 * 3600.0
# Webhook fields an account may subscribe to (``subscribed_apps``): the union of both
# spellings Meta's pages use (fact sheet §6 and §10.13: IGL-WH/PM vs IGL-SEND).
WEBHOOK_FIELDS = (
    "messages",
    "message_echoes",
    "message_reactions",
    "messaging_reactions",
    "messaging_postbacks",
    "messaging_seen",
    "messaging_referral",
    "messaging_referrals",
    "messaging_optins",
    "messaging_handover",
    "standby",
    "comments",
    "live_comments",
    "mentions",
    "story_insights",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AccountConfig(_Strict):
    """An Instagram professional account (IG_ID) and the user token that may send for it."""

    ig_id: Digits
    # SecretStr keeps the token out of repr(), logs and model_dump() output.
    token: SecretStr = Field(min_length=1)
    username: str = Field(min_length=1)
    # The profile name ``GET /me?fields=name`` answers; None: the username.
    name: str | None = Field(default=None, min_length=1)
    # The token's lifetime (None: ``tokens.lifetime_s``) and how old it already is when the
    # emulator starts (and again at every reset): ``token_age_s`` 59 days leaves it a day.
    token_lifetime_s: float | None = Field(default=None, gt=0.0)
    token_age_s: float = Field(default=0.0, ge=0.0)
    # Webhook fields the account is subscribed to at start (``subscribed_apps``); None: none.
    subscribed_fields: list[str] | None = None

    @field_validator("subscribed_fields")
    @classmethod
    def _known_fields(cls, fields: list[str] | None) -> list[str] | None:
        if fields is not None:
            unknown = sorted(set(fields) - set(WEBHOOK_FIELDS))
            if unknown:
                raise ValueError(f"unknown webhook fields {unknown}")
        return fields


class CommentConfig(_Strict):
    """A comment on one of the account's posts; the target of a private reply."""

    comment_id: str = Field(min_length=1, max_length=128)
    ig_id: Digits
    commenter_igsid: Digits
    created_at: float  # epoch seconds


class FaultSettings(_Strict):
    """Injected misbehaviour. Rates are probabilities per call, drawn from a seeded RNG."""

    # Slept after the call's arrival time is taken: a slow Graph (processing time).
    latency_ms: float = Field(default=0.0, ge=0.0)
    latency_jitter_ms: float = Field(default=0.0, ge=0.0)
    # Slept before the arrival time is taken: a request delayed on its way (network transit),
    # so it reaches the rate windows late by a random amount.
    transit_ms: float = Field(default=0.0, ge=0.0)
    transit_jitter_ms: float = Field(default=0.0, ge=0.0)
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


class WindowConfig(_Strict):
    """Graph's messaging window: a user must have written to the account recently.

    A send to a user (``recipient.id``) is refused with 403 10/2534022 unless the user's last
    message to the account is at most ``standard_s`` old (``human_agent_s`` for messages
    tagged HUMAN_AGENT). Sender actions and reactions follow the standard window; private
    replies have their own rule (7 days after the comment, once).
    """

    enforced: bool = True
    standard_s: float = Field(default=STANDARD_WINDOW_S, gt=0.0)
    human_agent_s: float = Field(default=HUMAN_AGENT_WINDOW_S, gt=0.0)
    # Users registered without a message (the config's ``users``, ``POST /_emulator/users``
    # and ``/accounts``, any recipient under ``allow_any_recipient``) count as having written
    # when registered: the config's at start and again at every reset. So a world built only
    # of registrations (the existing tests, the demo, the benchmarks) is in its window.
    registered_users_in_window: bool = True


class WebhookConfig(_Strict):
    """Where and how the emulator delivers Meta's webhooks (fact sheet §6)."""

    # None: no webhook is built or sent (the facts, e.g. a user's window, are still kept).
    url: Annotated[str, Field(pattern=r"^https?://[^\s]+$")] | None = None
    # Signs every body: X-Hub-Signature-256 = sha256=HMAC-SHA256(app_secret, body).
    app_secret: SecretStr = SecretStr("emulator-app-secret")
    # Further attempts after the first for a non-2xx answer, a connection error or a timeout.
    retries: int = Field(default=5, ge=0, le=100)
    timeout_s: float = Field(default=5.0, gt=0.0)
    # Events coalesced into one POST (entries of one body) while they wait to be sent.
    batch_max: int = Field(default=1, ge=1, le=1000)
    # Backoff before retry n: retry_backoff_s * 2**(n-1), at most retry_backoff_max_s (a 429
    # waits at least its Retry-After). Meta "retries immediately a few times", then backs off.
    retry_backoff_s: float = Field(default=1.0, ge=0.0)
    retry_backoff_max_s: float = Field(default=60.0, ge=0.0)
    # Webhook POSTs in flight at once.
    concurrency: int = Field(default=4, ge=1, le=256)
    # Webhooks waiting (first attempt or retry) at most; a new one beyond is dropped, counted.
    queue_max: int = Field(default=10_000, ge=1)
    # Webhooks kept for GET /_emulator/webhooks (the newest).
    log_max: int = Field(default=10_000, ge=1)
    # True: an account's event is sent only when the account subscribed to its field with
    # ``POST /{IG_ID}/subscribed_apps`` (the mapping is ``subscriptions.KIND_FIELDS``), as on
    # Graph. False (the default): every event is sent, as if every account subscribed to all.
    require_subscription: bool = False


class SimulatedUsersConfig(_Strict):
    """Instagram users who write to the accounts: what they do, and how often on their own."""

    # Events per second over all accounts, run by a background task; 0 = only on request.
    rate_per_s: float = Field(default=0.0, ge=0.0, le=10_000.0)
    # Relative weights of the event kinds (message, comment, reaction, postback, seen).
    mix: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_MIX))
    # Seed of the users' dice (None: random); reset re-seeds.
    seed: int | None = None
    # Chance that a message or comment comes from a user the account has never seen.
    new_user_rate: Rate = 0.1
    # Chances that a DM answers a quick reply / replies to a business message / is an image.
    quick_reply_rate: Rate = 0.2
    reply_to_rate: Rate = 0.1
    image_rate: Rate = 0.1

    @field_validator("mix")
    @classmethod
    def _known_kinds(cls, mix: dict[str, float]) -> dict[str, float]:
        return validate_mix(mix)


def validate_mix(mix: dict[str, float]) -> dict[str, float]:
    unknown = sorted(set(mix) - set(EVENT_KINDS))
    if unknown:
        raise ValueError(f"unknown event kinds {unknown}; known: {list(EVENT_KINDS)}")
    if any(weight < 0 for weight in mix.values()) or sum(mix.values()) <= 0:
        raise ValueError("mix weights must be >= 0 and not all 0")
    return mix


class MediaConfig(_Strict):
    """The emulator's media host: files of any format and size over https, on a port of its
    own (``media_app.py``). Graph then knows the real format and size of every file there and
    refuses what Meta refuses (``media_checks.py``)."""

    enabled: bool = False
    host: str = Field(default="127.0.0.1", min_length=1)
    # 0: a free port, chosen at start (``GET /_emulator/media`` says which).
    port: int = Field(default=0, ge=0, le=65535)
    # The PEM certificate and key it serves. None: a throwaway CA and certificate are made at
    # start (``run_emulator_process`` makes them in the parent, which removes them at exit).
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    # The CA that signed the certificate, reported to clients so they can trust it.
    ca_file: Path | None = None

    @model_validator(mode="after")
    def _cert_with_key(self) -> MediaConfig:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("give both tls_cert_file and tls_key_file, or neither")
        return self


class TokenConfig(_Strict):
    """Lifetimes of Instagram user tokens, on the emulator's clock (``tokens.py``)."""

    # Lifetime of a token no account overrides, and of every refreshed token.
    lifetime_s: float = Field(default=TOKEN_LIFETIME_S, gt=0.0)
    # ``refresh_access_token`` refuses a younger token (Meta: 24 h).
    min_refresh_age_s: float = Field(default=TOKEN_MIN_REFRESH_AGE_S, ge=0.0)
    # False: a refreshed token stays valid until its own expiry (what Meta's pages imply: they
    # say nothing of invalidating it). True: it is ``superseded`` at once (190/467).
    revoke_on_refresh: bool = False


class AppConfig(_Strict):
    """The Meta app the tokens were issued to, as ``GET /{IG_ID}/subscribed_apps`` names it."""

    id: Digits = "990000000000001"
    name: str = Field(default="ig-outbound emulator app", min_length=1)


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
    window: WindowConfig = Field(default_factory=WindowConfig)
    # Seconds the emulator's clock runs ahead of the real one (``PUT /_emulator/clock``).
    clock_offset_s: float = 0.0
    webhooks: WebhookConfig = Field(default_factory=WebhookConfig)
    simulated_users: SimulatedUsersConfig = Field(default_factory=SimulatedUsersConfig)
    media: MediaConfig = Field(default_factory=MediaConfig)
    tokens: TokenConfig = Field(default_factory=TokenConfig)
    app: AppConfig = Field(default_factory=AppConfig)

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
        data["webhooks"]["app_secret"] = self.webhooks.app_secret.get_secret_value()
        return json.dumps(data)
