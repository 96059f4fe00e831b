"""From a request's token to its account, or to Graph's 190 (every Graph route uses this).

- no token, or one the emulator never issued: 190 without a subcode (as before tokens aged);
- expired: 190/463 "Session has expired on <date>. The current time is <date>.";
- revoked by a test: 190 with the subcode it was revoked with;
- superseded by its refresh (``tokens.revoke_on_refresh``): 190/467.

No answer ever contains the token. Times are on the emulator's clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ig_outbound.emulator import graph_errors as ge
from ig_outbound.emulator.graph_errors import GraphError
from ig_outbound.emulator.state import Account, EmulatorState
from ig_outbound.emulator.tokens import Token

Reason = Literal["ok", "unknown_token", "expired", "revoked", "superseded"]


@dataclass(frozen=True)
class Verdict:
    """What a token is worth at one moment; ``reason`` names the result in the stats."""

    reason: Reason
    at: float  # emulator clock
    token: Token | None = None
    account: Account | None = None


def check_token(state: EmulatorState, secret: str | None, at: float) -> Verdict:
    with state.lock:
        token = state.tokens.find(secret) if secret else None
        account = state.account(token.ig_id) if token is not None else None
        if token is None or account is None:
            return Verdict("unknown_token", at)
        status = token.status(at)
        reason: Reason = "ok" if status == "valid" else status
        return Verdict(reason, at, token, account)


def refusal(verdict: Verdict, app_id: str) -> GraphError:
    """Graph's answer to a token that is not ``ok``."""
    token = verdict.token
    if verdict.reason == "expired" and token is not None:
        return ge.token_expired(token.expires_at, verdict.at)
    if verdict.reason == "revoked" and token is not None:
        subcode = token.revoked_subcode or 467
        if subcode == 463:  # revoked "as expired": it expired when it was revoked
            return ge.token_expired(min(token.expires_at, verdict.at), verdict.at)
        return ge.token_invalidated(subcode, app_id)
    if verdict.reason == "superseded":
        return ge.token_superseded()
    return ge.invalid_token()


def authenticate(state: EmulatorState, secret: str | None, at: float) -> Account:
    """The account of a valid token; else raise Graph's 190."""
    verdict = check_token(state, secret, at)
    if verdict.account is None or verdict.reason != "ok":
        raise refusal(verdict, state.app.id)
    return verdict.account
