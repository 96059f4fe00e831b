"""Why a webhook request was refused: a machine-readable `code` and the HTTP status to answer.

    OutboundError (ig_outbound.producers.errors)
     └── WebhookError   code: one of `WebhookErrorCode`; status: 400, 401 or 403

The status is a hint for the caller's web handler. Meta retries a delivery that did not get a
200 [MSG-WH], so a handler that answers 4xx to a body it will never accept only adds retries;
answering 200 and logging is a valid choice too. The codes never carry secrets or tokens.
"""

from __future__ import annotations

from typing import Any, Literal

from ig_outbound.producers.errors import OutboundError

WebhookErrorCode = Literal[
    "not_a_subscription",
    "wrong_verify_token",
    "missing_challenge",
    "missing_signature",
    "malformed_signature",
    "bad_signature",
    "invalid_json",
    "not_instagram",
    "malformed",
]

STATUS: dict[WebhookErrorCode, int] = {
    "not_a_subscription": 400,
    "wrong_verify_token": 403,
    "missing_challenge": 400,
    "missing_signature": 401,
    "malformed_signature": 401,
    "bad_signature": 403,
    "invalid_json": 400,
    "not_instagram": 400,
    "malformed": 400,
}


class WebhookError(OutboundError, ValueError):
    """A webhook request (handshake, signature or body) that cannot be accepted."""

    code: WebhookErrorCode

    def __init__(self, code: WebhookErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = STATUS[code]

    def as_dict(self) -> dict[str, Any]:
        return {"error": self.code, "status": self.status, "message": str(self)}
