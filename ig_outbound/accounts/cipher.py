"""Tokens at rest: encrypted with Fernet (AES-128-CBC + HMAC-SHA256, `cryptography`), keys
rotated with MultiFernet, and fingerprinted so processes can compare tokens without them.

A fingerprint is the first 16 hex digits of the token's SHA-256: a long random token cannot
be guessed back from it, and it tells "the same token" from "a new one" across processes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr

from ig_outbound.accounts.errors import AccountConfigError, CorruptAccountError
from ig_outbound.accounts.settings import AccountsSection


def fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:16]


def new_key() -> str:
    """A fresh Fernet key (what `ig-outbound accounts new-key` prints)."""
    return Fernet.generate_key().decode("ascii")


def load_keys(section: AccountsSection) -> list[SecretStr]:
    """The configured keys, first one first; ``AccountConfigError`` names a bad setting."""
    keys = list(section.encryption_keys)
    path = section.encryption_keys_file
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise AccountConfigError(
                f"IG_OUTBOUND_ACCOUNTS__ENCRYPTION_KEYS_FILE: cannot read {path.name!r}: "
                f"{exc.strerror}"
            ) from None
        keys += [SecretStr(line.strip()) for line in text.splitlines() if line.strip()]
    return keys


class TokenCipher:
    """Encrypts with the first key, decrypts with any. ``repr`` shows no key."""

    def __init__(self, keys: Sequence[SecretStr]) -> None:
        if not keys:
            raise AccountConfigError(
                "no encryption key: set IG_OUTBOUND_ACCOUNTS__ENCRYPTION_KEYS "
                "(`ig-outbound accounts new-key` makes one)"
            )
        fernets: list[Fernet] = []
        for number, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.get_secret_value().encode("ascii")))
            except (ValueError, UnicodeEncodeError):
                raise AccountConfigError(
                    f"IG_OUTBOUND_ACCOUNTS__ENCRYPTION_KEYS: key {number} is not a Fernet key "
                    "(urlsafe base64 of 32 bytes)"
                ) from None
        self._primary = fernets[0]
        self._all = MultiFernet(fernets)

    @classmethod
    def from_settings(cls, section: AccountsSection) -> TokenCipher | None:
        """None when no key is configured (then no token is stored or refreshed)."""
        keys = load_keys(section)
        return cls(keys) if keys else None

    def encrypt(self, token: str) -> str:
        return self._primary.encrypt(token.encode("utf-8")).decode("ascii")

    def decrypt(self, ciphertext: str, *, account_id: str) -> str:
        try:
            return self._all.decrypt(ciphertext.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise CorruptAccountError(
                account_id, "its token cannot be decrypted with any configured key"
            ) from None

    def uses_primary(self, ciphertext: str) -> bool:
        """Whether the first key encrypted this (else a rekey is due)."""
        try:
            self._primary.decrypt(ciphertext.encode("ascii"))
        except (InvalidToken, UnicodeError):
            return False
        return True

    def rotate(self, ciphertext: str, *, account_id: str) -> str:
        """The same token under the first key."""
        try:
            return self._all.rotate(ciphertext.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError):
            raise CorruptAccountError(
                account_id, "its token cannot be decrypted with any configured key"
            ) from None

    def __repr__(self) -> str:
        return "TokenCipher(keys=[redacted])"


def read_token_file(path: Path) -> SecretStr:
    """One token from a file (what `accounts add --token-file` reads): stripped, non-empty."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeError) as exc:
        raise AccountConfigError(f"cannot read the token file {path.name!r}: {exc}") from None
    if not text or len(text.split()) != 1:
        raise AccountConfigError(f"the token file {path.name!r} must hold exactly one token")
    return SecretStr(text)
