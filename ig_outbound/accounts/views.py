"""What `accounts list|show` and the gateway's accounts API print: never a token."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel

from ig_outbound.accounts.cipher import TokenCipher
from ig_outbound.accounts.errors import CorruptAccountError
from ig_outbound.accounts.registry import AccountEntry, Pause, Source, State


def _at(ms: int | None) -> datetime | None:
    try:
        return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)
    except (OverflowError, ValueError, OSError):  # (the registry refuses such times)
        return None


class AccountView(BaseModel):
    """An account as an operator sees it. ``state`` is the registry's; ``paused`` is the
    fleet-wide pause (throttling, an account problem, a token Graph refused)."""

    account_id: str
    username: str | None = None
    source: Source | None = None
    state: State | Literal["corrupt"]
    reason: str | None = None
    paused: bool = False
    pause_reason: str | None = None
    pause_left_s: float | None = None
    token_fingerprint: str | None = None
    token_issued_at: datetime | None = None
    token_age_s: float | None = None
    expires_at: datetime | None = None
    expires_in_s: float | None = None
    expiry_estimated: bool = False
    expiring_soon: bool = False
    last_refresh_at: datetime | None = None
    last_refresh_result: str | None = None
    last_refresh_error: str | None = None
    refresh_failures: int = 0
    next_refresh_at: datetime | None = None
    subscribed_fields: list[str] | None = None
    subscribe_error: str | None = None
    added_at: datetime | None = None
    removed_at: datetime | None = None
    # Which key encrypts its stored token: `older_key` means `accounts rekey` is due.
    encrypted_with: Literal["first_key", "older_key", "unreadable", "no_key_configured"] | None = (
        None
    )
    last_error: str | None = None

    @classmethod
    def build(
        cls,
        entry: AccountEntry,
        *,
        now_ms: int,
        pause: Pause | None,
        cipher: TokenCipher | None,
        expiring_soon_s: int,
    ) -> AccountView:
        expires_in_s = None if entry.expires_ms is None else (entry.expires_ms - now_ms) / 1000
        encrypted_with: (
            Literal["first_key", "older_key", "unreadable", "no_key_configured"] | None
        ) = None
        if entry.ciphertext is not None:
            if cipher is None:
                encrypted_with = "no_key_configured"
            elif cipher.uses_primary(entry.ciphertext):
                encrypted_with = "first_key"
            else:
                try:
                    cipher.decrypt(entry.ciphertext, account_id=entry.account_id)
                    encrypted_with = "older_key"
                except CorruptAccountError:
                    encrypted_with = "unreadable"
        last_error = (
            (f"{entry.state}: {entry.reason}" if entry.state != "active" and entry.reason else None)
            or (f"refresh: {entry.refresh_error}" if entry.refresh_error else None)
            or (f"subscribe: {entry.subscribe_error}" if entry.subscribe_error else None)
            or ("token: cannot be decrypted" if encrypted_with == "unreadable" else None)
        )
        return cls(
            account_id=entry.account_id,
            username=entry.username,
            source=entry.source,
            state=entry.state,
            reason=entry.reason,
            paused=pause is not None,
            pause_reason=pause.reason if pause else None,
            pause_left_s=pause.left_ms / 1000 if pause else None,
            token_fingerprint=entry.fingerprint,
            token_issued_at=_at(entry.issued_ms),
            token_age_s=None if entry.issued_ms is None else (now_ms - entry.issued_ms) / 1000,
            expires_at=_at(entry.expires_ms),
            expires_in_s=expires_in_s,
            expiry_estimated=entry.estimated,
            expiring_soon=expires_in_s is not None and expires_in_s <= expiring_soon_s,
            last_refresh_at=_at(entry.refreshed_ms or entry.refresh_tried_ms),
            last_refresh_result=entry.refresh_result,
            last_refresh_error=entry.refresh_error,
            refresh_failures=entry.refresh_failures,
            next_refresh_at=_at(entry.refresh_next_ms),
            subscribed_fields=list(entry.subscribed) if entry.subscribed is not None else None,
            subscribe_error=entry.subscribe_error,
            added_at=_at(entry.added_ms),
            removed_at=_at(entry.removed_ms),
            encrypted_with=encrypted_with,
            last_error=last_error,
        )

    @classmethod
    def corrupt(cls, account_id: str, problem: str) -> AccountView:
        return cls(account_id=account_id, state="corrupt", last_error=problem)
