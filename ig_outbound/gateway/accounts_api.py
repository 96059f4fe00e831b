"""The gateway's accounts API: `ig-outbound accounts` over HTTP, for services that onboard
accounts (an OAuth callback hands a new long-lived token to `POST /v1/accounts`).

Authorised by its own bearer tokens (`IG_OUTBOUND_GATEWAY__ADMIN_TOKENS`), never by the
intake's: a producer that may enqueue messages may not add or remove accounts. Without
admin tokens configured every route answers 403. A token goes in a JSON body, never a URL
(URLs reach access logs); no answer, error or log line ever holds one.

    GET    /v1/accounts                      every account (as `accounts list --json`)
    GET    /v1/accounts/{id}                 one account
    POST   /v1/accounts                      {"token", "account_id"?, "expires_in"?,
                                              "subscribe"?: true} -> 201 (200: replaced)
    DELETE /v1/accounts/{id}                 remove it (queued intents end failed)
    POST   /v1/accounts/{id}/refresh?wait=s  ask the fleet to refresh its token now
    POST   /v1/accounts/{id}/subscribe       subscribe it to the webhook fields again
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import SecretStr
from redis.asyncio import Redis
from redis.exceptions import RedisError

from ig_outbound.accounts.admin import AccountAdmin, GraphUnreachableError
from ig_outbound.accounts.cipher import TokenCipher
from ig_outbound.accounts.errors import (
    AccountConfigError,
    AccountError,
    AccountNotFoundError,
    AccountRefusedError,
    CorruptAccountError,
    InvalidAccountRequest,
)
from ig_outbound.accounts.registry import AccountRegistry, is_account_id
from ig_outbound.accounts.views import AccountView
from ig_outbound.gateway.settings import GatewaySettings
from ig_outbound.graph.admin import GraphAdmin
from ig_outbound.producers.keys import Keys

_MAX_BODY = 16_384
_MAX_WAIT_S = 60.0


class _BadAccountId(AccountError):
    code = "invalid_account_id"

    def __init__(self) -> None:
        super().__init__("an account id is 1-64 digits")


class _BadBody(AccountError):
    code = "invalid_request"


# The status each account error answers with.
_STATUS: dict[type[AccountError], int] = {
    AccountNotFoundError: 404,
    AccountRefusedError: 422,
    CorruptAccountError: 409,
    AccountConfigError: 503,  # the gateway has no encryption key: fix its settings
    GraphUnreachableError: 502,
    InvalidAccountRequest: 400,
    _BadAccountId: 400,
    _BadBody: 400,
}


def _error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": code, "message": message, **extra}, status_code=status)


def _view(view: AccountView) -> dict[str, Any]:
    return view.model_dump(mode="json", exclude_none=True)


class AccountsApi:
    def __init__(self, settings: GatewaySettings, redis: Redis | Sequence[Redis]) -> None:
        """`redis`: one Redis, or one per shard in shard order."""
        self._tokens = [t.get_secret_value().encode() for t in settings.gateway.admin_tokens]
        self.graph = GraphAdmin(settings.graph)
        cipher: TokenCipher | None
        try:
            cipher = TokenCipher.from_settings(settings.accounts)
        except AccountConfigError:
            cipher = None  # `gateway` refuses to start with a bad key; tests may build this
        keys = Keys(settings.key_prefix)
        shards = list(redis) if isinstance(redis, Sequence) else [redis]
        registries = [AccountRegistry(r, keys) for r in shards]
        self.admin = AccountAdmin(registries, self.graph, settings.accounts, cipher)

    def _refusal(self, request: Request) -> Response | None:
        if not self._tokens:
            return _error(
                403,
                "accounts_api_disabled",
                "set IG_OUTBOUND_GATEWAY__ADMIN_TOKENS to use the accounts API",
            )
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        given = token.strip().encode()
        if (
            scheme.lower() == "bearer"
            and given
            and any(hmac.compare_digest(given, known) for known in self._tokens)
        ):
            return None
        response = _error(401, "unauthorized", "a valid admin Bearer token is required")
        response.headers["WWW-Authenticate"] = "Bearer"
        return response

    async def _guarded(
        self, request: Request, action: Callable[[], Awaitable[Response]]
    ) -> Response:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        try:
            return await action()
        except AccountError as exc:
            return JSONResponse(exc.as_dict(), status_code=_STATUS.get(type(exc), 400))
        except RedisError as exc:
            return _error(503, "unavailable", type(exc).__name__)

    async def list(self, request: Request) -> Response:
        async def go() -> Response:
            return JSONResponse([_view(v) for v in await self.admin.list()])

        return await self._guarded(request, go)

    async def show(self, request: Request, account_id: str) -> Response:
        async def go() -> Response:
            view = await self.admin.show(_account(account_id))
            return JSONResponse(_view(view))

        return await self._guarded(request, go)

    async def add(self, request: Request) -> Response:
        async def go() -> Response:
            body = await _json_body(request)
            token = body.get("token")
            if not isinstance(token, str) or not token:
                return _error(400, "invalid_request", "`token` (a string) is required")
            account_id = body.get("account_id")
            expires_in = body.get("expires_in")
            subscribe = body.get("subscribe", True)
            if account_id is not None and not isinstance(account_id, str):
                return _error(400, "invalid_request", "`account_id` must be a string")
            if expires_in is not None and (
                not isinstance(expires_in, int) or isinstance(expires_in, bool) or expires_in < 1
            ):
                return _error(400, "invalid_request", "`expires_in` must be a positive integer")
            if not isinstance(subscribe, bool):
                return _error(400, "invalid_request", "`subscribe` must be true or false")
            result = await self.admin.add(
                SecretStr(token),
                account_id=_account(account_id) if account_id is not None else None,
                expires_in_s=expires_in,
                subscribe=subscribe,
            )
            return JSONResponse(
                {
                    "outcome": result.outcome,
                    "refreshed": result.refreshed,
                    "subscribe_error": result.subscribe_error,
                    "account": _view(result.account),
                },
                status_code=201 if result.outcome == "added" else 200,
            )

        return await self._guarded(request, go)

    async def remove(self, request: Request, account_id: str) -> Response:
        async def go() -> Response:
            result = await self.admin.remove(_account(account_id))
            return JSONResponse({"account_id": account_id, "result": result})

        return await self._guarded(request, go)

    async def refresh(self, request: Request, account_id: str) -> Response:
        async def go() -> Response:
            try:
                wait = min(max(float(request.query_params.get("wait", "30")), 0.0), _MAX_WAIT_S)
            except ValueError:
                return _error(400, "invalid_request", "`wait` must be a number of seconds")
            result = await self.admin.request_refresh(_account(account_id), wait_s=wait)
            status = 200 if result.status == "done" else 202 if result.status == "waiting" else 502
            return JSONResponse(
                {"status": result.status, "account": _view(result.account)}, status_code=status
            )

        return await self._guarded(request, go)

    async def subscribe(self, request: Request, account_id: str) -> Response:
        async def go() -> Response:
            error = await self.admin.subscribe(_account(account_id))
            return JSONResponse(
                {"account_id": account_id, "subscribed": error is None, "error": error},
                status_code=200 if error is None else 502,
            )

        return await self._guarded(request, go)

    def mount(self, app: FastAPI) -> None:
        app.add_api_route("/v1/accounts", self.list, methods=["GET"])
        app.add_api_route("/v1/accounts", self.add, methods=["POST"])
        app.add_api_route("/v1/accounts/{account_id}", self.show, methods=["GET"])
        app.add_api_route("/v1/accounts/{account_id}", self.remove, methods=["DELETE"])
        app.add_api_route("/v1/accounts/{account_id}/refresh", self.refresh, methods=["POST"])
        app.add_api_route("/v1/accounts/{account_id}/subscribe", self.subscribe, methods=["POST"])


def _account(account_id: str) -> str:
    if not is_account_id(account_id):
        raise _BadAccountId()
    return account_id


async def _json_body(request: Request) -> dict[str, Any]:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_BODY:
            raise _BadBody(f"the body is over {_MAX_BODY} bytes")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise _BadBody("the body is not JSON") from None  # never quote it: it holds a token
    if not isinstance(data, dict):
        raise _BadBody("the body must be a JSON object")
    return data
