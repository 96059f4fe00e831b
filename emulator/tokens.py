"""Instagram user tokens with a lifetime, on the emulator's clock.

Each token belongs to one account and has ``issued_at`` and ``expires_at`` (emulator epoch
seconds). An account may hold several valid tokens at once: its configured one, those a test
registered (an operator logging in again) and those ``refresh_access_token`` issued. A token
is, at a given moment, one of:

- ``valid``: known, not revoked, not superseded, and ``now < expires_at``;
- ``expired``: its lifetime ran out (Graph: 190/463);
- ``revoked``: a test revoked it with a subcode (460 password changed, 458 app removed, ...);
- ``superseded``: refreshed while ``tokens.revoke_on_refresh`` was on (190/467).

A token is never shown: descriptions carry ``fingerprint`` (the first 12 hex digits of its
SHA-256) instead. Every method runs under the state lock (the registry has none of its own).
"""

from __future__ import annotations

import hashlib
import secrets
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ig_outbound.emulator.config import TokenConfig

TokenStatus = Literal["valid", "expired", "revoked", "superseded"]
Origin = Literal["configured", "registered", "refreshed"]
# Graph's subcodes for a token that no longer works (fact sheet §4): 458 app not installed,
# 459 checkpointed, 460 password changed, 463 expired, 464 unconfirmed user, 467 invalid,
# 492 invalid session.
REVOKE_SUBCODES = frozenset({458, 459, 460, 463, 464, 467, 492})
# Subcode of a token superseded by its refresh: 467, Graph's "invalid access token" (its
# reference: "expired, been revoked, or is otherwise invalid"). Emulator choice, UNCONFIRMED.
SUPERSEDED_SUBCODE = 467
_ALPHABET = string.ascii_letters + string.digits
NEW_TOKEN_CHARS = 140  # Instagram's long-lived tokens run to about 150 characters


def fingerprint(token: str) -> str:
    """How a token is named wherever it could be seen: SHA-256, first 12 hex digits."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:12]


def new_token_string() -> str:
    """An unguessable token shaped like Instagram's (``IGAA`` + letters and digits)."""
    return "IGAA" + "".join(secrets.choice(_ALPHABET) for _ in range(NEW_TOKEN_CHARS))


@dataclass(frozen=True)
class TokenSpec:
    """How an account's own token starts every run (at start and after each reset)."""

    secret: str = field(repr=False)
    age_s: float = 0.0
    lifetime_s: float | None = None  # None: the emulator-wide lifetime


@dataclass
class Token:
    secret: str = field(repr=False)  # never logged, never returned
    ig_id: str
    issued_at: float
    expires_at: float
    origin: Origin
    refreshed_from: str | None = None  # the fingerprint of the token it was refreshed from
    revoked_subcode: int | None = None
    superseded: bool = False

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.secret)

    def status(self, now: float) -> TokenStatus:
        # An explicit invalidation outranks expiry: it is what Graph would report first.
        if self.revoked_subcode is not None:
            return "revoked"
        if self.superseded:
            return "superseded"
        if now >= self.expires_at:
            return "expired"
        return "valid"

    def describe(self, now: float) -> dict[str, Any]:
        status = self.status(now)
        subcode = {"revoked": self.revoked_subcode, "superseded": SUPERSEDED_SUBCODE}.get(status)
        return {
            "fingerprint": self.fingerprint,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
            "state": status,
            "refreshed_from": self.refreshed_from,
            "origin": self.origin,
            "subcode": subcode,
        }


class TokenRegistry:
    """Every token the emulator knows, by its string."""

    def __init__(self, settings: TokenConfig) -> None:
        self.settings = settings
        self._tokens: dict[str, Token] = {}

    def restart(self, settings: TokenConfig, specs: Mapping[str, TokenSpec], now: float) -> None:
        """Forget every token; issue each account's own token again as of ``now``."""
        self.settings = settings
        self._tokens.clear()
        for ig_id, spec in specs.items():
            self.issue(ig_id, spec.secret, now=now, age_s=spec.age_s, lifetime_s=spec.lifetime_s)

    def issue(
        self,
        ig_id: str,
        secret: str,
        *,
        now: float,
        age_s: float = 0.0,
        lifetime_s: float | None = None,
        origin: Origin = "configured",
        refreshed_from: str | None = None,
    ) -> Token:
        if secret in self._tokens:
            raise ValueError("token already registered")  # never echo the token itself
        issued_at = now - age_s
        lifetime = self.settings.lifetime_s if lifetime_s is None else lifetime_s
        token = Token(secret, ig_id, issued_at, issued_at + lifetime, origin, refreshed_from)
        self._tokens[secret] = token
        return token

    def remove(self, secret: str) -> None:
        self._tokens.pop(secret, None)

    def find(self, secret: str) -> Token | None:
        return self._tokens.get(secret)

    def owner(self, secret: str) -> str | None:
        token = self._tokens.get(secret)
        return token.ig_id if token is not None else None

    def of_account(self, ig_id: str) -> list[Token]:
        """The account's tokens, oldest first."""
        return sorted(
            (t for t in self._tokens.values() if t.ig_id == ig_id), key=lambda t: t.issued_at
        )

    def old_enough_to_refresh(self, token: Token, now: float) -> bool:
        return now - token.issued_at >= self.settings.min_refresh_age_s

    def refresh(self, token: Token, now: float) -> Token:
        """A new token for the same account, a full lifetime from now; the old one is
        superseded when ``revoke_on_refresh`` is on, else it lives out its own lifetime."""
        new = self.issue(
            token.ig_id,
            new_token_string(),
            now=now,
            origin="refreshed",
            refreshed_from=token.fingerprint,
        )
        if self.settings.revoke_on_refresh:
            token.superseded = True
        return new

    def revoke(
        self, ig_id: str, subcode: int, fingerprints: Iterable[str] | None = None
    ) -> list[Token]:
        """Revoke the account's tokens (those with one of ``fingerprints``, if given) that are
        not revoked yet; return them."""
        wanted = set(fingerprints) if fingerprints is not None else None
        revoked = []
        for token in self.of_account(ig_id):
            if token.revoked_subcode is None and (wanted is None or token.fingerprint in wanted):
                token.revoked_subcode = subcode
                revoked.append(token)
        return revoked
