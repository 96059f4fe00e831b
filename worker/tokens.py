"""Access tokens per IG account, from settings: secrets that never leave this process."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from pydantic import SecretStr

from ig_outbound.worker.errors import TokenConfigError
from ig_outbound.worker.settings import Settings


def _parse_file(path: Path) -> dict[str, SecretStr]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TokenConfigError(f"cannot read tokens file {path.name!r}: {exc.strerror}") from None
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError:
            raise TokenConfigError(f"tokens file {path.name!r} is not valid JSON") from None
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in data.items()
        ):
            raise TokenConfigError(f"tokens file {path.name!r} must map account ids to strings")
        return {k: SecretStr(v) for k, v in data.items()}
    out: dict[str, SecretStr] = {}
    for number, line in enumerate(stripped.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        account, sep, token = line.partition("=")
        if not sep or not account.strip().isdigit() or not token.strip():
            raise TokenConfigError(
                f"tokens file {path.name!r} line {number}: expected `account_id=token`"
            )
        out[account.strip()] = SecretStr(token.strip())
    return out


class TokenStore:
    """Looks tokens up by account id. `repr` and `str` never show a token."""

    def __init__(self, tokens: Mapping[str, SecretStr]) -> None:
        self._tokens = dict(tokens)

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenStore:
        tokens = dict(settings.tokens)
        if settings.tokens_file is not None:
            tokens.update(_parse_file(settings.tokens_file))
        for account in tokens:
            if not account.isdigit():
                raise TokenConfigError(f"account id {account!r} is not numeric")
        return cls(tokens)

    def get(self, account_id: str) -> str | None:
        token = self._tokens.get(account_id)
        return None if token is None else token.get_secret_value()

    def accounts(self) -> list[str]:
        return sorted(self._tokens)

    def secrets(self) -> list[str]:
        """Every token, for redaction filters only."""
        return [t.get_secret_value() for t in self._tokens.values()]

    def __repr__(self) -> str:
        return f"TokenStore(accounts={self.accounts()!r})"
