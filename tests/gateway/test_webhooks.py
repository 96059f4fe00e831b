"""The gateway's webhook endpoint: verified, acknowledged, recorded once; everything else
refused with a clear status and nothing recorded, and the gateway goes on serving."""

from __future__ import annotations

import json

import pytest

from ig_outbound.gateway.app import WEBHOOK_PATH
from ig_outbound.producers.inbound import claim_echo, message_fingerprint
from ig_outbound.producers.redis_util import resolve
from ig_outbound.producers.webhooks import SIGNATURE_HEADER, signature_header
from tests.gateway.conftest import (
    ACCOUNT,
    OLD_SECRET,
    SECRET,
    USER,
    VERIFY,
    Bench,
    body_of,
    echo,
    message,
)


async def test_the_subscription_handshake_returns_the_challenge(bench: Bench) -> None:
    params = {"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "1158201444"}
    answer = await bench.http.get(WEBHOOK_PATH, params=params)
    assert (answer.status_code, answer.text) == (200, "1158201444")
    wrong = await bench.http.get(WEBHOOK_PATH, params={**params, "hub.verify_token": "nope"})
    assert wrong.status_code == 403 and wrong.json()["error"] == "wrong_verify_token"


async def test_a_signed_message_is_acknowledged_then_recorded_once(bench: Bench) -> None:
    body = body_of(message("m-1", "héllo ✨", ts=1_800_000_000_123))
    answer = await bench.deliver(body)
    assert (answer.status_code, answer.text) == (200, "EVENT_RECEIVED")
    assert await bench.process() == 1
    (event,) = await bench.inbound()
    assert (event[b"type"], event[b"account"], event[b"user"]) == (
        b"message", ACCOUNT.encode(), USER.encode(),
    )  # fmt: skip
    assert json.loads(event[b"event"])["text"] == "héllo ✨"
    last = await bench.redis.get(bench.keys.user_last_message(ACCOUNT, USER))
    assert last == b"1800000000123"
    # Meta redelivers (no 200 seen, or twice): acknowledged again, recorded once.
    assert (await bench.deliver(body)).status_code == 200
    await bench.process()
    assert len(await bench.inbound()) == 1
    assert bench.gateway.processor.results["duplicate"] == 1
    assert await bench.redis.xlen(bench.keys.webhooks) == 0  # processed bodies are gone


async def test_an_older_message_arriving_late_does_not_move_the_window_back(bench: Bench) -> None:
    await bench.deliver(body_of(message("new", ts=1_800_000_005_000)))
    await bench.deliver(body_of(message("old", ts=1_800_000_001_000)))
    await bench.process()
    last = await bench.redis.get(bench.keys.user_last_message(ACCOUNT, USER))
    assert last == b"1800000005000"


async def test_an_echo_is_indexed_for_reconciling_ambiguous_sends(bench: Bench) -> None:
    await bench.deliver(body_of(echo("m-echo", "Thanks!")))
    await bench.process()
    mid = await claim_echo(
        bench.redis, bench.keys, account_id=ACCOUNT, recipient_id=USER, since_ms=0,
        fingerprint=message_fingerprint({"text": "Thanks!"}),
    )  # fmt: skip
    assert mid == "m-echo"
    # An echo does not open the user's window: the business wrote, not the user.
    assert await bench.redis.get(bench.keys.user_last_message(ACCOUNT, USER)) is None


async def test_a_comment_is_recorded_for_private_replies(bench: Bench) -> None:
    payload = {
        "object": "instagram",
        "entry": [
            {
                "id": ACCOUNT,
                "time": 1_800_000_000_000,
                "field": "comments",
                "value": {"id": "17900001", "from": {"id": USER, "username": "u"}, "text": "!"},
            }
        ],
    }
    await bench.deliver(body_of(payload))
    await bench.process()
    comment = await resolve(bench.redis.hgetall(bench.keys.comment("17900001")))
    assert comment[b"user"] == USER.encode() and comment[b"created_ms"] == b"1800000000000"


@pytest.mark.parametrize(
    ("headers", "secret", "status", "code"),
    [
        ({}, None, 401, "missing_signature"),
        ({"X-Hub-Signature-256": "md5=abc"}, None, 401, "malformed_signature"),
        ({}, "not-the-secret", 403, "bad_signature"),
    ],
)
async def test_forged_missing_and_malformed_signatures_are_refused(
    bench: Bench, headers: dict[str, str], secret: str | None, status: int, code: str
) -> None:
    answer = await bench.deliver(body_of(message("forged")), secret=secret, **headers)
    assert (answer.status_code, answer.json()["error"]) == (status, code)
    assert await bench.redis.xlen(bench.keys.webhooks) == 0
    # ... and the gateway goes on serving.
    assert (await bench.deliver(body_of(message("after")))).status_code == 200


async def test_a_rotated_app_secret_still_verifies(bench: Bench) -> None:
    answer = await bench.deliver(body_of(message("rotated")), secret=OLD_SECRET)
    assert answer.status_code == 200


async def test_a_body_changed_after_signing_is_refused(bench: Bench) -> None:
    body = body_of(message("signed"))
    answer = await bench.http.post(
        WEBHOOK_PATH,
        content=body.replace(b"hi", b"ho"),
        headers={SIGNATURE_HEADER: signature_header(body, SECRET)},
    )
    assert answer.status_code == 403


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b'{"object": "page", "entry": []}', b'{"object": "instagram"}'],
)
async def test_malformed_bodies_are_refused_and_nothing_recorded(bench: Bench, body: bytes) -> None:
    answer = await bench.deliver(body)
    assert answer.status_code == 400 and "error" in answer.json()
    assert await bench.redis.xlen(bench.keys.webhooks) == 0


