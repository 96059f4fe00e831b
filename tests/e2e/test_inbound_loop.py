"""The whole loop on real processes: a user acts at the emulator (Instagram), its signed
webhook reaches the gateway, the gateway records it on the inbound stream, the example
auto-responder (its own process) answers, a worker sends the answer to the emulator, and
the answer's echo comes back through the gateway.

The stack is this module's own (Redis, gateway, emulator with webhooks, worker, responder):
the session stack's emulator sends no webhooks.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis
from pydantic import SecretStr

from ig_outbound.emulator import EmulatorConfig, EmulatorControl, run_emulator_process
from ig_outbound.emulator import webhooks as wh
from ig_outbound.emulator.config import AccountConfig, WebhookConfig
from ig_outbound.harness.env import client_view, fleet_settings, gateway_settings
from ig_outbound.harness.intents import text_intent
from ig_outbound.harness.loop_books import InboundTail
from ig_outbound.harness.processes import (
    GatewayProcess,
    RedisServer,
    ResponderProcess,
    WorkerProcess,
    free_port,
    metric_total,
)
from ig_outbound.harness.wait import wait_registered, wait_until
from ig_outbound.producers.enqueue import SyncOutboundClient
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.outcome import Outcome
from ig_outbound.producers.settings import ClientSettings
from ig_outbound.producers.webhooks import SIGNATURE_HEADER

pytestmark = pytest.mark.slow

ACCOUNT = "17841400000000701"
UNKNOWN_ACCOUNT = "17841400000000799"  # no worker holds a token for it
PREFIX = "igo-loop"
REPLY_TEXT = "Thanks for your message! How can we help?"  # the example's DM reply


@dataclass(frozen=True)
class Loop:
    control: EmulatorControl
    gateway: GatewayProcess
    responder: ResponderProcess
    client: SyncOutboundClient
    db: Any  # decoded sync client
    keys: Keys
    app_secret: str

    def outcome(self, key: str, timeout_s: float = 30.0) -> Outcome:
        return self.client.wait(key, timeout=timeout_s)

    def gateway_count(self, name: str, **labels: str) -> float:
        return metric_total(self.gateway.metrics(), name, **labels)

    def entries(self, event_id: str) -> list[Any]:
        return [e for e in InboundTail(self.db, self.keys.inbound).read() if e.event_id == event_id]

    def calls_to(self, user: str) -> list[dict[str, Any]]:
        return [c for c in self.control.calls()["calls"] if c["recipient_id"] == user]


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loop]:
    logs = tmp_path_factory.mktemp("loop")
    token, app_secret = "IGAA" + secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    with ExitStack() as stack:
        server = stack.enter_context(RedisServer())
        base = ClientSettings(redis_url=server.url, key_prefix=PREFIX)
        gateway_conf = gateway_settings(base, port=free_port(), app_secrets=[app_secret])
        gateway = GatewayProcess.from_settings(gateway_conf, log_path=logs / "gateway.log")
        stack.enter_context(gateway)
        config = _emulator(token, gateway, app_secret)
        graph_url = stack.enter_context(run_emulator_process(config))
        settings = fleet_settings(
            redis_url=server.url,
            key_prefix=PREFIX,
            graph_url=graph_url,
            tokens={ACCOUNT: token},
            retry={"backoff_base_s": 0.05, "backoff_cap_s": 0.5},
            log_level="debug",
        )
        worker = WorkerProcess.from_settings(settings, log_path=logs / "worker.log").start()
        stack.callback(worker.stop)
        wait_registered(settings, 1)
        producer = client_view(settings)
        responder = ResponderProcess(producer, log_path=logs / "responder.log")
        stack.enter_context(responder)
        control = stack.enter_context(EmulatorControl(graph_url))
        client = stack.enter_context(SyncOutboundClient.connect(server.url, producer))
        db = redis.Redis.from_url(server.url, decode_responses=True)
        stack.callback(db.close)
        yield Loop(control, gateway, responder, client, db, Keys(PREFIX), app_secret)


def _emulator(token: str, gateway: GatewayProcess, app_secret: str) -> EmulatorConfig:
    """Instagram with one account; it signs its webhooks and POSTs them to the gateway."""
    return EmulatorConfig(
        accounts=[AccountConfig(ig_id=ACCOUNT, token=token, username="loopshop")],
        webhooks=WebhookConfig(url=gateway.webhook_url, app_secret=SecretStr(app_secret)),
    )


def _new_user() -> str:
    return f"52{uuid.uuid4().int % 10**14:014d}"


def _signed_message(loop: Loop, account: str, user: str, mid: str) -> tuple[bytes, str]:
    """A user's DM as Meta sends it: the body and its signature."""
    now = time.time()
    entry = wh.messaging_entry(account, now, user, account, now, wh.user_message(mid, text="hi"))
    body = wh.render([entry])
    return body, wh.sign(loop.app_secret, body)


