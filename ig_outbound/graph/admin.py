"""Account administration calls to Graph: who a token belongs to, refreshing it, and the
webhook subscription of its account.

Rare calls (an operator adding an account, a refresh every few days), so one short-lived
HTTP client per :class:`GraphAdmin` and exceptions rather than result values: a caller either
gets the answer or a :class:`GraphAdminError` saying what Graph said, never the token.

The token goes as Meta's docs show it for each call: ``refresh_access_token`` takes it as a
query parameter (the documented form; the URL is therefore never logged or put into an
error), the others in the ``Authorization`` header.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from ig_outbound.graph.client import GraphHttp
from ig_outbound.graph.errors import ErrorClass, GraphError, classify, classify_transport

# Graph's default answer to GET /me is the id only; these are the fields the Instagram API
# with Instagram Login's get-started guide reads (`user_id` is the IG_ID messages go from).
ME_FIELDS: Final = ("user_id", "username", "account_type")
_REDACTED: Final = "[redacted]"
_MALFORMED: Final = "malformed_answer"


class GraphAdminError(Exception):
    """Graph refused an admin call, or could not be reached. The text never holds a token.

    ``token_invalid``: Graph says the token itself is bad (190 and its subcodes): the
    account needs a new one. ``transient``: worth trying again later."""

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        code: int | None = None,
        subcode: int | None = None,
        http_status: int | None = None,
        transient: bool = False,
    ) -> None:
        super().__init__(message)
        self.reason = reason  # machine-readable: graph_190_463, transport_connect_error, ...
        self.code = code
        self.subcode = subcode
        self.http_status = http_status
        self.transient = transient

    @property
    def token_invalid(self) -> bool:
        return self.code == 190

    def as_dict(self) -> dict[str, Any]:
        return {
            "error": "graph_refused" if self.code is not None else "graph_unreachable",
            "reason": self.reason,
            "code": self.code,
            "subcode": self.subcode,
            "message": str(self),
        }


@dataclass(frozen=True)
class TokenOwner:
    """Whose token it is, per ``GET /me``."""

    user_id: str  # the IG_ID (professional account id) messages are sent from
    username: str | None
    account_type: str | None


@dataclass(frozen=True)
class RefreshedToken:
    """``GET /refresh_access_token``'s answer: a token valid for ``expires_in_s`` from now."""

    token: SecretStr
    expires_in_s: int


class GraphAdmin(GraphHttp):
    """Account admin calls against Graph (or the emulator)."""

    def _path(self, *parts: str) -> str:
        return "/" + "/".join([self._settings.api_version, *(quote(p, safe="") for p in parts)])

    async def me(self, token: SecretStr) -> TokenOwner:
        """The account a token belongs to (``GET /me?fields=user_id,username,account_type``)."""
        data = await self._call(
            "GET", self._path("me"), token, params={"fields": ",".join(ME_FIELDS)}
        )
        user_id = data.get("user_id")
        if isinstance(user_id, int) and not isinstance(user_id, bool):
            user_id = str(user_id)
        if not isinstance(user_id, str) or not user_id.isdigit():
            raise GraphAdminError("GET /me answered without a numeric user_id", reason=_MALFORMED)
        username = data.get("username")
        account_type = data.get("account_type")
        return TokenOwner(
            user_id=user_id,
            username=username if isinstance(username, str) else None,
            account_type=account_type if isinstance(account_type, str) else None,
        )

    async def refresh(self, token: SecretStr) -> RefreshedToken:
        """A new long-lived token for this one (Graph allows it once the token is 24 h old)."""
        data = await self._call(
            "GET",
            "/refresh_access_token",
            token,
            params={"grant_type": "ig_refresh_token"},
            token_in_query=True,
        )
        new = data.get("access_token")
        expires_in = data.get("expires_in")
        well_formed = isinstance(new, str) and new and isinstance(expires_in, int)
        if not well_formed or not isinstance(expires_in, int) or expires_in <= 0:
            raise GraphAdminError(
                "refresh_access_token answered without a token or expiry", reason=_MALFORMED
            )
        return RefreshedToken(token=SecretStr(str(new)), expires_in_s=expires_in)

    async def subscribe(self, account_id: str, token: SecretStr, fields: Iterable[str]) -> None:
        """Subscribe the app to the account's webhook ``fields`` (replacing the set)."""
        data = await self._call(
            "POST",
            self._path(account_id, "subscribed_apps"),
            token,
            params={"subscribed_fields": ",".join(fields)},
        )
        if data.get("success") is not True:
            raise GraphAdminError("subscribed_apps did not answer success", reason=_MALFORMED)

    async def _call(
        self,
        method: str,
        path: str,
        token: SecretStr,
        *,
        params: dict[str, str],
        token_in_query: bool = False,
    ) -> dict[str, Any]:
        secret = token.get_secret_value()
        headers: dict[str, str] = {}
        if token_in_query:
            params = {**params, "access_token": secret}
        else:
            headers["Authorization"] = f"Bearer {secret}"
        try:
            response = await self._http.request(method, path, params=params, headers=headers)
        except httpx.HTTPError as exc:
            failure = classify_transport(exc, redact=(secret,))
            raise GraphAdminError(
                f"no answer from Graph ({failure.reason})",
                reason=f"transport_{failure.reason}",
                transient=True,
            ) from None
        return _answer(response, secret)


def _answer(response: httpx.Response, secret: str) -> dict[str, Any]:
    status = response.status_code
    if 200 <= status <= 299:
        try:
            data = response.json()
        except ValueError:
            data = None
        if isinstance(data, dict):
            return data
        raise GraphAdminError(
            f"HTTP {status} without a JSON object", reason=_MALFORMED, http_status=status
        )
    error = GraphError.from_response(status, response.content)
    verdict = classify(error)
    message = error.message.replace(secret, _REDACTED) if secret else error.message
    reason = (
        f"graph_{error.code}" + (f"_{error.subcode}" if error.subcode is not None else "")
        if error.code is not None
        else f"http_{status}"
    )
    raise GraphAdminError(
        message,
        reason=reason,
        code=error.code,
        subcode=error.subcode,
        http_status=status,
        transient=verdict.error_class in (ErrorClass.TRANSIENT, ErrorClass.THROTTLED),
    )
