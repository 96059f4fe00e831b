"""The gateway's routes (see the package docstring). Every refusal is a JSON body
`{"error": <code>, "message": ...}` with a status that says what to do: 400/413 a bad
request (fix it), 401/403 a signature or token (check the secret), 429 a full backlog
(retry later: Meta does), 503 not ready."""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from ig_outbound.gateway import metrics
from ig_outbound.gateway.accounts_api import AccountsApi
from ig_outbound.gateway.processor import Processor
from ig_outbound.gateway.settings import GatewaySettings
from ig_outbound.producers.enqueue import EnqueueResult, OutboundClient
from ig_outbound.producers.errors import OutboundError
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.redis_util import resolve
from ig_outbound.producers.sharded import ShardedOutboundClient
from ig_outbound.producers.webhooks import (
    SIGNATURE_HEADER,
    WebhookError,
    parse_webhook,
    subscription_challenge,
    verify_signature,
)

log = structlog.get_logger("ig_outbound.gateway")

WEBHOOK_PATH = "/webhooks/instagram"


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self, headers: dict[str, str] | None = None) -> JSONResponse:
        body = {"error": self.code, "message": self.message}
        return JSONResponse(body, status_code=self.status, headers=headers)


async def _body(request: Request, limit: int) -> bytes:
    """The raw body, refused (413) past `limit` bytes without reading all of a huge one."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _Refused(413, "body_too_large", f"the body is over {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _Refused(413, "body_too_large", f"the body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class Gateway:
    """The routes' state: settings, Redis, the producer client and the processor.

    `redis` is the gateway's home: the webhook stream lives there (shard 0 with shards).
    `shards`: a client per shard, in order (default: `redis` alone); intake and the inbound
    facts of each account go to its shard (`producers/shards.py`)."""

    def __init__(
        self, settings: GatewaySettings, redis: Redis, shards: Sequence[Redis] | None = None
    ) -> None:
        self.settings = settings
        self.section = settings.gateway
        self.redis = redis
        self.shards = list(shards) if shards else [redis]
        self.keys = Keys(settings.key_prefix)
        self.client = ShardedOutboundClient(
            [OutboundClient(r, settings) for r in self.shards], settings
        )
        self.processor = Processor(redis, self.keys, self.section, self.shards)
        self.secrets = [s.get_secret_value() for s in self.section.app_secrets]
        self.intake_tokens = [t.get_secret_value().encode() for t in self.section.intake_tokens]

    # --- webhooks ------------------------------------------------------------------------

    def handshake(self, request: Request) -> Response:
        token = self.section.verify_token
        if token is None:
            message = "IG_OUTBOUND_GATEWAY__VERIFY_TOKEN is not set"
            return _Refused(403, "no_verify_token", message).response()
        try:
            challenge = subscription_challenge(request.query_params, token.get_secret_value())
        except WebhookError as exc:
            return JSONResponse(exc.as_dict(), status_code=exc.status)
        return PlainTextResponse(challenge)

    async def delivery(self, request: Request) -> Response:
        started = time.perf_counter()
        try:
            body = await _body(request, self.section.max_body_bytes)
            if not self.secrets:
                message = "IG_OUTBOUND_GATEWAY__APP_SECRETS is not set"
                raise _Refused(403, "no_app_secret", message)
            verify_signature(body, request.headers.get(SIGNATURE_HEADER), self.secrets)
            parse_webhook(body)  # refuse what can never be recorded, before acknowledging
            await self._keep(body)
        except _Refused as exc:
            metrics.WEBHOOKS.labels(result=_result(exc.status), reason=exc.code).inc()
            retry = {"Retry-After": "5"} if exc.status == 429 else None
            return exc.response(retry)
        except WebhookError as exc:
            metrics.WEBHOOKS.labels(result="refused", reason=exc.code).inc()
            return JSONResponse(exc.as_dict(), status_code=exc.status)
        except RedisError as exc:
            # Redis restarting, say: nothing was kept, so Meta must deliver it again (it
            # retries what is not acknowledged); a 503 says so, not a traceback's 500.
            metrics.WEBHOOKS.labels(result="unavailable", reason="redis_unavailable").inc()
            log.warning("webhook_not_kept", error_type=type(exc).__name__)
            return _Refused(503, "redis_unavailable", type(exc).__name__).response(
                {"Retry-After": "5"}
            )
        metrics.WEBHOOKS.labels(result="verified", reason="").inc()
        metrics.WEBHOOK_ACK_SECONDS.observe(time.perf_counter() - started)
        return PlainTextResponse("EVENT_RECEIVED")

    async def _keep(self, body: bytes) -> None:
        """Acknowledge only what is kept: the body goes into the stream the processor
        reads; past the backlog limit Meta is asked to come back (429), nothing dropped."""
        backlog = int(await resolve(self.redis.xlen(self.keys.webhooks)))
        if backlog >= self.section.max_backlog:
            raise _Refused(429, "backlog_full", f"{backlog} webhooks wait: retry later")
        fields: dict[Any, Any] = {"body": body, "received_ms": int(time.time() * 1000)}
        await resolve(self.redis.xadd(self.keys.webhooks, fields))

    # --- intake --------------------------------------------------------------------------

    def authorised(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token or not self.intake_tokens:
            return False
        given = token.strip().encode()
        return any(hmac.compare_digest(given, known) for known in self.intake_tokens)

    async def intake(self, request: Request) -> Response:
        if not self.authorised(request):
            return _Refused(401, "unauthorized", "a valid Bearer token is required").response(
                {"WWW-Authenticate": "Bearer"}
            )
        try:
            body = await _body(request, self.section.max_body_bytes)
            data = _json(body)
        except _Refused as exc:
            return exc.response()
        items = data if isinstance(data, list) else [data]
        try:
            results = await self.client.enqueue_many(items)
        except (OutboundError, RedisError) as exc:  # an unusable Redis: nothing was queued
            return _Refused(503, "unavailable", type(exc).__name__).response()
        answers = [_answer(r) for r in results]
        for answer in answers:
            metrics.INTAKE.labels(status=answer["status"]).inc()
        refused = sum(a["status"] == "refused" for a in answers)
        return JSONResponse({"results": answers, "refused": refused})

    # --- health --------------------------------------------------------------------------

    async def ready(self) -> Response:
        try:
            for shard in self.shards:
                await resolve(shard.ping())
        except RedisError as exc:
            return JSONResponse({"ready": False, "redis": type(exc).__name__}, status_code=503)
        if not self.processor.alive:
            return JSONResponse({"ready": False, "processor": "stopped"}, status_code=503)
        return JSONResponse({"ready": True})


def _result(status: int) -> str:
    return "throttled" if status == 429 else "refused"


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise _Refused(400, "invalid_json", f"the body is not JSON: {str(exc)[:200]}") from None


def _answer(result: EnqueueResult) -> dict[str, Any]:
    """One intent's answer, as the Python client gives it."""
    answer: dict[str, Any] = {"key": result.key, "status": result.status}
    if result.job_id is not None:
        answer["job_id"] = result.job_id
    if result.state is not None:
        answer["state"] = result.state
    if result.error is not None:
        answer.update(result.error.as_dict())
    return answer