async def test_a_body_over_the_limit_is_refused(bench: Bench) -> None:
    answer = await bench.deliver(body_of(message("big", "x" * 70_000)))
    assert (answer.status_code, answer.json()["error"]) == (413, "body_too_large")
    assert await bench.redis.xlen(bench.keys.webhooks) == 0


async def test_events_of_accounts_nobody_serves_are_acknowledged_not_recorded(
    bench: Bench,
) -> None:
    payload = message("stranger")
    payload["entry"][0]["id"] = "999"
    payload["entry"][0]["messaging"][0]["recipient"]["id"] = "999"
    assert (await bench.deliver(body_of(payload))).status_code == 200  # Meta must not retry
    await bench.process()
    assert await bench.inbound() == []
    assert bench.gateway.processor.results["unknown_account"] == 1


async def test_unknown_event_types_are_kept(bench: Bench) -> None:
    payload = message("x")
    item = payload["entry"][0]["messaging"][0]
    del item["message"]
    item["brand_new_event"] = {"what": "next year's feature"}
    assert (await bench.deliver(body_of(payload))).status_code == 200
    await bench.process()
    (event,) = await bench.inbound()
    assert event[b"type"] == b"unknown"
    assert json.loads(event[b"event"])["raw"]["brand_new_event"] == {"what": "next year's feature"}


async def test_a_full_backlog_slows_meta_down_and_drops_nothing(bench: Bench) -> None:
    """Past the backlog (5 here) the gateway answers 429; nothing acknowledged is lost."""
    answers = [(await bench.deliver(body_of(message(f"b{n}")))).status_code for n in range(8)]
    assert answers == [200] * 5 + [429] * 3
    assert await bench.redis.xlen(bench.keys.webhooks) == 5
    await bench.process()
    assert len(await bench.inbound()) == 5
    assert (await bench.deliver(body_of(message("b5")))).status_code == 200


async def test_health_and_readiness(bench: Bench) -> None:
    assert (await bench.http.get("/healthz")).status_code == 200
    # The processor is stepped by hand here, not running: not ready.
    assert (await bench.http.get("/readyz")).status_code == 503
    await bench.gateway.processor.start()
    try:
        assert (await bench.http.get("/readyz")).json() == {"ready": True}
    finally:
        await bench.gateway.processor.stop()


async def test_a_redis_outage_answers_503_and_keeps_nothing_half_done(
    bench: Bench, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis away (restarting): the delivery is not acknowledged, so Meta sends it again;
    the answer is a clear 503 with Retry-After, never a 500 with a traceback."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    async def down(*args: object, **kwargs: object) -> None:
        raise RedisConnectionError("Connection refused")

    monkeypatch.setattr(bench.gateway.redis, "xlen", down)
    answer = await bench.deliver(body_of(message("m-outage", "hello")))
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5"
    assert answer.json()["error"] == "redis_unavailable"
    monkeypatch.undo()
    again = await bench.deliver(body_of(message("m-outage", "hello")))  # Meta's retry
    assert again.status_code == 200
    assert await bench.process() == 1