def _post(loop: Loop, body: bytes, signature: str) -> httpx.Response:
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature}
    return httpx.post(loop.gateway.webhook_url, content=body, headers=headers, timeout=10)


def test_a_users_message_gets_one_reply_whose_echo_comes_back(loop: Loop) -> None:
    user = _new_user()
    event = loop.control.user_message(ACCOUNT, user, "Do you ship to Canada?")

    outcome = loop.outcome(f"{event['mid']}:reply:0")

    assert outcome.status == "sent", outcome
    (call,) = loop.calls_to(user)
    assert call["body"]["message"]["text"] == REPLY_TEXT
    # The reply's echo comes back through the gateway, once.
    wait_until(lambda: len(loop.entries(call["message_id"])) == 1, 20, "the reply's echo")
    (echo,) = loop.entries(call["message_id"])
    assert (echo.type, echo.user) == ("echo", user)


def test_a_comment_gets_exactly_one_private_reply(loop: Loop) -> None:
    user = _new_user()
    event = loop.control.user_comment(ACCOUNT, user, "Price?")
    comment = event["comment_id"]

    outcome = loop.outcome(f"{comment}:reply:0")

    assert outcome.status == "sent", outcome
    assert [c["comment_id"] for c in loop.calls_to(user)] == [comment]
    again = text_intent(f"again:{comment}", ACCOUNT, {"comment_id": comment}, "And another?")
    (result,) = loop.client.enqueue_many([again])
    assert result.status == "refused"
    assert getattr(result.error, "reason", None) == "private_reply_already_sent"
    assert len(loop.calls_to(user)) == 1


def test_a_redelivered_webhook_causes_no_second_reply(loop: Loop) -> None:
    user = _new_user()
    event = loop.control.user_message(ACCOUNT, user, "Hello?")
    key = f"{event['mid']}:reply:0"
    assert loop.outcome(key).status == "sent"
    (webhook,) = loop.control.webhooks(since=event["webhook"])["webhooks"][:1]
    duplicates = loop.gateway_count("ig_outbound_inbound_events_total", result="duplicate")

    # Meta delivers the same signed body again.
    response = _post(loop, webhook["body"].encode("ascii"), webhook["signature"])

    assert response.status_code == 200
    wait_until(
        lambda: (
            loop.gateway_count("ig_outbound_inbound_events_total", result="duplicate") > duplicates
        ),
        20,
        "the gateway to process the redelivery",
    )
    wait_until(loop.responder.caught_up, 20, "the auto-responder to read everything")
    assert len(loop.entries(event["mid"])) == 1, "recorded once"
    assert len(loop.calls_to(user)) == 1, "answered once"
    record = loop.db.hgetall(loop.keys.record(key))
    assert record["state"] == "sent"


def test_a_forged_signature_is_refused_and_the_gateway_keeps_serving(loop: Loop) -> None:
    user = _new_user()
    mid = f"forged-{uuid.uuid4().hex}"
    body, _ = _signed_message(loop, ACCOUNT, user, mid)
    forged = wh.sign("not-the-app-secret", body)

    assert _post(loop, body, forged).status_code == 403
    tampered = body.replace(b'"hi"', b'"ho"')
    assert _post(loop, tampered, wh.sign(loop.app_secret, body)).status_code == 403

    # Still serving: the next real message is recorded and answered; the forged one never was.
    event = loop.control.user_message(ACCOUNT, user, "Are you there?")
    assert loop.outcome(f"{event['mid']}:reply:0").status == "sent"
    assert loop.entries(mid) == []
    assert len(loop.calls_to(user)) == 1


def test_an_unknown_accounts_webhook_is_acknowledged_and_not_recorded(loop: Loop) -> None:
    user, mid = _new_user(), f"stranger-{uuid.uuid4().hex}"
    body, signature = _signed_message(loop, UNKNOWN_ACCOUNT, user, mid)
    before = loop.gateway_count("ig_outbound_inbound_events_total", result="unknown_account")

    response = _post(loop, body, signature)

    assert response.status_code == 200, "acknowledged: Meta keeps the subscription"
    wait_until(
        lambda: (
            loop.gateway_count("ig_outbound_inbound_events_total", result="unknown_account")
            > before
        ),
        20,
        "the gateway to process it",
    )
    assert loop.entries(mid) == []
    assert not loop.db.exists(loop.keys.user_last_message(UNKNOWN_ACCOUNT, user))
    assert loop.calls_to(user) == []
