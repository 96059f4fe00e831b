"""What went wrong with a Graph API call, and what the sender should do about it.

Every send attempt ends in exactly one :class:`ErrorClass`::

    * SUCCESS    2xx with a `recipient_id`: delivered
    * THROTTLED  (R) rate limited: pause the account, honour estimated_time_to_regain_access
    * TRANSIENT  (T) retry with backoff, within the retry budget
      x max_transient_attempts   per-row cap; beyond it the same error counts as PERMANENT
      x ambiguous                may already be delivered: settle that before any resend
    * PERMANENT  (P) this message can never succeed: fail it, do not retry
    * ACCOUNT    (A) token / permission / account problem: stop the account, alert

Where the verdict comes from::

    * GraphError                 an HTTP answer (Graph `{"error": {...}}` body or not)
      x ERROR_TABLE[(code, subcode)]
      x ERROR_TABLE[(code, None)]           (throttle codes 4/17/32/613/800xx live here)
      x `is_transient: true`               -> TRANSIENT
      x HTTP 429                           -> THROTTLED
      x HTTP 5xx                           -> TRANSIENT (ambiguous for 500/502/504 w/o code)
      x other HTTP 4xx                     -> PERMANENT "unclassified_4xx"
      x anything else (1xx/2xx/3xx)        -> TRANSIENT "unexpected_status"
    * TransportFailure           no HTTP answer (httpx.HTTPError), always TRANSIENT
      x ambiguous=False  the request never left: ConnectError, ConnectTimeout, PoolTimeout, ...
      x ambiguous=True   it may have been delivered: ReadTimeout, WriteError, ...

Source: the shared fact sheet (instagram-api.md) §4 (tags MSG-ERR, G-ERR, G-RL; 3P for HTTP
statuses). Meta rewrites these pages often; the table below is the one place to update.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

import httpx

__all__ = [
    "ERROR_TABLE",
    "MALFORMED_SUCCESS",
    "SUCCESS",
    "THROTTLE_CODES",
    "TOKEN_MALFORMED",
    "TRANSIENT_CAP",
    "Classification",
    "ErrorClass",
    "GraphError",
    "TransportFailure",
    "classify",
    "classify_transport",
]


class ErrorClass(StrEnum):
    SUCCESS = "success"
    THROTTLED = "throttled"
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    ACCOUNT = "account"


@dataclass(frozen=True)
class Classification:
    """The verdict on one attempt.

    ``max_transient_attempts`` encodes the fact sheet's "T once, then P" / "T (cap), then P"
    rows: ``None`` means the class stands on its own (TRANSIENT rows then simply use the
    normal retry budget); ``N`` means this error may be treated as TRANSIENT for at most N
    occurrences on the same message, after which it is PERMANENT. The retry layer counts the
    occurrences and asks :meth:`effective_class`.

    ``ambiguous`` means the message may have been delivered even though the call failed
    (1/1357046, gateway 5xx, read timeouts, ...): never resend blindly.
    """

    error_class: ErrorClass
    reason: str
    max_transient_attempts: int | None = None
    ambiguous: bool = False

    def effective_class(self, occurrences: int) -> ErrorClass:
        """Class to act on when this error has now happened ``occurrences`` times (1 = first)."""
        capped = (
            self.max_transient_attempts is not None and occurrences > self.max_transient_attempts
        )
        if self.error_class is ErrorClass.TRANSIENT and capped:
            return ErrorClass.PERMANENT
        return self.error_class


# Cap for the open-ended "T (cap)" rows (codes 1 and 2). Code 2 is also what a customer who
# blocked the business produces, so retrying it for long only burns attempts.
TRANSIENT_CAP: Final = 3


def _t(reason: str, cap: int | None = None, *, ambiguous: bool = False) -> Classification:
    return Classification(ErrorClass.TRANSIENT, reason, cap, ambiguous)


def _r(reason: str) -> Classification:
    return Classification(ErrorClass.THROTTLED, reason)


def _p(reason: str) -> Classification:
    return Classification(ErrorClass.PERMANENT, reason)


def _a(reason: str) -> Classification:
    return Classification(ErrorClass.ACCOUNT, reason)


# fmt: off
# (code, subcode or None) -> verdict. Letters as in §4: T transient, R rate limit,
# P permanent, A account. `None` subcode = any subcode without its own row.
ERROR_TABLE: Final[Mapping[tuple[int, int | None], Classification]] = MappingProxyType({
    (1, None):          _t("api_unknown", TRANSIENT_CAP),
    # "A/P": missing permissions hit every message of the account, so stop it and alert.
    (1, 99):            _a("unknown_missing_permissions"),
    (1, 1357046):       _t("invalid_json_reply", ambiguous=True),  # "may actually have been sent"
    (2, None):          _t("service_unavailable", TRANSIENT_CAP),  # also: customer blocked us
    (4, None):          _r("app_rate_limited"),
    (17, None):         _r("user_rate_limited"),
    (32, None):         _r("pages_rate_limited"),
    (613, None):        _r("custom_rate_limited"),
    (613, 2534040):     _r("rate_limited"),
    (613, 2018338):     _p("tag_bothersome"),  # decrease tagged sends; alert on this reason
    (80001, None):      _r("buc_pages_rate_limited"),  # §3 [G-RL]
    (80002, None):      _r("buc_instagram_rate_limited"),
    (80006, None):      _r("buc_messenger_rate_limited"),
    (10, None):         _a("permission_denied"),
    (10, 2534022):      _p("outside_window"),  # HUMAN_AGENT is a producer decision, not ours
    (10, 2018278):      _p("outside_window_policy"),
    (10, 2018065):      _p("outside_window_news"),
    (10, 2018108):      _p("cannot_receive"),
    (10, 1893063):      _a("account_restricted"),
    (10, 2534077):      _a("account_link_unverified"),
    (100, None):        _p("invalid_parameter"),
    (100, 33):          _p("object_not_found"),
    (100, 2018001):     _p("no_matching_user"),
    (100, 2534014):     _p("no_matching_user"),
    (100, 2534015):     _p("invalid_message_data"),
    (100, 2534025):     _p("invalid_comment"),
    (100, 2534029):     _a("business_blocked"),
    (100, 2534037):     _p("not_thread_owner"),
    (100, 2534013):     _a("page_not_linked"),
    (100, 2018008):     _t("media_fetch_failed", 1),  # "P (T once if host flaky)"
    (100, 2018047):     _p("attachment_type_mismatch"),
    (100, 2018074):     _p("invalid_attachment_id"),
    (100, 2018109):     _p("attachment_too_large"),
    (100, 2018294):     _t("video_fetch_timeout", 1),  # "T once, then P"
    (190, None):        _a("token_invalid"),
    (190, 458):         _a("app_not_installed"),
    (190, 459):         _a("user_must_log_in"),
    (190, 460):         _a("password_changed"),
    (190, 463):         _a("token_expired"),
    (190, 464):         _a("user_must_log_in"),
    (190, 467):         _a("token_invalid"),
    (190, 492):         _a("token_invalid_session"),
    (200, None):        _a("permission_error"),
    (200, 1545041):     _p("recipient_unavailable"),
    (200, 2534041):     _a("dm_access_disabled"),
    (368, None):        _a("policy_blocked"),  # "long pause"
    (551, None):        _p("recipient_unavailable"),
    (551, 1545041):     _p("recipient_unavailable"),
    (2022, None):       _a("commerce_disabled"),
    (2018300, None):    _p("thread_owned_by_other_app"),
    (9000001, None):    _p("message_deleted"),
    # Not in the fact sheet's table: Messenger's answer to a second private reply to one
    # comment ("Activity already replied to"); the emulator uses it (fact sheet §10.10).
    (10900, None):      _p("already_replied"),
    (36103, None):      _a("account_not_eligible"),
})
# fmt: on

# Throttle codes [G-RL]: THROTTLED whatever the subcode unless a row says otherwise. Each has
# a (code, None) row above; this set exists so the tests can hold the table to that.
THROTTLE_CODES: Final = frozenset({4, 17, 32, 613, 80001, 80002, 80006})

# Verdicts that do not come from an error body.
SUCCESS: Final = Classification(ErrorClass.SUCCESS, "sent")
# A 2xx without `recipient_id` (or not JSON): Graph answered "OK" to something, so the
# message may well be out. Retrying blindly could send it twice.
MALFORMED_SUCCESS: Final = _t("malformed_success", ambiguous=True)
# The configured token cannot go into a header as is (whitespace, quotes, ...): nothing was
# sent, and no message of this account can be until the configuration is fixed.
TOKEN_MALFORMED: Final = _a("token_malformed")

_IS_TRANSIENT: Final = _t("is_transient")
_HTTP_429: Final = _r("http_429")
# A bare 500/502/504 (no Graph error code) comes from a proxy or a crashed backend that may
# have processed the send already; a bare 503 means it was turned away.
_HTTP_5XX: Final = _t("http_5xx")
_HTTP_5XX_AMBIGUOUS: Final = _t("http_5xx", ambiguous=True)
_AMBIGUOUS_5XX: Final = frozenset({500, 502, 504})
_MAYBE_PROCESSED_CODES: Final = frozenset({1, 2})
_UNCLASSIFIED_4XX: Final = _p("unclassified_4xx")
_UNEXPECTED_STATUS: Final = _t("unexpected_status")

# Graph error bodies are a few hundred bytes; do not spend time parsing anything huge.
_MAX_BODY_PARSE: Final = 1 << 20
_MAX_MESSAGE: Final = 500


@dataclass(frozen=True)
class GraphError:
    """The ``error`` object of a Graph answer, or a stand-in when the body had none."""

    code: int | None
    subcode: int | None
    message: str
    type: str | None
    is_transient: bool | None
    fbtrace_id: str | None
    http_status: int

    @classmethod
    def from_response(cls, status: int, body: bytes | str | Mapping[str, Any] | None) -> GraphError:
        """Parse ``{"error": {...}}``; never raises, whatever ``body`` holds.

        Without a usable error object the message is a summary that never quotes the body
        (it could be anything, including an echo of our request).
        """
        payload = _decode(body)
        err = payload.get("error") if isinstance(payload, Mapping) else None
        if isinstance(err, str):  # OAuth-style `{"error": "..."}`
            err = {"message": err}
        if not isinstance(err, Mapping):
            return cls(None, None, _summary(status, body, payload), None, None, None, status)
        message = err.get("message")
        return cls(
            code=_as_int(err.get("code")),
            subcode=_as_int(err.get("error_subcode")),
            message=(
                message[:_MAX_MESSAGE]
                if isinstance(message, str) and message
                else f"HTTP {status}: Graph error without a message"
            ),
            type=_as_str(err.get("type")),
            is_transient=err.get("is_transient")
            if isinstance(err.get("is_transient"), bool)
            else None,
            fbtrace_id=_as_str(err.get("fbtrace_id")),
            http_status=status,
        )


def _decode(body: object) -> object:
    if isinstance(body, Mapping):
        return body
    if not isinstance(body, bytes | str) or not body or len(body) > _MAX_BODY_PARSE:
        return None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None


def _summary(status: int, body: object, payload: object) -> str:
    if isinstance(body, bytes | str) and body:
        kind = "JSON body without an error object" if payload is not None else "non-JSON body"
        return f"HTTP {status}: {kind} ({len(body)} bytes)"
    if isinstance(body, Mapping):
        return f"HTTP {status}: JSON body without an error object"
    return f"HTTP {status}: empty body"


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 20:
        return int(value)
    return None


def _as_str(value: object) -> str | None:
    return value[:200] if isinstance(value, str) else None


def classify(err: GraphError) -> Classification:
    """Map a Graph error to its verdict: table rows first, then the generic fallbacks."""
    if err.code is not None:
        row = ERROR_TABLE.get((err.code, err.subcode))
        if row is None:
            row = ERROR_TABLE.get((err.code, None))
        if row is not None:
            maybe = err.code in _MAYBE_PROCESSED_CODES and row.error_class is ErrorClass.TRANSIENT
            if maybe and 500 <= err.http_status <= 599:
                # Graph's "unknown error" / "service unavailable" as a 5xx also comes after
                # a backend processed the send: maybe delivered, never resent blindly (the
                # ambiguous policy settles it, by its echo where echoes flow).
                return replace(row, ambiguous=True)
            return row
    if err.is_transient is True:
        return _IS_TRANSIENT
    status = err.http_status
    if status == 429:
        return _HTTP_429
    if 500 <= status <= 599:
        return _HTTP_5XX_AMBIGUOUS if err.code is None and status in _AMBIGUOUS_5XX else _HTTP_5XX
    if 400 <= status <= 499:
        return _UNCLASSIFIED_4XX
    return _UNEXPECTED_STATUS


@dataclass(frozen=True, kw_only=True)
class TransportFailure:
    """No HTTP answer. ``ambiguous``: the request may have reached Graph and been acted on.

    ``detail`` is the exception's own text, shortened; the exception itself is dropped
    because its ``request`` carries our headers (the token).
    """

    error_class: ErrorClass = ErrorClass.TRANSIENT
    reason: str
    ambiguous: bool
    exc_type: str
    detail: str = ""


# Most specific first (ConnectTimeout is also a TimeoutException, and so on).
_TRANSPORT_TABLE: Final[tuple[tuple[type[httpx.HTTPError], str, bool], ...]] = (
    # Never left: no connection, or no free connection slot, or refused before sending.
    (httpx.ConnectTimeout, "connect_timeout", False),
    (httpx.PoolTimeout, "pool_timeout", False),
    (httpx.ConnectError, "connect_error", False),
    (httpx.ProxyError, "proxy_error", False),
    (httpx.UnsupportedProtocol, "unsupported_protocol", False),
    (httpx.LocalProtocolError, "local_protocol_error", False),  # we could not form the request
    (httpx.TooManyRedirects, "too_many_redirects", False),  # answered with a redirect
    # Started: bytes went out, so Graph may have received and acted on the send.
    (httpx.ReadTimeout, "read_timeout", True),
    (httpx.WriteTimeout, "write_timeout", True),
    (httpx.ReadError, "read_error", True),
    (httpx.WriteError, "write_error", True),
    (httpx.RemoteProtocolError, "remote_protocol_error", True),
    (httpx.CloseError, "close_error", True),
    (httpx.DecodingError, "decoding_error", True),  # it answered; the send was processed
)


def classify_transport(exc: httpx.HTTPError, *, redact: tuple[str, ...] = ()) -> TransportFailure:
    """Classify a failure without an HTTP answer; unknown kinds count as ambiguous.

    ``redact``: strings (the token) to blank out of ``detail`` in case an exception text
    quotes a header value (h11 does that for illegal header values).
    """
    reason, ambiguous = "transport_error", True
    for exc_type, row_reason, row_ambiguous in _TRANSPORT_TABLE:
        if isinstance(exc, exc_type):
            reason, ambiguous = row_reason, row_ambiguous
            break
    detail = str(exc)
    for secret in redact:
        if secret:
            detail = detail.replace(secret, "[redacted]")
    return TransportFailure(
        reason=reason, ambiguous=ambiguous, exc_type=type(exc).__name__, detail=detail[:200]
    )
