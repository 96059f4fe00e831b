"""In-memory world of the emulator: accounts, users, comments, faults, rate windows, calls,
conversations (who wrote when: the messaging window), the clock, the webhook dispatcher, the
accounts' tokens (``tokens.py``) and webhook subscriptions (``subscriptions.py``).

Guarding: request handlers run on one asyncio loop and every method here is synchronous (no
``await`` inside), so each call is atomic with respect to other requests. The ``RLock`` also
makes the state safe when a test thread reads it while uvicorn serves in-process; the send
pipeline holds it across its whole check-then-deliver section (see ``pipeline.py``).
"""

from __future__ import annotations

import random
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import httpx

from ig_outbound.emulator.clock import EmulatorClock
from ig_outbound.emulator.config import (
    AccountConfig,
    CommentConfig,
    EmulatorConfig,
    FaultSettings,
    RateLimitConfig,
    ScriptedAnswer,
    SimulatedUsersConfig,
    TokenConfig,
    WindowConfig,
)
from ig_outbound.emulator.conversations import Conversations
from ig_outbound.emulator.delivery import WebhookDispatcher
from ig_outbound.emulator.ids import app_scoped_id, message_id
from ig_outbound.emulator.media_app import MediaHost
from ig_outbound.emulator.rate_limits import (
    RateClass,
    RateLimiter,
    max_in_any_window,
    rate_class_of,
)
from ig_outbound.emulator.subscriptions import Subscriptions
from ig_outbound.emulator.tokens import Token, TokenRegistry, TokenSpec

FaultKind = Literal["throttle", "error_5xx", "error_5xx_after_send", "timeout"]


@dataclass
class Account:
    ig_id: str
    # The account's own (configured) token; it may hold more (``EmulatorState.tokens``).
    token: str = field(repr=False)  # secret: never logged, never returned by control routes
    username: str
    name: str = ""  # the profile name (``GET /me?fields=name``); "" means the username

    def public(self) -> dict[str, str]:
        return {"ig_id": self.ig_id, "username": self.username}

    @property
    def app_scoped_id(self) -> str:
        """The ``id`` ``GET /me`` answers: the account as the app sees it, not its IG_ID."""
        return app_scoped_id(self.ig_id)

    @property
    def display_name(self) -> str:
        return self.name or self.username


@dataclass
class Comment:
    comment_id: str
    ig_id: str
    commenter_igsid: str
    created_at: float
    replied_at: float | None = None


