"""Errors of the account registry; none of their texts ever holds a token or a key.

AccountError                 `code` + `as_dict()`, like every error of ours
 ├── AccountConfigError      a missing or malformed key setting, an unreadable token file
 ├── AccountNotFoundError    no such account in the registry
 ├── AccountRefusedError     Graph refused the token (`accounts add`): its reason, nothing
 │                           stored
 └── CorruptAccountError     an entry that cannot be read (undecryptable token, bad field):
                             that account only; the others go on
"""

from __future__ import annotations

from typing import Any


class AccountError(Exception):
    code: str = "account_error"

    def as_dict(self) -> dict[str, Any]:
        return {"error": self.code, "message": str(self)}


class AccountConfigError(AccountError, ValueError):
    code = "invalid_account_settings"


class AccountNotFoundError(AccountError, LookupError):
    code = "account_not_found"

    def __init__(self, account_id: str) -> None:
        super().__init__(f"account {account_id} is not in the registry")
        self.account_id = account_id


class InvalidAccountRequest(AccountError, ValueError):
    code = "invalid_request"


class AccountRefusedError(AccountError):
    """Graph refused the token, or it belongs to another account."""

    code = "token_refused"

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "reason": self.reason}


class CorruptAccountError(AccountError):
    code = "corrupt_account"

    def __init__(self, account_id: str, problem: str) -> None:
        super().__init__(f"account {account_id}: {problem}")
        self.account_id = account_id
