"""Calls of Graph's token, account and subscription routes, for the token tests."""

from __future__ import annotations

from typing import Any

import httpx

from tests.emulator.conftest import IG_A, IG_B, TOKEN_A, USER_1, USER_B, error_of, post

MINUTE = 60.0
HOUR = 3600.0
DAY = 24 * HOUR
LIFETIME_S = 60 * DAY
# Whom a send of each account goes to (a user the account has).
RECIPIENTS = {IG_A: USER_1, IG_B: USER_B}


def refresh(
    graph: httpx.Client,
    token: str | None,
    *,
    grant_type: str | None = "ig_refresh_token",
    prefix: str = "",
) -> httpx.Response:
    params = {}
    if grant_type is not None:
        params["grant_type"] = grant_type
    if token is not None:
        params["access_token"] = token
    return graph.get(f"{prefix}/refresh_access_token", params=params)


def refreshed_token(graph: httpx.Client, token: str) -> str:
    response = refresh(graph, token)
    assert response.status_code == 200, response.text
    new: str = response.json()["access_token"]
    return new


def me(
    graph: httpx.Client, token: str, fields: str | None = None, *, node: str = "me"
) -> httpx.Response:
    params = {"fields": fields} if fields is not None else {}
    return graph.get(f"/v23.0/{node}", params=params, headers={"Authorization": f"Bearer {token}"})


def send(
    graph: httpx.Client, token: str, node: str = "me", to: str | None = None
) -> httpx.Response:
    """A text to ``to`` (default: the user of ``node``'s account, or USER_1)."""
    recipient = to or RECIPIENTS.get(node, USER_1)
    body = {"recipient": {"id": recipient}, "message": {"text": "hi"}}
    return post(graph, body, token=token, node=node)


def token_error(response: httpx.Response) -> tuple[int, str, int, int | None]:
    """(HTTP status, type, code, subcode) of a Graph error answer."""
    error = error_of(response)
    return response.status_code, error["type"], error["code"], error.get("error_subcode")


def assert_190(response: httpx.Response, subcode: int | None, *tokens: str) -> dict[str, Any]:
    """Graph's token error with this subcode, naming none of ``tokens``."""
    assert token_error(response) == (400, "OAuthException", 190, subcode), response.text
    for token in tokens:
        assert token not in response.text
    return error_of(response)


def works(
    graph: httpx.Client, token: str = TOKEN_A, node: str = IG_A, to: str | None = None
) -> bool:
    """Whether a send with the token is accepted (the tests turn the window off)."""
    response = send(graph, token, node, to)
    return response.status_code == 200
