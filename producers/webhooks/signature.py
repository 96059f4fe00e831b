"""`X-Hub-Signature-256`: HMAC-SHA256 of the request body with the app secret.

Meta signs "an escaped unicode version of the payload, with lowercase hex digits" (`äöå` as
`\\u00e4\\u00f6\\u00e5`) [MSG-WH, IGL-WH]: what it sends is what it signs, so verify over the raw
body bytes exactly as received, before any decoding or re-serialising. Which secret signs
IG-Login webhooks (the Meta app secret or the Instagram app secret) is UNCONFIRMED (fact
sheet §10.7); passing both is allowed, as is passing an old and a new one while rotating.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence

from ig_outbound.producers.webhooks.errors import WebhookError

SIGNATURE_HEADER = "X-Hub-Signature-256"
_PREFIX = "sha256="
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


def signature_header(body: bytes, app_secret: str) -> str:
    """The `X-Hub-Signature-256` value Meta sends for `body`: `sha256=<lowercase hex>`."""
    return _PREFIX + _digest(body, app_secret)


def verify_signature(body: bytes, header: str | None, app_secret: str | Sequence[str]) -> None:
    """Return if `header` signs `body` with one of the secrets, else raise `WebhookError`.

    `missing_signature` (401): no header or an empty one; `malformed_signature` (401): not
    `sha256=` + 64 hex digits; `bad_signature` (403): signed with none of the secrets (or the
    body is not the one signed). Every comparison is constant-time.
    """
    secrets = [app_secret] if isinstance(app_secret, str) else list(app_secret)
    if not secrets or not all(secrets):
        raise ValueError("app_secret must be one or more non-empty secrets")
    if header is None or not header.strip():
        raise WebhookError("missing_signature", f"no {SIGNATURE_HEADER} header")
    received = _received_digest(header)
    if not any(hmac.compare_digest(received, _digest(body, s)) for s in secrets):
        raise WebhookError("bad_signature", "the signature does not match the body")


def _received_digest(header: str) -> str:
    value = header.strip()
    if value[: len(_PREFIX)].lower() != _PREFIX:
        raise WebhookError("malformed_signature", f"{SIGNATURE_HEADER} is not sha256=<hex>")
    # Meta sends lowercase; an uppercase copy made by a proxy still names the same digest.
    digest = value[len(_PREFIX) :].lower()
    if not _HEX_DIGEST.fullmatch(digest):
        raise WebhookError("malformed_signature", f"{SIGNATURE_HEADER} is not sha256=<hex>")
    return digest


def _digest(body: bytes, app_secret: str) -> str:
    return hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
