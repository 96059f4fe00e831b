"""Async client for the Instagram Send API (``POST /<version>/<IG_ID>|me/messages``).

One pooled ``httpx.AsyncClient`` per process. :meth:`GraphClient.send_message` never raises
for HTTP or transport problems: every attempt comes back as a :class:`GraphResult` carrying
its :class:`~ig_outbound.graph.errors.Classification`, so the retry layer has one thing to read.

Token hygiene: the token travels only in the ``Authorization`` header. httpx exceptions are
turned into :class:`TransportFailure` values and dropped, because their ``request`` carries
the headers; the token is also blanked out of any text taken from the answer or an
exception. Pass it as ``SecretStr`` to keep it out of tracebacks that render locals.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import quote

import httpx
import structlog
from pydantic import SecretStr

from ig_outbound.graph.errors import (
    MALFORMED_SUCCESS,
    SUCCESS,
    TOKEN_MALFORMED,
    Classification,
    ErrorClass,
    GraphError,
    TransportFailure,
    classify,
    classify_transport,
)
from ig_outbound.graph.settings import GraphSettings
from ig_outbound.graph.usage import (
    AppUsage,
    BucUsage,
    max_usage_pct,
    parse_app_usage,
    parse_buc_usage,
)

__all__ = ["GraphClient", "GraphClientError", "GraphResult"]

log = structlog.get_logger(__name__)


class GraphClientError(RuntimeError):
    """A bug on our side (e.g. using a closed client), never an HTTP or transport problem."""

    code = "graph_client_error"


# Visible ASCII minus backslash and quotes: such a token goes into a header untouched and
# reads the same inside any repr, so redaction by plain substring always finds it. (h11
# quotes an illegal header value, token included, in its exception text.)
_TOKEN_RE: Final = re.compile(r"[!#-&(-\[\]-~]{1,4096}")
_REDACTED: Final = "[redacted]"
_MAX_RETRY_AFTER_S: Final = 24 * 3600.0


@dataclass(frozen=True)
class GraphResult:
    """The outcome of one send attempt; ``classification`` says what to do next."""

    ok: bool
    http_status: int | None
    recipient_id: str | None
    message_id: str | None  # None for sender actions (react, typing, ...)
    error: GraphError | None
    classification: Classification
    transport: TransportFailure | None
    usage: dict[str, BucUsage]
    elapsed_s: float
    app_usage: AppUsage | None = None
    # `Retry-After` in seconds if Graph sent one (undocumented for Graph, so rarely set).
    retry_after_s: float | None = None

    @property
    def error_class(self) -> ErrorClass:
        return self.classification.error_class

    @property
    def ambiguous(self) -> bool:
        """The message may have been delivered although this attempt did not confirm it."""
        return self.classification.ambiguous


def build_http_client(
    settings: GraphSettings, *, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """The pooled HTTP client for Graph: explicit timeouts and limits, HTTP/1.1, no redirects.

    Also used by bench/throughput.py's floor, so both phases talk to Graph the same way."""
    return httpx.AsyncClient(
        base_url=settings.base_url,
        timeout=httpx.Timeout(
            connect=settings.connect_timeout_s,
            read=settings.read_timeout_s,
            write=settings.write_timeout_s,
            pool=settings.pool_timeout_s,
        ),
        limits=httpx.Limits(
            max_connections=settings.max_connections,
            max_keepalive_connections=settings.max_keepalive_connections,
        ),
        http1=True,
        http2=False,
        # A redirect is never a valid answer to a send; following it would repeat the POST.
        follow_redirects=False,
        transport=transport,
        headers={"User-Agent": "ig-outbound", "Accept": "application/json"},
    )


