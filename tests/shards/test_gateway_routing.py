"""The gateway over two shards: each account's webhook facts (window facts, echoes, the
inbound stream) are recorded on its shard, its intake enqueues on the intent's shard, and
the webhook stream stays on shard 0."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from ig_outbound.gateway.app import WEBHOOK_PATH, Gateway, create_app
from ig_outbound.gateway.settings import GatewaySection, GatewaySettings
from ig_outbound.harness.intents import text_intent
from ig_outbound.harness.processes import RedisServer
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.webhooks import SIGNATURE_HEADER, signature_header
from tests.shards.conftest import PREFIX, accounts_on, now_hint

SECRET = "app-secret-" + "s" * 20
INTAKE = "intake-token-" + "i" * 20
USER = "1254477777700777"
KEYS = Keys(PREFIX)
ZERO, ONE = accounts_on(0, 1, start=300)[0], accounts_on(1, 1, start=300)[0]


def _entry(account: str, mid: str, ts: int, *, echo: bool = False) -> dict[str, Any]:
    sender, recipient = (account, USER) if echo else (USER, account)
    message: dict[str, Any] = {"mid": mid, "text": f"hi {mid}"}
    if echo:
        message["is_echo"] = True
    return {
        "id": account,
        "time": ts,
        "messaging": [
            {
                "sender": {"id": sender},
                "recipient": {"id": recipient},
                "timestamp": ts,
                "message": message,
            }
        ],
    }


@pytest.fixture
async def shards(
    two_redis: tuple[RedisServer, RedisServer],
) -> AsyncIterator[tuple[aioredis.Redis, aioredis.Redis]]:
    clients = [aioredis.Redis.from_url(s.url) for s in two_redis]
    for c in clients:
        await c.flushdb()
    await clients[0].sadd(KEYS.accounts, ZERO)
    await clients[1].sadd(KEYS.accounts, ONE)
    yield clients[0], clients[1]
    for c in clients:
        await c.aclose()


@pytest.fixture
async def app(
    shards: tuple[aioredis.Redis, aioredis.Redis], two_redis: tuple[RedisServer, RedisServer]
) -> AsyncIterator[tuple[httpx.AsyncClient, Gateway]]:
    section = GatewaySection(app_secrets=[SecretStr(SECRET)], intake_tokens=[SecretStr(INTAKE)])
    settings = GatewaySettings(
        key_prefix=PREFIX, shards=[s.url for s in two_redis], gateway=section
    )
    application = create_app(settings, shards[0], list(shards))
    gateway: Gateway = application.state.gateway
    await gateway.processor.start()  # the group; stopped again: the test steps it
    await gateway.processor.stop()
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
        yield http, gateway


async def test_each_accounts_webhook_facts_are_recorded_on_its_shard(
    app: tuple[httpx.AsyncClient, Gateway], shards: tuple[aioredis.Redis, aioredis.Redis]
) -> None:
    http, gateway = app
    ts = 1_800_000_000_000
    payload = {
        "object": "instagram",
        "entry": [
            _entry(ZERO, "m-zero", ts),
            _entry(ONE, "m-one", ts + 1),
            _entry(ONE, "m-echo", ts + 2, echo=True),
        ],
    }
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature_header(body, SECRET)}
    answer = await http.post(WEBHOOK_PATH, content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    assert await shards[0].xlen(KEYS.webhooks) == 1 and not await shards[1].exists(KEYS.webhooks)
    assert await gateway.processor.step(block_ms=None) == 1
    zero, one = shards
    assert await zero.exists(KEYS.user_last_message(ZERO, USER))
    assert not await one.exists(KEYS.user_last_message(ZERO, USER))
    assert await one.exists(KEYS.user_last_message(ONE, USER))
    assert not await zero.exists(KEYS.user_last_message(ONE, USER))
    assert await one.zcard(KEYS.echoes(ONE, USER)) == 1
    assert await zero.xlen(KEYS.inbound) == 1 and await one.xlen(KEYS.inbound) == 2
    assert await zero.xlen(KEYS.webhooks) == 0  # processed and deleted

    await gateway.processor._heartbeat()  # every shard's workers see echoes flow
    assert await zero.exists(KEYS.gateway_alive) and await one.exists(KEYS.gateway_alive)


async def test_the_intake_enqueues_each_intent_on_its_accounts_shard(
    app: tuple[httpx.AsyncClient, Gateway], shards: tuple[aioredis.Redis, aioredis.Redis]
) -> None:
    http, _ = app
    intents = [
        text_intent("in-zero", ZERO, USER, "a", window_hint=now_hint()),
        text_intent("in-one", ONE, USER, "b", window_hint=now_hint()),
    ]
    answer = await http.post(
        "/v1/intents", json=intents, headers={"Authorization": f"Bearer {INTAKE}"}
    )
    assert answer.status_code == 200, answer.text
    assert [r["status"] for r in answer.json()["results"]] == ["queued", "queued"]
    assert await shards[0].exists(KEYS.record("in-zero"))
    assert not await shards[0].exists(KEYS.record("in-one"))
    assert await shards[1].exists(KEYS.record("in-one"))
    ready = await http.get("/readyz")
    assert ready.status_code == 503  # the processor is stopped in these tests; Redis answered
    assert "processor" in ready.json()
