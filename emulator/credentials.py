"""Where Graph finds a request's token: ``Authorization: Bearer|OAuth``, the ``access_token``
query param, or an ``access_token`` body param (form or JSON)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request

# Params Graph accepts anywhere that are not part of the call; never recorded.
CREDENTIAL_PARAMS = ("access_token", "appsecret_proof", "appsecret_time")


def request_token(request: Request, body: Mapping[str, Any] | None) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() in ("bearer", "oauth") and value.strip():
        return value.strip()
    if request.query_params.get("access_token"):
        return request.query_params["access_token"]
    candidate = body.get("access_token") if body is not None else None
    return candidate if isinstance(candidate, str) and candidate else None


def without_credentials(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k not in CREDENTIAL_PARAMS}
