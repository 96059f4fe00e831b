"""Control endpoints under ``/_emulator`` for tests, the demo and benchmarks.

Nothing here ever returns a token: accounts are shown as ``{ig_id, username}`` and validation
errors are reported without the offending input. Instagram's side (clock, window, webhooks,
simulated users) has its routes in ``control_world.py``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from ig_outbound.emulator.config import AccountConfig, CommentConfig, Digits, ScriptedAnswer
from ig_outbound.emulator.state import EmulatorState

PREFIX = "/_emulator"

Handler = Callable[[Request], Awaitable[JSONResponse]]


class _UsersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ig_id: Digits
    igsids: list[Digits] = Field(min_length=1)
    # Whether they count as having written now (None: window.registered_users_in_window).
    in_window: bool | None = None


class _CommentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment_id: str = Field(min_length=1, max_length=128)
    ig_id: Digits
    commenter_igsid: Digits
    created_at: float | None = None  # default: now (the emulator's clock)


class _AccountIn(AccountConfig):
    users: list[Digits] = Field(default_factory=list)


_SCRIPT = TypeAdapter(list[ScriptedAnswer])


class BadRequest(Exception):
    def __init__(self, detail: Any) -> None:
        super().__init__("bad control request")
        self.detail = detail


async def read_json(request: Request) -> Any:
    try:
        return json.loads(await request.body() or b"null")
    except ValueError as exc:
        raise BadRequest("body is not valid JSON") from exc


def _errors(exc: ValidationError) -> list[Any]:
    # include_input=False: the input may contain a token.
    return list(exc.errors(include_input=False, include_url=False, include_context=False))


class ControlApi:
    """Handlers bound to one state instance."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    def routes(self) -> list[BaseRoute]:
        handlers: list[tuple[str, Handler, list[str]]] = [
            ("/health", self.health, ["GET"]),
            ("/calls", self.calls, ["GET"]),
            ("/stats", self.stats, ["GET"]),
            ("/faults", self.get_faults, ["GET"]),
            ("/faults", self.put_faults, ["PUT"]),
            ("/rate_limits", self.get_rate_limits, ["GET"]),
            ("/rate_limits", self.put_rate_limits, ["PUT"]),
            ("/script", self.script, ["POST"]),
            ("/reset", self.reset, ["POST"]),
            ("/accounts", self.list_accounts, ["GET"]),
            ("/accounts", self.add_account, ["POST"]),
            ("/users", self.add_users, ["POST"]),
            ("/comments", self.add_comment, ["POST"]),
            ("/media", self.media, ["GET"]),
            ("/media/requests", self.media_requests, ["GET"]),
        ]
        return [Route(PREFIX + path, guarded(fn), methods=m) for path, fn, m in handlers]

    async def health(self, request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def calls(self, request: Request) -> JSONResponse:
        try:
            since = int(request.query_params.get("since", "0"))
            rejected_since = int(request.query_params.get("rejected_since", "0"))
        except ValueError as exc:
            raise BadRequest("since and rejected_since must be integers") from exc
        return JSONResponse(self.state.snapshot(since, rejected_since))

    async def stats(self, request: Request) -> JSONResponse:
        return JSONResponse(self.state.stats())

    async def get_faults(self, request: Request) -> JSONResponse:
        return JSONResponse(self.state.faults.model_dump(mode="json"))

    async def put_faults(self, request: Request) -> JSONResponse:
        patch = await read_json(request)
        if not isinstance(patch, dict):
            raise BadRequest("body must be a JSON object")
        return JSONResponse(self.state.set_faults(patch).model_dump(mode="json"))

    async def get_rate_limits(self, request: Request) -> JSONResponse:
        return JSONResponse(self.state.rate_limits.config.model_dump(mode="json"))

    async def put_rate_limits(self, request: Request) -> JSONResponse:
        patch = await read_json(request)
        if not isinstance(patch, dict):
            raise BadRequest("body must be a JSON object")
        return JSONResponse(self.state.set_rate_limits(patch).model_dump(mode="json"))

    async def script(self, request: Request) -> JSONResponse:
        data = await read_json(request)
        answers = _SCRIPT.validate_python(data.get("answers") if isinstance(data, dict) else data)
        return JSONResponse({"pending": self.state.push_script(answers)})

    async def reset(self, request: Request) -> JSONResponse:
        self.state.reset()
        return JSONResponse({"status": "reset"})

    async def list_accounts(self, request: Request) -> JSONResponse:
        return JSONResponse({"accounts": [a.public() for a in self.state.accounts()]})

    async def add_account(self, request: Request) -> JSONResponse:
        data = _AccountIn.model_validate(await read_json(request))
        try:
            account = self.state.add_account(data)
        except ValueError as exc:
            raise BadRequest(str(exc)) from exc
        if data.users:
            self.state.add_users(account.ig_id, data.users)
        return JSONResponse(account.public(), status_code=201)

    async def add_users(self, request: Request) -> JSONResponse:
        data = _UsersIn.model_validate(await read_json(request))
        count = self.state.add_users(data.ig_id, data.igsids, in_window=data.in_window)
        return JSONResponse({"ig_id": data.ig_id, "users": count})

    async def add_comment(self, request: Request) -> JSONResponse:
        data = _CommentIn.model_validate(await read_json(request))
        created_at = data.created_at if data.created_at is not None else self.state.clock.now()
        comment = self.state.add_comment(
            CommentConfig(**{**data.model_dump(), "created_at": created_at})
        )
        body = {"comment_id": comment.comment_id, "ig_id": comment.ig_id, "created_at": created_at}
        return JSONResponse(body, status_code=201)

    async def media(self, request: Request) -> JSONResponse:
        """Where the media host serves and the CA file that verifies it (enabled: false when
        it does not run)."""
        return JSONResponse(self.state.media.info())

    async def media_requests(self, request: Request) -> JSONResponse:
        """What the media host was asked (those carrying ``?tag=``, else all kept) and every
        TLS server name clients asked for."""
        tag = request.query_params.get("tag")
        log = self.state.media.log
        return JSONResponse(
            {
                "requests": [seen.to_json() for seen in log.requests(tag)],
                "server_names": log.server_names(),
            }
        )


def build_routes(state: EmulatorState) -> list[BaseRoute]:
    return ControlApi(state).routes()


def guarded(handler: Handler) -> Handler:
    """Turn bad input into a 422/400 JSON answer instead of a 500."""

    async def endpoint(request: Request) -> JSONResponse:
        try:
            response = await handler(request)
        except ValidationError as exc:
            return JSONResponse({"detail": _errors(exc)}, status_code=422)
        except BadRequest as exc:
            return JSONResponse({"detail": exc.detail}, status_code=400)
        return response

    return endpoint
