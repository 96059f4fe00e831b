"""Control endpoints for Instagram's side of the world: the clock, the messaging window,
webhooks, and users who write, comment and act.

- ``GET|PUT /_emulator/clock``: ``{"advance_s": N}`` or ``{"offset_s": N}``
- ``GET|PUT /_emulator/window``: the window settings (``enforced``, ``standard_s``, ...)
- ``GET /_emulator/webhooks?since=N``: webhooks sent (body, signature, state, attempts)
- ``GET|PUT /_emulator/webhooks/settings``: url, app_secret (never shown), retries, ...
- ``POST /_emulator/users/message``: one user writes one DM (opens the window); its mid
- ``POST /_emulator/users/comment``: one user comments (a private reply to it works)
- ``POST /_emulator/business/message``: a person at the business writes in the Instagram app
  (only its echo webhook: the conversation turns human)
- ``POST /_emulator/users/act``: simulated users do ``count`` things now
- ``GET|PUT /_emulator/users/settings``: the simulated users' settings (``rate_per_s``, ...)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from ig_outbound.emulator import inbound
from ig_outbound.emulator.config import Digits
from ig_outbound.emulator.control_api import PREFIX, BadRequest, Handler, guarded, read_json
from ig_outbound.emulator.inbound import InboundEvent, UnknownAccountError
from ig_outbound.emulator.simulated_users import ACT_MAX, UserSimulator
from ig_outbound.emulator.state import EmulatorState

Text = Annotated[str, Field(min_length=1, max_length=2000)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _ClockIn(_Strict):
    advance_s: float | None = Field(default=None, ge=0.0)
    offset_s: float | None = None

    @model_validator(mode="after")
    def _one(self) -> _ClockIn:
        if (self.advance_s is None) == (self.offset_s is None):
            raise ValueError("give exactly one of advance_s or offset_s")
        return self


class _WhenIn(_Strict):
    """When a user did it: ``at`` (epoch seconds, emulator clock) or ``ago_s``; default now.
    ``webhook`` False records the fact without sending its webhook."""

    at: float | None = None
    ago_s: float | None = Field(default=None, ge=0.0)
    webhook: bool = True

    @model_validator(mode="after")
    def _at_most_one(self) -> _WhenIn:
        if self.at is not None and self.ago_s is not None:
            raise ValueError("give at most one of at or ago_s")
        return self

    def when(self, state: EmulatorState) -> float | None:
        return state.clock.now() - self.ago_s if self.ago_s is not None else self.at


class _UserMessageIn(_WhenIn):
    ig_id: Digits
    igsid: Digits
    text: Text | None = "Hello"
    image: bool = False
    quick_reply_payload: Text | None = None
    reply_to_mid: Text | None = None


class _UserCommentIn(_WhenIn):
    ig_id: Digits
    igsid: Digits
    text: Text = "Nice!"
    comment_id: Digits | None = None  # default: a new id
    media_id: Digits | None = None
    username: Text | None = None


class _AppMessageIn(_WhenIn):
    ig_id: Digits
    igsid: Digits
    text: Text = "Hi, a person here."


class _ActIn(_Strict):
    count: int = Field(default=1, ge=0, le=ACT_MAX)
    accounts: list[Digits] | None = None
    mix: dict[str, float] | None = None
    seed: int | None = None


class WorldControlApi:
    def __init__(self, state: EmulatorState, simulator: UserSimulator) -> None:
        self.state = state
        self.simulator = simulator
        self._comment_counter = 0

    def routes(self) -> list[BaseRoute]:
        handlers: list[tuple[str, Handler, list[str]]] = [
            ("/clock", self.get_clock, ["GET"]),
            ("/clock", self.put_clock, ["PUT"]),
            ("/window", self.get_window, ["GET"]),
            ("/window", self.put_window, ["PUT"]),
            ("/webhooks", self.list_webhooks, ["GET"]),
            ("/webhooks/settings", self.get_webhook_settings, ["GET"]),
            ("/webhooks/settings", self.put_webhook_settings, ["PUT"]),
            ("/users/message", self.user_message, ["POST"]),
            ("/users/comment", self.user_comment, ["POST"]),
            ("/users/act", self.users_act, ["POST"]),
            ("/business/message", self.app_message, ["POST"]),
            ("/users/settings", self.get_user_settings, ["GET"]),
            ("/users/settings", self.put_user_settings, ["PUT"]),
        ]
        return [Route(PREFIX + path, guarded(fn), methods=m) for path, fn, m in handlers]

    # --- clock and window ------------------------------------------------------------------

    async def get_clock(self, request: Request) -> JSONResponse:
        return self._clock()

    async def put_clock(self, request: Request) -> JSONResponse:
        data = _ClockIn.model_validate(await read_json(request))
        with self.state.lock:
            if data.advance_s is not None:
                self.state.clock.advance(data.advance_s)
            else:
                assert data.offset_s is not None
                self.state.clock.offset_s = data.offset_s
            return self._clock()

    def _clock(self) -> JSONResponse:
        clock = self.state.clock
        return JSONResponse({"offset_s": clock.offset_s, "now": clock.now()})

    async def get_window(self, request: Request) -> JSONResponse:
        return JSONResponse(self.state.window.model_dump(mode="json"))

    async def put_window(self, request: Request) -> JSONResponse:
        return JSONResponse(self.state.set_window(await _object(request)).model_dump(mode="json"))

    # --- webhooks -------------------------------------------------------------------------------

    async def list_webhooks(self, request: Request) -> JSONResponse:
        try:
            since = int(request.query_params.get("since", "0"))
        except ValueError as exc:
            raise BadRequest("since must be an integer") from exc
        return JSONResponse(self.state.webhooks.snapshot(since))

    async def get_webhook_settings(self, request: Request) -> JSONResponse:
        # mode="json" shows the app secret as "**********".
        return JSONResponse(self.state.webhooks.settings.model_dump(mode="json"))

    async def put_webhook_settings(self, request: Request) -> JSONResponse:
        settings = self.state.webhooks.configure(await _object(request))
        return JSONResponse(settings.model_dump(mode="json"))

    # --- users ----------------------------------------------------------------------------------

    async def user_message(self, request: Request) -> JSONResponse:
        data = _UserMessageIn.model_validate(await read_json(request))
        if data.text is None and not data.image:
            raise BadRequest("a message needs text or image")
        event = _known(
            lambda: inbound.user_message(
                self.state,
                data.ig_id,
                data.igsid,
                text=data.text,
                image=data.image,
                quick_reply_payload=data.quick_reply_payload,
                reply_to_mid=data.reply_to_mid,
                at=data.when(self.state),
                webhook=data.webhook,
            )
        )
        return JSONResponse(event.to_json(), status_code=201)

    async def user_comment(self, request: Request) -> JSONResponse:
        data = _UserCommentIn.model_validate(await read_json(request))
        event = _known(
            lambda: inbound.user_comment(
                self.state,
                data.ig_id,
                data.igsid,
                text=data.text,
                comment_id=data.comment_id or self._new_comment_id(),
                media_id=data.media_id,
                username=data.username,
                at=data.when(self.state),
                webhook=data.webhook,
            )
        )
        return JSONResponse(event.to_json(), status_code=201)

    async def app_message(self, request: Request) -> JSONResponse:
        data = _AppMessageIn.model_validate(await read_json(request))
        event = _known(
            lambda: inbound.app_message(
                self.state, data.ig_id, data.igsid, text=data.text, at=data.when(self.state)
            )
        )
        return JSONResponse(event.to_json(), status_code=201)

    def _new_comment_id(self) -> str:
        self._comment_counter += 1  # never reset: ids stay unique across resets
        return f"1797{self._comment_counter:013d}"

    async def users_act(self, request: Request) -> JSONResponse:
        data = _ActIn.model_validate(await read_json(request) or {})
        try:
            events = self.simulator.act(
                data.count, accounts=data.accounts, mix=data.mix, seed=data.seed
            )
        except ValueError as exc:
            raise BadRequest(str(exc)) from exc
        counts: dict[str, int] = {}
        for event in events:
            counts[event.kind] = counts.get(event.kind, 0) + 1
        return JSONResponse({"events": [e.to_json() for e in events], "counts": counts})

    async def get_user_settings(self, request: Request) -> JSONResponse:
        return JSONResponse(self.state.simulated_users.model_dump(mode="json"))

    async def put_user_settings(self, request: Request) -> JSONResponse:
        settings = self.state.set_simulated_users(await _object(request))
        self.simulator.start()  # lifespan-less apps (ASGI transport) start it here
        self.simulator.settings_changed()
        return JSONResponse(settings.model_dump(mode="json"))


async def _object(request: Request) -> dict[str, Any]:
    patch = await read_json(request)
    if not isinstance(patch, dict):
        raise BadRequest("body must be a JSON object")
    return patch


def _known(make: Callable[[], InboundEvent]) -> InboundEvent:
    try:
        return make()
    except UnknownAccountError as exc:
        raise BadRequest(str(exc)) from exc


def build_world_routes(state: EmulatorState, simulator: UserSimulator) -> list[BaseRoute]:
    return WorldControlApi(state, simulator).routes()
