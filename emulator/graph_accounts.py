"""Graph's routes about the account and its token, besides the Send API.

- ``GET /refresh_access_token?grant_type=ig_refresh_token&access_token=...`` (also under a
  ``/v{N}.0/`` prefix): a valid token at least ``tokens.min_refresh_age_s`` (24 h) old gets a
  NEW token for the same account, valid a full ``tokens.lifetime_s`` (60 days) from now:
  ``{"access_token", "token_type": "bearer", "expires_in"}``. The old token stays valid until
  its own expiry, or is superseded (190/467) when ``tokens.revoke_on_refresh`` is on.
  Refusals: a bad token 190 (``auth.py``); grant_type missing or not ``ig_refresh_token``: 100;
  a token younger than 24 h: ``OAuthException`` 100 -- UNCONFIRMED: Meta states the rule but
  no error for it was found, so the code and text are the emulator's choice.
- ``GET /v{N}.0/me?fields=...`` (also ``/me``) and ``GET /v{N}.0/{IG_ID}`` with a token of that
  account: the fields asked for among ``user_id`` (the IG_ID), ``username``, ``id`` (app-scoped,
  not the IG_ID), ``account_type`` (``BUSINESS``) and ``name``. ``id`` is always in the answer,
  as Graph adds it to every node read; no ``fields`` answers ``{"id"}`` only. An unknown field
  is 100 "Tried accessing nonexisting field"; another account's IG_ID is 100/33.
- ``GET|POST|DELETE /v{N}.0/{IG_ID|me}/subscribed_apps``: POST ``subscribed_fields`` (comma
  separated, in the query, a form or JSON) replaces the account's fields -> ``{"success":
  true}``; GET -> ``{"data": [{"subscribed_fields", "id", "name"}]}`` (``[]`` when not
  subscribed); DELETE unsubscribes -> ``{"success": true}``. An unknown field is 100 naming
  it; another account's IG_ID is 100/33.

Every call is counted in ``stats()["graph_calls"]`` by route and result. No answer carries
the token it was called with (only a refresh answers a token: the new one).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ig_outbound.emulator import auth
from ig_outbound.emulator import graph_errors as ge
from ig_outbound.emulator.body import JsonDict, parse_body, parse_form
from ig_outbound.emulator.control_api import PREFIX
from ig_outbound.emulator.credentials import request_token, without_credentials
from ig_outbound.emulator.graph_errors import GraphError
from ig_outbound.emulator.pipeline import VERSION_RE
from ig_outbound.emulator.state import Account, EmulatorState
from ig_outbound.emulator.subscriptions import PARAM, parse_fields

GRANT_TYPE = "ig_refresh_token"
ACCOUNT_TYPE = "BUSINESS"  # the emulator's accounts are professional (business) accounts
NODE_FIELDS = ("user_id", "username", "id", "account_type", "name")


class Refused(Exception):
    """A Graph error and the result it counts as."""

    def __init__(self, result: str, error: GraphError) -> None:
        super().__init__(result)
        self.result = result
        self.error = error


@dataclass
class GraphCall:
    """One authenticated call: its params (credentials removed), account and moment."""

    params: JsonDict
    verdict: auth.Verdict
    node: str | None = None
    method: str = "get"

    @property
    def account(self) -> Account:
        assert self.verdict.account is not None
        return self.verdict.account

    def own_node(self) -> None:
        """The path's node must be ``me`` or the token's own account (else 100/33)."""
        if self.node is not None and self.node not in ("me", self.account.ig_id):
            raise Refused("wrong_account", ge.unsupported_request(self.method, self.node))


Work = Callable[[GraphCall], tuple[str, JsonDict]]


class GraphAccountApi:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    def routes(self) -> list[BaseRoute]:
        # Specific paths before the catch-all node read; all after the control routes.
        return [
            Route("/refresh_access_token", self.refresh, methods=["GET"]),
            Route("/{version}/refresh_access_token", self.refresh, methods=["GET"]),
            Route("/me", self.read_node, methods=["GET"]),
            Route(
                "/{version}/{node}/subscribed_apps",
                self.subscribed_apps,
                methods=["GET", "POST", "DELETE"],
            ),
            Route("/{version}/{node}", self.read_node, methods=["GET"]),
        ]

    # --- the routes ---------------------------------------------------------------------------

    async def refresh(self, request: Request) -> Response:
        return await self._answer(request, "refresh_access_token", self._refresh)

    async def read_node(self, request: Request) -> Response:
        return await self._answer(request, "me", self._read_node)

    async def subscribed_apps(self, request: Request) -> Response:
        return await self._answer(request, "subscribed_apps", self._subscribed_apps)

    # --- what each does (under the state lock) ------------------------------------------------

    def _refresh(self, call: GraphCall) -> tuple[str, JsonDict]:
        grant_type = call.params.get("grant_type")
        if grant_type != GRANT_TYPE:
            raise Refused("bad_grant_type", ge.bad_grant_type(missing=not grant_type))
        registry, token = self.state.tokens, call.verdict.token
        assert token is not None
        if not registry.old_enough_to_refresh(token, call.verdict.at):
            raise Refused("too_early", ge.refresh_too_early(registry.settings.min_refresh_age_s))
        new = registry.refresh(token, call.verdict.at)
        expires_in = round(new.expires_at - call.verdict.at)
        return "refreshed", {
            "access_token": new.secret,
            "token_type": "bearer",
            "expires_in": expires_in,
        }

    def _read_node(self, call: GraphCall) -> tuple[str, JsonDict]:
        call.own_node()
        raw = call.params.get("fields")
        names = [n.strip() for n in raw.split(",") if n.strip()] if isinstance(raw, str) else []
        account = call.account
        values = {
            "user_id": account.ig_id,
            "username": account.username,
            "id": account.app_scoped_id,
            "account_type": ACCOUNT_TYPE,
            "name": account.display_name,
        }
        answer: JsonDict = {}
        for name in names:
            if name not in values:
                raise Refused("unknown_field", ge.nonexisting_field(name))
            answer[name] = values[name]
        answer.setdefault("id", account.app_scoped_id)
        return "ok", answer

    def _subscribed_apps(self, call: GraphCall) -> tuple[str, JsonDict]:
        call.own_node()
        ig_id, subscriptions = call.account.ig_id, self.state.subscriptions
        if call.method == "post":
            try:
                fields = parse_fields(call.params.get(PARAM))
            except GraphError as error:
                raise Refused("bad_field", error) from error
            subscriptions.subscribe(ig_id, fields)
            return "subscribed", {"success": True}
        if call.method == "delete":
            subscriptions.unsubscribe(ig_id)
            return "unsubscribed", {"success": True}
        subscribed = subscriptions.fields(ig_id)
        app = self.state.app
        data = [{"subscribed_fields": subscribed, "id": app.id, "name": app.name}]
        return "listed", {"data": data if subscribed else []}

    # --- shared -------------------------------------------------------------------------------

    async def _answer(self, request: Request, route: str, work: Work) -> Response:
        if request.url.path.startswith(PREFIX):
            raise HTTPException(404)  # an unknown control path, not a Graph node
        version = request.path_params.get("version")
        if version is not None and not VERSION_RE.match(version):
            return ge.unknown_path(request.url.path).to_response()
        try:
            params = await _params(request)
        except GraphError as error:
            self.state.count_graph_call(route, "bad_request")
            return error.to_response()
        arrived = self.state.clock.now()
        token = request_token(request, params)
        with self.state.lock:
            verdict = auth.check_token(self.state, token, arrived)
            try:
                if verdict.reason != "ok":
                    raise Refused(verdict.reason, auth.refusal(verdict, self.state.app.id))
                call = GraphCall(
                    without_credentials(params),
                    verdict,
                    node=request.path_params.get("node"),
                    method=request.method.lower(),
                )
                result, body = work(call)
            except Refused as refused:
                self.state.count_graph_call(route, refused.result)
                return refused.error.to_response()
            self.state.count_graph_call(route, result)
        return Response(
            json.dumps(body), status_code=200, media_type="application/json; charset=UTF-8"
        )


async def _params(request: Request) -> JsonDict:
    """Query and body params (the body wins), as Graph reads them."""
    query = parse_form(request.url.query) if request.url.query else {}
    raw = await request.body()
    return {**query, **parse_body(raw, request.headers.get("content-type", ""))}


def build_graph_account_routes(state: EmulatorState) -> list[BaseRoute]:
    return GraphAccountApi(state).routes()
