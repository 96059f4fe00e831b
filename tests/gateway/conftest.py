"""The gateway in process: the real ASGI app over httpx's ASGI transport, a real Redis."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from ig_outbound.gateway.app import WEBHOOK_PATH, Gateway, create_app
from ig_outbound.gateway.settings import GatewaySection, GatewaySettings
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.redis_util import resolve
from ig_outbound.producers.webhooks import SIGNATURE_HEADER, signature_header

ACCOUNT = "17841400000000501"
USER = "1254477777700501"
SECRET = "app-secret-" + "s" * 20
OLD_SECRET = "app-secret-old-" + "o" * 16
VERIFY = "verify-me"
INTAKE = "intake-token-" + "i" * 20


def message(
    mid: str, text: str = "hi", ts: int = 1_800_000_000_000, user: str = USER
) -> dict[str, Any]:
    return {
        "object": "instagram",
        "entry": [
            {
                "id": ACCOUNT,
                "time": ts,
                "messaging": [
                    {
                        "sender": {"id": user},
                        "recipient": {"id": ACCOUNT},
                        "timestamp": ts,
                        "message": {"mid": mid, "text": text},
                    }
                ],
            }
        ],
    }


def echo(mid: str, text: str, ts: int = 1_800_000_000_000) -> dict[str, Any]:
    payload = message(mid, text, ts)
    item = payload["entry"][0]["messaging"][0]
    item["sender"], item["recipient"] = {"id": ACCOUNT}, {"id": USER}
    item["message"]["is_echo"] = True
    return payload


def body_of(payload: dict[str, Any]) -> bytes:
    """As Meta sends it: JSON with escaped unicode."""
    return json.dumps(payload).encode()


@dataclass
class Bench:
    http: httpx.AsyncClient
    gateway: Gateway
    redis: aioredis.Redis
    keys: Keys

    async def deliver(
        self, body: bytes, secret: str | None = SECRET, **headers: str
    ) -> httpx.Response:
        sent = {"Content-Type": "application/json", **headers}
        if secret is not None:
            sent[SIGNATURE_HEADER] = signature_header(body, secret)
        return await self.http.post(WEBHOOK_PATH, content=body, headers=sent)

    async def process(self) -> int:
        """Run the processor until the acknowledged bodies are recorded."""
        done = 0
        while n := await self.gateway.processor.step(block_ms=None):
            done += n
        return done

    async def inbound(self) -> list[dict[bytes, bytes]]:
        return [fields for _, fields in await self.redis.xrange(self.keys.inbound)]


@pytest.fixture
async def bench(aredis: aioredis.Redis) -> AsyncIterator[Bench]:
    section = GatewaySection(
        app_secrets=[SecretStr(SECRET), SecretStr(OLD_SECRET)],
        verify_token=SecretStr(VERIFY),
        intake_tokens=[SecretStr(INTAKE)],
        max_body_bytes=64 * 1024,
        max_backlog=5,
    )
    settings = GatewaySettings(key_prefix=f"gw-{uuid.uuid4().hex[:8]}", gateway=section)
    app = create_app(settings, aredis)
    gateway: Gateway = app.state.gateway
    keys = Keys(settings.key_prefix)
    await resolve(aredis.sadd(keys.accounts, ACCOUNT))
    await gateway.processor.start()  # the group; the task is stopped again: tests step it
    await gateway.processor.stop()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        yield Bench(http, gateway, aredis, keys)
