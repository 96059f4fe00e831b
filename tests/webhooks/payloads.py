"""Fixture webhook bodies (tests/webhooks/fixtures/*.json), serialised and signed the way Meta
does it: `json.dumps` with its default `ensure_ascii=True` (`äöå` as `\\u00e4\\u00f6\\u00e5`)
and HMAC-SHA256 with the app secret in lowercase hex [MSG-WH, IGL-WH]."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ig_outbound.producers.webhooks import (
    WebhookBatch,
    parse_webhook,
    signature_header,
    verify_signature,
)

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE_NAMES = sorted(p.stem for p in FIXTURES.glob("*.json"))

APP_SECRET = "test-app-secret-1"
ROTATED_SECRET = "test-app-secret-2"

IG_ID = "17841400000000001"
IG_ID_2 = "17841400000000002"
USER = "1254477777772919"
USER_2 = "5260000000000042"
ENTRY_TIME = 1569262486134
TS = 1569262485349


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return data


def meta_body(payload: Any) -> bytes:
    """The bytes Meta sends (and signs): ASCII-only JSON with escaped unicode."""
    return json.dumps(payload).encode("ascii")


def signed(name: str, secret: str = APP_SECRET) -> tuple[bytes, str]:
    """A fixture's body and its `X-Hub-Signature-256` value."""
    body = meta_body(load(name))
    return body, signature_header(body, secret)


def receive(name: str) -> WebhookBatch:
    """What a handler does with a delivery: verify the raw bytes, then parse them."""
    body, header = signed(name)
    verify_signature(body, header, APP_SECRET)
    return parse_webhook(body)