@dataclass
class RecordedCall:
    """An accepted (delivered) send, as tests and benchmarks see it."""

    index: int
    arrived_at: float
    finished_at: float
    ig_id: str
    version: str
    path_form: Literal["id", "me"]
    kind: str  # "message" | "sender_action"
    message_kind: str | None
    sender_action: str | None
    recipient_id: str
    comment_id: str | None
    body: dict[str, Any]
    response_status: int
    message_id: str | None
    fault: str | None = None  # set when the answer was not a plain success
    truncations: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RejectedCall:
    index: int
    at: float
    status: int
    code: int
    subcode: int | None
    ig_id: str | None
    version: str
    fault: str | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class EmulatorState:
    """All mutable emulator state. One instance per app."""

    def __init__(
        self, config: EmulatorConfig, webhook_transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.lock = threading.RLock()
        self._config = config
        self._accounts_by_id: dict[str, Account] = {}
        # What reset restores: each account's own token and configured subscription.
        self._token_specs: dict[str, TokenSpec] = {}
        self._configured_fields: dict[str, list[str]] = {}
        self.tokens = TokenRegistry(config.tokens.model_copy())
        self.subscriptions = Subscriptions()
        self._users: dict[str, set[str]] = {}
        self._comments: dict[str, Comment] = {}
        # Users registered as having written (WindowConfig.registered_users_in_window).
        self._open_on_register: set[tuple[str, str]] = set()
        # Users and comments simulated users made up: forgotten by reset, so a seeded run
        # after a reset starts from the same world.
        self._simulated_users: set[tuple[str, str]] = set()
        self._simulated_comments: set[str] = set()
        self.allow_any_recipient = config.allow_any_recipient
        self.app = config.app.model_copy()  # the Meta app tokens belong to
        self._mid_counter = 0
        self.window = config.window.model_copy()
        self.clock = EmulatorClock(config.clock_offset_s)
        self.conversations = Conversations()
        self.webhooks = WebhookDispatcher(config.webhooks.model_copy(), webhook_transport)
        # The media host (``media_server.media_host_running`` attaches it once it serves).
        self.media_config = config.media.model_copy()
        self.media = MediaHost()
        # Called after every reset (outside the lock), e.g. to wake the simulated users' task.
        self.reset_listeners: list[Callable[[], None]] = []
        for account in config.accounts:
            self.add_account(account)
        for ig_id, igsids in config.users.items():
            self.add_users(ig_id, igsids)
        for comment in config.comments:
            self.add_comment(comment)
        self._init_run_state()

    def _init_run_state(self) -> None:
        """Everything ``reset()`` clears: calls, counters, faults, script, replies, rate windows,
        conversations, webhooks, the clock offset, simulated users' inventions, tokens and
        subscriptions.

        Settings (faults, rate limits, window, webhooks, simulated users, tokens) go back to
        the configured ones; registered users count as having written now (if so configured).
        Each account gets its own token back, issued now (minus its configured age), and its
        configured subscription; registered and refreshed tokens and revocations are forgotten.
        """
        self._forget_simulated()
        self.media.log.clear()
        self.window = self._config.window.model_copy()
        self.clock = EmulatorClock(self._config.clock_offset_s)
        self.conversations = Conversations()
        self._registered_at = self.clock.now()  # allow_any_recipient's implicit users
        self.tokens.restart(self._config.tokens.model_copy(), self._token_specs, self.clock.now())
        self.subscriptions.restart(self._configured_fields)
        self._graph_calls: Counter[tuple[str, str]] = Counter()
        self._webhooks_unsubscribed: Counter[str] = Counter()
        for ig_id, igsid in self._open_on_register:
            self.conversations.registered(ig_id, igsid, self._registered_at)
        self.webhooks.reset(self._config.webhooks.model_copy())
        self.simulated_users = self._config.simulated_users.model_copy()
        self.users_rng = random.Random(self.simulated_users.seed)
        self.calls: list[RecordedCall] = []
        self.rejected: list[RejectedCall] = []
        self.faults = self._config.faults.model_copy()
        self.rng = random.Random(self.faults.seed)
        self._script: deque[ScriptedAnswer] = deque()
        self.push_script(self._config.script)
        self._rejected_by_code: Counter[str] = Counter()
        self._rejected_by_error: Counter[str] = Counter()
        self._accepted_by_account: Counter[str] = Counter()
        self._faults_injected: Counter[str] = Counter()
        self.rate_limits = RateLimiter(self._config.rate_limits.model_copy())
        for comment in self._comments.values():
            comment.replied_at = None

    # --- registry ---------------------------------------------------------------------

    def add_account(self, account: AccountConfig) -> Account:
        """Register an account and issue its token now (minus ``token_age_s``); it survives
        resets. Registering an account again rotates its own token (the old one is unknown
        from then on) and takes its new subscription."""
        token = account.token.get_secret_value()
        with self.lock:
            holder = self.tokens.owner(token)
            if holder is not None and holder != account.ig_id:
                raise ValueError("token already belongs to another account")
            old = self._accounts_by_id.get(account.ig_id)
            if old is not None:
                self.tokens.remove(old.token)
            self.tokens.remove(token)  # the same token again: issued afresh
            new = Account(account.ig_id, token, account.username, account.name or "")
            self._accounts_by_id[new.ig_id] = new
            spec = TokenSpec(token, account.token_age_s, account.token_lifetime_s)
            self._token_specs[new.ig_id] = spec
            self.tokens.issue(
                new.ig_id,
                token,
                now=self.clock.now(),
                age_s=spec.age_s,
                lifetime_s=spec.lifetime_s,
            )
            fields = list(account.subscribed_fields or [])
            self._configured_fields[new.ig_id] = fields
            if fields:
                self.subscriptions.subscribe(new.ig_id, fields)
            else:
                self.subscriptions.unsubscribe(new.ig_id)
            self._users.setdefault(new.ig_id, set())
            return new

    def add_users(
        self,
        ig_id: str,
        igsids: Iterable[str],
        *,
        in_window: bool | None = None,
        simulated: bool = False,
    ) -> int:
        """Register users of an account; ``in_window`` None follows the window settings."""
        with self.lock:
            users = self._users.setdefault(ig_id, set())
            opens = self.window.registered_users_in_window if in_window is None else in_window
            now = self.clock.now()
            for igsid in igsids:
                key = (ig_id, igsid)
                if simulated and igsid not in users:
                    self._simulated_users.add(key)
                users.add(igsid)
                if opens:
                    self._open_on_register.add(key)
                    self.conversations.registered(ig_id, igsid, now)
            return len(users)

    def users_of(self, ig_id: str) -> list[str]:
        """The account's registered users, sorted (stable for a seeded choice)."""
        with self.lock:
            return sorted(self._users.get(ig_id, ()))

    def _forget_simulated(self) -> None:
        for ig_id, igsid in self._simulated_users:
            self._users.get(ig_id, set()).discard(igsid)
            self._open_on_register.discard((ig_id, igsid))
        for comment_id in self._simulated_comments:
            self._comments.pop(comment_id, None)
        self._simulated_users.clear()
        self._simulated_comments.clear()

    def add_comment(self, comment: CommentConfig, *, simulated: bool = False) -> Comment:
        with self.lock:
            new = Comment(
                comment.comment_id, comment.ig_id, comment.commenter_igsid, comment.created_at
            )
            self._comments[new.comment_id] = new
            if simulated:
                self._simulated_comments.add(new.comment_id)
            return new

    def accounts(self) -> list[Account]:
        with self.lock:
            return list(self._accounts_by_id.values())

    def account_for_token(self, token: str) -> Account | None:
        """The account of a token that is valid now (emulator clock), else None."""
        with self.lock:
            found = self.tokens.find(token)
            if found is None or found.status(self.clock.now()) != "valid":
                return None
            return self._accounts_by_id.get(found.ig_id)

    def user_exists(self, ig_id: str, igsid: str) -> bool:
        with self.lock:
            return self.allow_any_recipient or igsid in self._users.get(ig_id, ())

    def comment(self, comment_id: str) -> Comment | None:
        with self.lock:
            return self._comments.get(comment_id)

    def account(self, ig_id: str) -> Account | None:
        with self.lock:
            return self._accounts_by_id.get(ig_id)

    # --- tokens and subscriptions ---------------------------------------------------------

    def set_token_settings(self, patch: Mapping[str, Any]) -> TokenConfig:
        """Merge token settings; tokens already issued keep their lifetimes."""
        with self.lock:
            merged = {**self.tokens.settings.model_dump(), **patch}
            self.tokens.settings = TokenConfig.model_validate(merged)
            return self.tokens.settings

    def register_token(
        self, ig_id: str, token: str, *, age_s: float = 0.0, lifetime_s: float | None = None
    ) -> Token:
        """A further valid token for the account (an operator logged in again). Forgotten
        at reset. ``ValueError`` if the token is already known."""
        with self.lock:
            return self.tokens.issue(
                ig_id,
                token,
                now=self.clock.now(),
                age_s=age_s,
                lifetime_s=lifetime_s,
                origin="registered",
            )

    def revoke_tokens(
        self, ig_id: str, subcode: int, fingerprints: Iterable[str] | None = None
    ) -> list[dict[str, Any]]:
        """Revoke the account's tokens (all, or those with these fingerprints): 190/subcode
        from now on, until reset. Returns the revoked ones, described."""
        with self.lock:
            now = self.clock.now()
            return [t.describe(now) for t in self.tokens.revoke(ig_id, subcode, fingerprints)]

    def describe_tokens(self, ig_id: str) -> list[dict[str, Any]]:
        with self.lock:
            now = self.clock.now()
            return [token.describe(now) for token in self.tokens.of_account(ig_id)]

    def subscribed_fields(self) -> dict[str, list[str]]:
        """Every account's subscribed webhook fields ([] when not subscribed)."""
        with self.lock:
            return {ig_id: self.subscriptions.fields(ig_id) for ig_id in self._accounts_by_id}

    def webhook_wanted(self, ig_id: str, kind: str) -> bool:
        """Whether an event of ``kind`` for the account gets a webhook: a URL is set and,
        under ``webhooks.require_subscription``, the account subscribed to its field."""
        with self.lock:
            if not self.webhooks.enabled:
                return False
            if not self.webhooks.settings.require_subscription:
                return True
            if self.subscriptions.covers(ig_id, kind):
                return True
            self._webhooks_unsubscribed[kind] += 1
            return False

    def count_graph_call(self, route: str, result: str) -> None:
        """One call of a Graph route besides the Send API (refresh, me, subscribed_apps)."""
        with self.lock:
            self._graph_calls[(route, result)] += 1

    def _graph_call_counts(self) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        for (route, result), count in sorted(self._graph_calls.items()):
            counts.setdefault(route, {})[result] = count
        return counts

    # --- the messaging window ------------------------------------------------------------------

    def window_opened_at(self, ig_id: str, igsid: str) -> float | None:
        """When the user last wrote to the account (emulator clock), or None: never."""
        with self.lock:
            conversation = self.conversations.get(ig_id, igsid)
            opened = conversation.opened_at if conversation is not None else None
            if opened is None and self._implicitly_open(ig_id, igsid):
                return self._registered_at  # any recipient "exists", as if registered
            return opened

    def _implicitly_open(self, ig_id: str, igsid: str) -> bool:
        return (
            self.allow_any_recipient
            and self.window.registered_users_in_window
            and igsid not in self._users.get(ig_id, ())
        )

    def record_user_message(
        self, ig_id: str, igsid: str, at: float, mid: str | None, *, simulated: bool = False
    ) -> None:
        """A user wrote to the account at ``at`` (emulator clock): opens the window, and makes
        the user an existing user of the account."""
        with self.lock:
            if igsid not in self._users.get(ig_id, ()):
                self.add_users(ig_id, [igsid], in_window=False, simulated=simulated)
            self.conversations.user_wrote(ig_id, igsid, at, mid)

    def set_window(self, patch: Mapping[str, Any]) -> WindowConfig:
        with self.lock:
            self.window = WindowConfig.model_validate({**self.window.model_dump(), **patch})
            return self.window

    def set_simulated_users(self, patch: Mapping[str, Any]) -> SimulatedUsersConfig:
        with self.lock:
            merged = {**self.simulated_users.model_dump(), **patch}
            self.simulated_users = SimulatedUsersConfig.model_validate(merged)
            if "seed" in patch:
                self.users_rng.seed(self.simulated_users.seed)
            return self.simulated_users

    # --- faults and script --------------------------------------------------------------

    def set_faults(self, patch: Mapping[str, Any]) -> FaultSettings:
        with self.lock:
            merged = {**self.faults.model_dump(), **patch}
            self.faults = FaultSettings.model_validate(merged)
            if "seed" in patch:
                self.rng.seed(self.faults.seed)
            return self.faults

    def set_rate_limits(self, patch: Mapping[str, Any]) -> RateLimitConfig:
        """Merge rate-limit settings; the windows and violation counters are kept."""
        with self.lock:
            merged = {**self.rate_limits.config.model_dump(), **patch}
            self.rate_limits.config = RateLimitConfig.model_validate(merged)
            return self.rate_limits.config

    def push_script(self, answers: Iterable[ScriptedAnswer]) -> int:
        with self.lock:
            for answer in answers:
                single = answer.model_copy(update={"times": 1})
                self._script.extend(single for _ in range(answer.times))
            return len(self._script)

    def take_scripted(self, ig_id: str) -> ScriptedAnswer | None:
        """Pop the first queued answer meant for this account (or for any account)."""
        with self.lock:
            for i, answer in enumerate(self._script):
                if answer.ig_id is None or answer.ig_id == ig_id:
                    del self._script[i]
                    return answer
            return None

    def roll_fault(self) -> FaultKind | None:
        """One draw split into bands, so each kind fires at its configured rate."""
        with self.lock:
            f = self.faults
            bands: list[tuple[FaultKind, float]] = [
                ("throttle", f.throttle_rate),
                ("error_5xx", f.error_5xx_rate),
                ("error_5xx_after_send", f.error_5xx_after_send_rate),
                ("timeout", f.timeout_rate),
            ]
            if not any(rate for _, rate in bands):
                return None  # keep the RNG sequence untouched when faults are off
            draw, edge = self.rng.random(), 0.0
            for kind, rate in bands:
                edge += rate
                if draw < edge:
                    return kind
            return None

    def latency_s(self) -> float:
        with self.lock:
            f = self.faults
            jitter = self.rng.uniform(0.0, f.latency_jitter_ms) if f.latency_jitter_ms else 0.0
            return (f.latency_ms + jitter) / 1000.0

    def transit_s(self) -> float:
        with self.lock:
            f = self.faults
            jitter = self.rng.uniform(0.0, f.transit_jitter_ms) if f.transit_jitter_ms else 0.0
            return (f.transit_ms + jitter) / 1000.0

    def count_fault(self, kind: str) -> None:
        with self.lock:
            self._faults_injected[kind] += 1

    # --- recording ------------------------------------------------------------------------

    def next_message_id(self, ig_id: str) -> str:
        with self.lock:
            self._mid_counter += 1  # never reset: ids stay unique across resets
            return message_id(ig_id, self._mid_counter)

    def mark_replied(self, comment_id: str, at: float) -> bool:
        """Claim the one private reply of a comment; False if it was already used."""
        with self.lock:
            comment = self._comments.get(comment_id)
            if comment is None or comment.replied_at is not None:
                return False
            comment.replied_at = at
            return True

    def record_call(self, **fields: Any) -> RecordedCall:
        with self.lock:
            call = RecordedCall(index=len(self.calls), **fields)
            self.calls.append(call)
            self._accepted_by_account[call.ig_id] += 1
            self.rate_limits.record(
                call.ig_id, rate_class_of(call.comment_id, call.message_kind), call.arrived_at
            )
            return call

    def record_rejected(
        self,
        *,
        at: float,
        status: int,
        code: int,
        subcode: int | None,
        ig_id: str | None,
        version: str,
        fault: str | None,
    ) -> RejectedCall:
        with self.lock:
            rejected = RejectedCall(
                len(self.rejected), at, status, code, subcode, ig_id, version, fault
            )
            self.rejected.append(rejected)
            self._rejected_by_code[str(code)] += 1
            self._rejected_by_error[f"{code}/{subcode}" if subcode is not None else str(code)] += 1
            return rejected

    # --- reading -----------------------------------------------------------------------------

    def snapshot(self, since: int = 0, rejected_since: int = 0) -> dict[str, Any]:
        with self.lock:
            return {
                "calls": [c.to_json() for c in self.calls[max(since, 0) :]],
                "rejected": [r.to_json() for r in self.rejected[max(rejected_since, 0) :]],
                "next_since": len(self.calls),
                "next_rejected_since": len(self.rejected),
            }

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "accepted": len(self.calls),
                "accepted_by_account": dict(self._accepted_by_account),
                "rejected": len(self.rejected),
                "rejected_by_code": dict(self._rejected_by_code),
                "rejected_by_error": dict(self._rejected_by_error),
                "faults_injected": dict(self._faults_injected),
                "scripted_pending": len(self._script),
                "violations": self.rate_limits.violations(),
                "violations_by_account_class": self.rate_limits.violations_by_account_class(),
                "max_calls_in_any_window": self._max_calls_in_any_window(),
                "webhooks": self.webhooks.stats(),
                # Events held back under require_subscription (not subscribed), by kind.
                "webhooks_unsubscribed": dict(self._webhooks_unsubscribed),
                # refresh_access_token, me (and GET /{IG_ID}), subscribed_apps: by result.
                "graph_calls": self._graph_call_counts(),
                "clock_offset_s": self.clock.offset_s,
            }

    def _max_calls_in_any_window(self) -> dict[str, dict[str, int]]:
        """Per account and class: the most accepted calls in any span of the class's window."""
        times: dict[tuple[str, RateClass], list[float]] = {}
        for call in self.calls:
            key = (call.ig_id, rate_class_of(call.comment_id, call.message_kind))
            times.setdefault(key, []).append(call.arrived_at)
        result: dict[str, dict[str, int]] = {}
        for (ig_id, rate_class), arrived in sorted(times.items()):
            window = self.rate_limits.window_s(rate_class)
            result.setdefault(ig_id, {})[rate_class] = max_in_any_window(arrived, window)
        return result

    def reset(self) -> None:
        """Clear the run (see ``_init_run_state``); keep accounts, users and comments (but not
        the ones simulated users made up).
        """
        with self.lock:
            self._init_run_state()
        for listener in self.reset_listeners:
            listener()
