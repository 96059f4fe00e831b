"""Control endpoints for the accounts' tokens and webhook subscriptions.

- ``GET /_emulator/accounts/{ig_id}/tokens``: the account's tokens described, never shown:
  ``{"ig_id", "tokens": [{fingerprint, issued_at, expires_at, state, refreshed_from, origin,
  subcode}]}`` (``fingerprint`` = first 12 hex digits of the token's SHA-256)
- ``POST /_emulator/accounts/{ig_id}/tokens``: ``{"token", "age_s"?, "lifetime_s"?}`` registers
  a further valid token (an operator logged in again); answers its description
- ``POST /_emulator/accounts/{ig_id}/tokens/revoke``: ``{"subcode": 460, "fingerprints"?}``
  revokes the account's tokens (all, or those named): they answer 190/<subcode> from now on
- ``GET|PUT /_emulator/tokens/settings``: ``lifetime_s``, ``min_refresh_age_s``,
  ``revoke_on_refresh`` (tokens already issued keep their lifetimes)
- ``GET /_emulator/subscriptions``: ``{"subscriptions": {ig_id: [fields]}}`` for every account

Reset forgets registered and refreshed tokens and revocations, and gives each account its own
token back (issued then) and its configured subscription.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from ig_outbound.emulator.control_api import PREFIX, BadRequest, Handler, guarded, read_json
from ig_outbound.emulator.state import EmulatorState
from ig_outbound.emulator.tokens import REVOKE_SUBCODES

Fingerprint = Annotated[str, Field(pattern=r"^[0-9a-f]{12}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _TokenIn(_Strict):
    # Not a SecretStr: it only goes into the registry; errors never include input.
    token: str = Field(min_length=1, max_length=4096, repr=False)
    age_s: float = Field(default=0.0, ge=0.0)
    lifetime_s: float | None = Field(default=None, gt=0.0)


class _RevokeIn(_Strict):
    subcode: int = 460
    fingerprints: list[Fingerprint] | None = None

    @field_validator("subcode")
    @classmethod
    def _graph_subcode(cls, subcode: int) -> int:
        if subcode not in REVOKE_SUBCODES:
            raise ValueError(f"subcode must be one of {sorted(REVOKE_SUBCODES)}")
        return subcode


class TokenControlApi:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    def routes(self) -> list[BaseRoute]:
        handlers: list[tuple[str, Handler, list[str]]] = [
            ("/accounts/{ig_id}/tokens", self.list_tokens, ["GET"]),
            ("/accounts/{ig_id}/tokens", self.register_token, ["POST"]),
            ("/accounts/{ig_id}/tokens/revoke", self.revoke_tokens, ["POST"]),
            ("/tokens/settings", self.get_settings, ["GET"]),
            ("/tokens/settings", self.put_settings, ["PUT"]),
            ("/subscriptions", self.subscriptions, ["GET"]),
        ]
        return [Route(PREFIX + path, guarded(fn), methods=m) for path, fn, m in handlers]

    def _ig_id(self, request: Request) -> str:
        ig_id: str = request.path_params["ig_id"]
        if self.state.account(ig_id) is None:
            raise BadRequest(f"unknown account {ig_id}" if ig_id.isdigit() else "unknown account")
        return ig_id

    async def list_tokens(self, request: Request) -> JSONResponse:
        ig_id = self._ig_id(request)
        return JSONResponse({"ig_id": ig_id, "tokens": self.state.describe_tokens(ig_id)})

    async def register_token(self, request: Request) -> JSONResponse:
        ig_id = self._ig_id(request)
        data = _TokenIn.model_validate(await read_json(request))
        try:
            token = self.state.register_token(
                ig_id, data.token, age_s=data.age_s, lifetime_s=data.lifetime_s
            )
        except ValueError as exc:
            raise BadRequest(str(exc)) from exc  # "token already registered": no echo
        return JSONResponse(token.describe(self.state.clock.now()), status_code=201)

    async def revoke_tokens(self, request: Request) -> JSONResponse:
        ig_id = self._ig_id(request)
        data = _RevokeIn.model_validate(await read_json(request) or {})
        revoked = self.state.revoke_tokens(ig_id, data.subcode, data.fingerprints)
        return JSONResponse({"ig_id": ig_id, "revoked": revoked})

    async def get_settings(self, request: Request) -> JSONResponse:
        return JSONResponse(self.state.tokens.settings.model_dump(mode="json"))

    async def put_settings(self, request: Request) -> JSONResponse:
        patch = await read_json(request)
        if not isinstance(patch, dict):
            raise BadRequest("body must be a JSON object")
        return JSONResponse(self.state.set_token_settings(patch).model_dump(mode="json"))

    async def subscriptions(self, request: Request) -> JSONResponse:
        return JSONResponse({"subscriptions": self.state.subscribed_fields()})


def build_token_routes(state: EmulatorState) -> list[BaseRoute]:
    return TokenControlApi(state).routes()
