"""The HTTP intake answers as the Python client does: queued, duplicate, conflict, and every
problem named; without a valid bearer token nothing is read."""

from __future__ import annotations

from typing import Any

import pytest

from ig_outbound.harness.intents import make_intent
from tests.gateway.conftest import ACCOUNT, INTAKE, USER, Bench

AUTH = {"Authorization": f"Bearer {INTAKE}"}


def _intent(key: str, text: str = "hi") -> dict[str, Any]:
    return make_intent(key, ACCOUNT, USER, {"kind": "text", "text": text})


async def test_one_intent_is_queued_and_again_is_a_duplicate(bench: Bench) -> None:
    first = await bench.http.post("/v1/intents", json=_intent("i-1"), headers=AUTH)
    assert first.status_code == 200
    assert first.json()["results"][0]["status"] == "queued"
    again = await bench.http.post("/v1/intents", json=_intent("i-1"), headers=AUTH)
    assert again.json()["results"][0]["status"] == "duplicate"
    other = await bench.http.post("/v1/intents", json=_intent("i-1", "other"), headers=AUTH)
    assert other.json()["results"][0]["error"] == "idempotency_conflict"


async def test_a_batch_answers_each_intent_and_one_bad_item_sinks_nothing(bench: Bench) -> None:
    batch = [
        _intent("b-1"),
        {"idempotency_key": "b-2", "content": {"kind": "text", "text": ""}},
        "not an intent",
        make_intent("b-4", "999", USER, {"kind": "sticker"}),
    ]
    answer = await bench.http.post("/v1/intents", json=batch, headers=AUTH)
    body = answer.json()
    assert [r["status"] for r in body["results"]] == ["queued", "refused", "refused", "refused"]
    assert body["refused"] == 3
    problems = {p["loc"] for p in body["results"][1]["problems"]}
    assert {"account_id", "recipient", "content.text"} <= problems
    assert body["results"][3]["error"] == "unknown_account"


@pytest.mark.parametrize("auth", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": INTAKE}])
async def test_without_a_valid_bearer_token_nothing_is_read(
    bench: Bench, auth: dict[str, str]
) -> None:
    answer = await bench.http.post("/v1/intents", json=_intent("unauth"), headers=auth)
    assert (answer.status_code, answer.json()["error"]) == (401, "unauthorized")
    assert not await bench.redis.exists(bench.keys.record("unauth"))


async def test_a_body_that_is_not_json_or_too_large_is_refused(bench: Bench) -> None:
    bad = await bench.http.post("/v1/intents", content=b"{nope", headers=AUTH)
    assert (bad.status_code, bad.json()["error"]) == (400, "invalid_json")
    deep = await bench.http.post("/v1/intents", content=b"[" * 9_000 + b"]" * 9_000, headers=AUTH)
    assert deep.status_code == 400
    big = await bench.http.post("/v1/intents", content=b"[" + b" " * 70_000 + b"]", headers=AUTH)
    assert (big.status_code, big.json()["error"]) == (413, "body_too_large")
