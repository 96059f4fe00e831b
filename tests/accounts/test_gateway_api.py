"""The gateway's accounts API over its ASGI app: the same actions as `ig-outbound accounts`,
behind its own bearer tokens, never echoing a token."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr

from ig_outbound.accounts.settings import AccountsSection
from ig_outbound.gateway.app import create_app
from ig_outbound.gateway.settings import GatewaySection, GatewaySettings
from ig_outbound.graph.settings import GraphSettings
from ig_outbound.producers.redis_util import resolve
from tests.accounts.conftest import DAY, Fleet

ADMIN = "admin-token-" + "a" * 24
INTAKE = "intake-token-" + "i" * 24


def _app(fleet: Fleet, admin_tokens: list[str]) -> httpx.AsyncClient:
    settings = GatewaySettings(
        key_prefix=fleet.prefix,
        redis_allow_data_loss=True,
        graph=GraphSettings(base_url=fleet.emulator.url),
        accounts=AccountsSection(encryption_keys=fleet.keys),
        gateway=GatewaySection(
            admin_tokens=[SecretStr(t) for t in admin_tokens],
            intake_tokens=[SecretStr(INTAKE)],
        ),
    )
    app = create_app(settings, fleet.redis)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")


@pytest.fixture
async def api(fleet: Fleet) -> AsyncIterator[httpx.AsyncClient]:
    async with _app(fleet, [ADMIN]) as client:
        client.headers["Authorization"] = f"Bearer {ADMIN}"
        yield client


async def test_add_list_show_refresh_remove(api: httpx.AsyncClient, fleet: Fleet) -> None:
    ig_id, token = fleet.emulator.new_account(age_s=2 * DAY)
    added = await api.post("/v1/accounts", json={"token": token, "account_id": ig_id})
    assert added.status_code == 201, added.text
    body = added.json()
    assert body["outcome"] == "added" and body["account"]["state"] == "active"
    assert body["account"]["subscribed_fields"]
    again = await api.post("/v1/accounts", json={"token": token, "subscribe": False})
    assert again.status_code == 200 and again.json()["outcome"] == "replaced"
    listed = await api.get("/v1/accounts")
    assert [a["account_id"] for a in listed.json()] == [ig_id]
    shown = await api.get(f"/v1/accounts/{ig_id}")
    assert shown.json()["username"] == f"shop{ig_id[-4:]}"
    # No worker runs here: the request is recorded and waits.
    waiting = await api.post(f"/v1/accounts/{ig_id}/refresh", params={"wait": "0.3"})
    assert waiting.status_code == 202 and waiting.json()["status"] == "waiting"
    removed = await api.delete(f"/v1/accounts/{ig_id}")
    assert removed.json() == {"account_id": ig_id, "result": "removed"}
    assert not await resolve(fleet.redis.sismember(f"{fleet.prefix}:accounts", ig_id))
    for response in (added, again, listed, shown, waiting, removed):
        assert token not in response.text


async def test_refusals_are_clear_and_never_echo_the_token(
    api: httpx.AsyncClient, fleet: Fleet
) -> None:
    bogus = "IGAA" + "b" * 40
    refused = await api.post("/v1/accounts", json={"token": bogus})
    assert refused.status_code == 422
    assert refused.json()["error"] == "token_refused" and refused.json()["reason"] == "graph_190"
    assert bogus not in refused.text
    cases = [
        ({"content": b"{not json " + bogus.encode()}, 400, "invalid_request"),
        ({"json": [bogus]}, 400, "invalid_request"),
        ({"json": {"tok": bogus}}, 400, "invalid_request"),
        ({"json": {"token": bogus, "expires_in": -5}}, 400, "invalid_request"),
        ({"json": {"token": bogus, "subscribe": "yes"}}, 400, "invalid_request"),
        ({"content": b"x" * 20_000}, 400, "invalid_request"),
    ]
    for kwargs, status, code in cases:
        response = await api.post("/v1/accounts", **kwargs)  # type: ignore[arg-type]
        assert (response.status_code, response.json()["error"]) == (status, code), response.text
        assert bogus not in response.text
    missing = await api.get("/v1/accounts/17841400000000000")
    assert (missing.status_code, missing.json()["error"]) == (404, "account_not_found")
    odd = await api.get("/v1/accounts/abc")
    assert (odd.status_code, odd.json()["error"]) == (400, "invalid_account_id")
    assert await fleet.registry.account_ids() == []


async def test_only_admin_tokens_open_it(fleet: Fleet) -> None:
    async with _app(fleet, [ADMIN]) as client:
        assert (await client.get("/v1/accounts")).status_code == 401
        intake = {"Authorization": f"Bearer {INTAKE}"}
        assert (await client.get("/v1/accounts", headers=intake)).status_code == 401
        wrong = {"Authorization": "Bearer " + ADMIN[:-1]}
        assert (await client.get("/v1/accounts", headers=wrong)).status_code == 401
    async with _app(fleet, []) as client:
        off = await client.get("/v1/accounts", headers={"Authorization": f"Bearer {ADMIN}"})
        assert (off.status_code, off.json()["error"]) == (403, "accounts_api_disabled")
