"""An emulator app in process, its webhooks received by a scripted httpx transport."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette

from ig_outbound.emulator import EmulatorConfig, EmulatorState, create_app
from ig_outbound.emulator.config import WebhookConfig
from tests.emulator.conftest import TOKEN_A, base_config

SECRET = "app-secret-for-the-tests"
HOOK_URL = "https://hooks.example.test/instagram"

Answer = int | tuple[int, dict[str, str]] | type[httpx.TransportError]


@dataclass
class Received:
    headers: httpx.Headers
    body: bytes


@dataclass
class Receiver(httpx.AsyncBaseTransport):
    """The webhook endpoint: records each POST's exact bytes and answers from a script
    (a status, a status with headers, or a transport error to raise); then 200s."""

    script: deque[Answer] = field(default_factory=deque)
    received: list[Received] = field(default_factory=list)
    gate: asyncio.Event | None = None  # while set to an unset event, requests hang
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.received.append(Received(request.headers, await request.aread()))
        self._arrived.set()
        if self.gate is not None:
            await self.gate.wait()
        answer = self.script.popleft() if self.script else 200
        if isinstance(answer, int):
            return httpx.Response(answer)
        if isinstance(answer, tuple):
            return httpx.Response(answer[0], headers=answer[1])
        raise answer("scripted failure", request=request)

    async def wait_for(self, count: int) -> None:
        while len(self.received) < count:
            self._arrived.clear()
            if len(self.received) < count:
                await self._arrived.wait()


@dataclass
class World:
    app: Starlette
    receiver: Receiver
    client: httpx.AsyncClient

    @property
    def state(self) -> EmulatorState:
        state: EmulatorState = self.app.state.emulator
        return state

    async def send(self, body: dict[str, Any], token: str = TOKEN_A) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"}
        return await self.client.post("/v23.0/me/messages", json=body, headers=headers)

    async def control(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.client.post(f"/_emulator/{path}", json=body)
        assert response.is_success, response.text
        result: dict[str, Any] = response.json()
        return result

    async def settle(self) -> None:
        await asyncio.wait_for(self.state.webhooks.idle(), timeout=10)

    def webhooks(self) -> list[dict[str, Any]]:
        hooks: list[dict[str, Any]] = self.state.webhooks.snapshot()["webhooks"]
        return hooks

    def items(self) -> list[dict[str, Any]]:
        """Every messaging item of every webhook, in order."""
        entries = [e for w in self.webhooks() for e in json.loads(w["body"])["entry"]]
        return [item for e in entries for item in e.get("messaging", [])]


def world_config(**webhooks: Any) -> EmulatorConfig:
    settings = {"retry_backoff_s": 0.001, "retry_backoff_max_s": 0.01, **webhooks}
    hooks = WebhookConfig(url=HOOK_URL, app_secret=SECRET, **settings)
    return base_config().model_copy(update={"webhooks": hooks})


@asynccontextmanager
async def open_world(config: EmulatorConfig) -> AsyncIterator[World]:
    receiver = Receiver()
    app = create_app(config, webhook_transport=receiver)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://graph.test") as client,
    ):
        yield World(app, receiver, client)