def create_app(
    settings: GatewaySettings, redis: Redis, shards: Sequence[Redis] | None = None
) -> FastAPI:
    """The ASGI app; the processor runs while the app does (its lifespan). `shards`: see
    `Gateway`."""
    gateway = Gateway(settings, redis, shards)
    accounts = AccountsApi(settings, gateway.shards)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await gateway.processor.start()
        try:
            yield
        finally:
            await gateway.processor.stop()
            await accounts.graph.aclose()

    app = FastAPI(title="ig-outbound gateway", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.gateway = gateway
    app.add_api_route(WEBHOOK_PATH, gateway.handshake, methods=["GET"])
    app.add_api_route(WEBHOOK_PATH, gateway.delivery, methods=["POST"])
    app.add_api_route("/v1/intents", gateway.intake, methods=["POST"])
    app.add_api_route("/healthz", lambda: {"alive": True}, methods=["GET"])
    app.add_api_route("/readyz", gateway.ready, methods=["GET"])
    accounts.mount(app)
    # A route, not a mounted app: `/metrics` answers itself instead of redirecting to
    # `/metrics/` (a scraper or a probe that does not follow redirects gets the page).
    app.add_api_route("/metrics", _metrics_page, methods=["GET"], include_in_schema=False)
    return app


def _metrics_page() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