class GraphHttp:
    """One pooled HTTP client for Graph, closed with the object (`async with` or `aclose`)."""

    def __init__(
        self, settings: GraphSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._settings = settings
        self._http = build_http_client(settings, transport=transport)

    @property
    def settings(self) -> GraphSettings:
        return self._settings

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()


class GraphClient(GraphHttp):
    """Sends messages to graph.instagram.com (or the emulator) over one connection pool."""

    def path_for(self, account_id: str) -> str:
        """``/<version>/<account_id>/messages``, or ``/<version>/me/messages`` if configured."""
        version = self._settings.api_version
        if self._settings.use_me_endpoint:
            return f"/{version}/me/messages"
        if not account_id:
            raise ValueError("account_id is empty")
        # Quoted whole so an odd id can never reach another path or add a query string.
        return f"/{version}/{quote(account_id, safe='')}/messages"

    async def send_message(
        self, account_id: str, body: Mapping[str, Any], token: str | SecretStr
    ) -> GraphResult:
        """POST ``body`` as JSON for ``account_id``; every outcome is a :class:`GraphResult`.

        Raises ``ValueError``/``TypeError`` only for caller bugs found before anything is
        sent (empty ``account_id``, ``body`` not JSON-serialisable), and
        :class:`GraphClientError` for misuse such as sending on a closed client.
        """
        path = self.path_for(account_id)
        # Same encoding as httpx's `json=`; done here so a bad body fails before any I/O.
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        result = await self._post(path, content.encode(), token)
        _log_result(account_id, result)
        return result

    async def _post(self, path: str, content: bytes, token: str | SecretStr) -> GraphResult:
        # The plain token lives only in this frame (and httpx's), never in send_message's.
        secret = token.get_secret_value() if isinstance(token, SecretStr) else token
        if not _TOKEN_RE.fullmatch(secret):
            return _failed(TOKEN_MALFORMED, elapsed_s=0.0)
        started = time.perf_counter()
        try:
            response = await self._http.post(
                path,
                content=content,
                headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
            )
        except httpx.HTTPError as exc:
            failure = classify_transport(exc, redact=(secret,))
            return _failed(
                Classification(ErrorClass.TRANSIENT, failure.reason, None, failure.ambiguous),
                elapsed_s=time.perf_counter() - started,
                transport=failure,
            )
        except Exception as exc:
            detail = _redact(f"{type(exc).__name__}: {exc}", secret)[:200]
        else:
            return _from_response(response, time.perf_counter() - started, secret)
        # Not an HTTP problem (a closed client, say). Raised outside the `except` so the
        # original, whose traceback and `request` hold the headers, is not even the context;
        # and without the plain token among this frame's locals, for tracebacks with locals.
        del secret
        raise GraphClientError(detail)


def _from_response(response: httpx.Response, elapsed_s: float, secret: str) -> GraphResult:
    status = response.status_code
    usage = parse_buc_usage(response.headers.get("x-business-use-case-usage"))
    extras: dict[str, Any] = {
        "usage": usage,
        "app_usage": parse_app_usage(response.headers.get("x-app-usage")),
        "retry_after_s": _retry_after(response.headers.get("retry-after")),
        "elapsed_s": elapsed_s,
    }
    content = response.content
    payload = _json_object(content) if 200 <= status <= 299 else None
    if payload is not None:
        recipient_id = _as_id(payload.get("recipient_id"))
        if recipient_id is not None:
            return GraphResult(
                ok=True,
                http_status=status,
                recipient_id=recipient_id,
                message_id=_as_id(payload.get("message_id")),
                error=None,
                classification=SUCCESS,
                transport=None,
                **extras,
            )
    error = GraphError.from_response(status, content)
    error = replace(error, message=_redact(error.message, secret))
    if 200 <= status <= 299 and (payload is None or "error" not in payload):
        classification = MALFORMED_SUCCESS
    else:
        classification = classify(error)
    return GraphResult(
        ok=False,
        http_status=status,
        recipient_id=None,
        message_id=None,
        error=error,
        classification=classification,
        transport=None,
        **extras,
    )


def _failed(
    classification: Classification, *, elapsed_s: float, transport: TransportFailure | None = None
) -> GraphResult:
    return GraphResult(
        ok=False,
        http_status=None,
        recipient_id=None,
        message_id=None,
        error=None,
        classification=classification,
        transport=transport,
        usage={},
        elapsed_s=elapsed_s,
    )


def _json_object(content: bytes) -> dict[str, Any] | None:
    try:
        payload = json.loads(content)
    except (ValueError, RecursionError):
        return None
    return payload if isinstance(payload, dict) else None


def _as_id(value: object) -> str | None:
    if isinstance(value, str) and 0 < len(value) <= 256:
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    return None


def _retry_after(value: str | None) -> float | None:
    """Delta-seconds form only; the HTTP-date form is not worth a clock dependency here."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return min(seconds, _MAX_RETRY_AFTER_S)


def _redact(text: str, secret: str) -> str:
    return text.replace(secret, _REDACTED) if secret else text


def _log_result(account_id: str, result: GraphResult) -> None:
    if result.ok and not log.is_enabled_for(logging.DEBUG):
        return  # (a success is logged at debug only: skip building its fields)
    fields: dict[str, Any] = {
        "account_id": account_id,
        "http_status": result.http_status,
        "error_class": str(result.error_class),
        "reason": result.classification.reason,
        "ambiguous": result.ambiguous,
        "elapsed_s": round(result.elapsed_s, 4),
        "usage_pct": max_usage_pct(result.usage),
    }
    if result.ok:
        log.debug("graph.send_ok", **fields)
        return
    if result.error is not None:
        fields.update(
            code=result.error.code,
            subcode=result.error.subcode,
            fbtrace_id=result.error.fbtrace_id,
            graph_message=result.error.message,
        )
    if result.transport is not None:
        fields.update(exc_type=result.transport.exc_type, detail=result.transport.detail)
    # Warn on what needs eyes: maybe-sent, no answer at all, or a whole account stopped.
    if result.ambiguous or result.transport is not None or result.error_class is ErrorClass.ACCOUNT:
        log.warning("graph.send_failed", **fields)
    else:
        log.info("graph.send_failed", **fields)
