"""Media and the bot disclosure through a whole stack of this module's own: a private Redis,
the emulator with its media host (a throwaway CA), and `ig-outbound worker` processes that
trust that CA (`media.ca_file`), may reach the media host's loopback address
(`media.allow_hosts`) and disclose for one account (`disclosure.accounts`).

The worker refuses what Graph would refuse before Graph is asked (the emulator's own media
refusals are never reached), never connects inward, and copes with a server that lies; the
disclosure goes exactly once before the first automated message of a conversation, also when
the worker is SIGKILLed while the message hangs, and never before what a human wrote."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from ig_outbound.emulator import (
    AccountConfig,
    EmulatorConfig,
    EmulatorControl,
    MediaConfig,
    ScriptedAnswer,
    run_emulator_process,
)
from ig_outbound.harness.env import client_view, fleet_settings
from ig_outbound.harness.intents import make_intent, text_intent
from ig_outbound.harness.processes import RedisServer, WorkerProcess
from ig_outbound.harness.wait import wait_registered, wait_until
from ig_outbound.producers.enqueue import SyncOutboundClient
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.outcome import Outcome
from ig_outbound.worker.settings import DisclosureRule, Settings

pytestmark = pytest.mark.slow

ACCOUNT_MEDIA = "17841400000000301"
ACCOUNT_DISCLOSING = "17841400000000302"
ACCOUNTS = [ACCOUNT_MEDIA, ACCOUNT_DISCLOSING]
USERS = [f"12544777778{n:05d}" for n in range(40)]
PREFIX = "igo-media"
DISCLOSURE = "You are chatting with the Shop bot."
RULE = DisclosureRule(enabled=True, text=DISCLOSURE)
MIB = 1024 * 1024
# Every worker of this stack: a killed worker's job returns after its in-progress key
# expires (its job timeout + 10 s) and its journal lease after job timeout + 5 s, so a
# short one brings the SIGKILLed job back in about 16 s instead of 30.
JOB_TIMEOUT_S = 6.0
# The media host's address, the only one the workers may reach although it is loopback. Not
# 127.0.0.1: an allowed network lets in every name that resolves into it, so with 127.0.0.1
# allowed, `localhost` (127.0.0.1) would be allowed too.
MEDIA_HOST = "127.0.0.2"
# Graph's media refusals (emulator/media_checks.py): the worker's own check comes first.
GRAPH_MEDIA_REFUSALS = ("36000/2207004", "100/2018109", "100/2018047", "100/2018008")


@dataclass
class MediaStack:
    redis_url: str
    control: EmulatorControl
    settings: Settings
    log_dir: Path
    workers: list[WorkerProcess] = field(default_factory=list)

    def start_worker(self) -> WorkerProcess:
        log = self.log_dir / f"worker-{len(self.workers)}.log"
        worker = WorkerProcess.from_settings(self.settings, log_path=log).start()
        self.workers.append(worker)
        return worker

    def client(self) -> SyncOutboundClient:
        return SyncOutboundClient.connect(self.redis_url, client_view(self.settings))

    def run(self, *intents: dict[str, Any], timeout: float = 30.0) -> dict[str, Outcome]:
        """Enqueue the intents and wait for their outcomes."""
        with self.client() as client:
            client.enqueue_many(list(intents))
            keys = [intent["idempotency_key"] for intent in intents]
            return client.wait_many(keys, timeout)


def _emulator(tokens: dict[str, str]) -> EmulatorConfig:
    accounts = [AccountConfig(ig_id=a, token=t, username=f"u{a[-3:]}") for a, t in tokens.items()]
    return EmulatorConfig(
        accounts=accounts,
        users={account: USERS for account in ACCOUNTS},
        media=MediaConfig(enabled=True, host=MEDIA_HOST),
    )


@pytest.fixture(scope="module")
def media_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MediaStack]:
    tokens = {account: "IGAA" + secrets.token_urlsafe(32) for account in ACCOUNTS}
    with (
        RedisServer() as server,
        run_emulator_process(_emulator(tokens)) as graph_url,
        EmulatorControl(graph_url) as control,
    ):
        settings = fleet_settings(
            redis_url=server.url,
            key_prefix=PREFIX,
            graph_url=graph_url,
            tokens=tokens,
            media={"ca_file": control.media_ca_file(), "allow_hosts": [f"{MEDIA_HOST}/32"]},
            disclosure={"accounts": {ACCOUNT_DISCLOSING: RULE}},
            worker={"job_timeout_s": JOB_TIMEOUT_S},
            # No gateway here (no echoes to reconcile with): an unanswered send is resent.
            ambiguous_policy="resend",
            retry={"backoff_base_s": 0.05, "backoff_cap_s": 0.5},
            log_level="debug",
        )
        stack = MediaStack(server.url, control, settings, tmp_path_factory.mktemp("media-e2e"))
        stack.start_worker()
        try:
            wait_registered(settings, len(ACCOUNTS))
            yield stack
        finally:
            for worker in stack.workers:
                worker.stop()


@pytest.fixture(scope="module")
def control(media_stack: MediaStack) -> EmulatorControl:
    """This module's emulator (tests/e2e/conftest.py's autouse fixture calms it after each
    test, instead of starting the package's stack)."""
    return media_stack.control


@pytest.fixture(autouse=True)
def _graph_never_refuses_media(control: EmulatorControl) -> Iterator[None]:
    """Whatever a test sent, Graph's own media refusals were never reached."""
    yield
    refused = control.stats()["rejected_by_error"]
    assert {error: refused.get(error, 0) for error in GRAPH_MEDIA_REFUSALS} == dict.fromkeys(
        GRAPH_MEDIA_REFUSALS, 0
    )


def _key(label: str) -> str:
    return f"{label}:{uuid.uuid4().hex}"


def _media(kind: str, url: str, user: str = USERS[0]) -> dict[str, Any]:
    return make_intent(_key(kind), ACCOUNT_MEDIA, user, {"kind": kind, "url": url})


def _calls_with(control: EmulatorControl, url: str) -> list[dict[str, Any]]:
    """Accepted emulator calls whose attachment is `url`."""
    return [
        call
        for call in control.calls()["calls"]
        if (call["body"].get("message", {}).get("attachment") or {}).get("payload", {}).get("url")
        == url
    ]


def _texts_to(control: EmulatorControl, account: str, user: str) -> list[str]:
    """The texts the emulator accepted for one conversation, in order."""
    return [
        call["body"]["message"].get("text", "")
        for call in control.calls()["calls"]
        if call["ig_id"] == account and call["recipient_id"] == user and "message" in call["body"]
    ]


# --- media ------------------------------------------------------------------------------------


def test_an_image_at_8_mb_is_sent_and_one_byte_more_is_rejected_unsent(
    media_stack: MediaStack, control: EmulatorControl
) -> None:
    at_limit = control.media_url("png", 8 * MIB)
    over = control.media_url("png", 8 * MIB + 1)
    sent, refused = _media("image", at_limit), _media("image", over, USERS[1])
    outcomes = media_stack.run(sent, refused)
    assert outcomes[sent["idempotency_key"]].status == "sent"
    assert len(_calls_with(control, at_limit)) == 1
    outcome = outcomes[refused["idempotency_key"]]
    assert (outcome.status, outcome.reason) == (
        "rejected",
        "media_too_large: 8.1 MB > 8 MB for image",
    )
    assert _calls_with(control, over) == []
    # The worker asked the media host (a HEAD was enough), Graph was never asked.
    assert [r["method"] for r in control.media_requests(over)] == ["HEAD"]


def test_a_pdf_as_audio_is_rejected_naming_the_allowed_formats(
    media_stack: MediaStack, control: EmulatorControl
) -> None:
    url = control.media_url("pdf", 1000)
    intent = _media("audio", url, USERS[2])
    outcome = media_stack.run(intent)[intent["idempotency_key"]]
    assert outcome.status == "rejected"
    assert outcome.reason == "media_wrong_type: application/pdf for audio (aac, m4a, wav, mp4)"
    assert _calls_with(control, url) == []


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("169.254.169.254", "169.254.169.254 (cloud metadata)"),
        ("localhost", "localhost resolves to 127.0.0.1 (loopback)"),
    ],
)
def test_inward_addresses_are_refused_without_a_connection(
    media_stack: MediaStack, control: EmulatorControl, host: str, reason: str
) -> None:
    # The media host's own port: a connection that slipped through would reach it.
    url = control.media_url("png", 100, host=host)
    intent = _media("image", url, USERS[3])
    outcome = media_stack.run(intent)[intent["idempotency_key"]]
    assert (outcome.status, outcome.reason) == ("rejected", f"media_forbidden_address: {reason}")
    assert control.media_requests(url) == []
    assert _calls_with(control, url) == []


def test_a_real_png_behind_a_lying_content_type_is_read_and_sent(
    media_stack: MediaStack, control: EmulatorControl
) -> None:
    url = control.media_url("png", 5000, type="text/plain")
    intent = _media("image", url, USERS[4])
    outcome = media_stack.run(intent)[intent["idempotency_key"]]
    assert outcome.status == "sent"
    # The HEAD named the wrong type, so the worker read the first bytes: a PNG.
    seen = control.media_requests(url)
    assert [(r["method"], r["headers"].get("range")) for r in seen] == [
        ("HEAD", None),
        ("GET", "bytes=0-4095"),
    ]
    assert len(_calls_with(control, url)) == 1


# --- the bot disclosure -------------------------------------------------------------------------


def test_the_disclosure_survives_a_sigkill_while_the_message_hangs(
    media_stack: MediaStack, control: EmulatorControl
) -> None:
    user = USERS[20]  # nobody wrote to this user yet: the conversation starts
    intent = text_intent(_key("disclosed"), ACCOUNT_DISCLOSING, user, "Your order has shipped")
    # The account's next call (the disclosure) is answered at once; the one after (the
    # message) is delivered, then its answer hangs until the worker is gone.
    control.script(
        [
            ScriptedAnswer(code=None, hang_s=0.0, ig_id=ACCOUNT_DISCLOSING),
            ScriptedAnswer(code=None, hang_s=60.0, ig_id=ACCOUNT_DISCLOSING),
        ]
    )
    with media_stack.client() as client:
        client.enqueue(intent)
        wait_until(
            lambda: (
                _texts_to(control, ACCOUNT_DISCLOSING, user)
                == [DISCLOSURE, "Your order has shipped"]
            ),
            30,
            "the disclosure, then the message, to reach the emulator",
        )
        assert client.outcome(intent["idempotency_key"]) is None  # it hangs
        media_stack.workers[-1].kill()
        media_stack.start_worker()
        outcome = client.wait(intent["idempotency_key"], timeout=60)
    assert outcome.status == "sent"
    assert outcome.disclosure is not None
    assert outcome.disclosure.trigger == "conversation_start"
    texts = _texts_to(control, ACCOUNT_DISCLOSING, user)
    assert texts.count(DISCLOSURE) == 1
    assert texts[0] == DISCLOSURE
    messages = texts.count("Your order has shipped")
    assert messages >= 1
    # A second delivery of the message is the resend of an ambiguous send, and counted.
    # Typed Any: redis-py's stubs type its sync and async clients at once.
    r: Any = redis.Redis.from_url(media_stack.redis_url, decode_responses=True)
    try:
        ambiguous = int(r.hget(Keys(PREFIX).record(intent["idempotency_key"]), "ambiguous") or 0)
    finally:
        r.close()
    assert ambiguous == messages - 1


def test_a_human_agent_message_never_gets_the_disclosure(
    media_stack: MediaStack, control: EmulatorControl
) -> None:
    user = USERS[21]  # a fresh conversation: an automated message would be disclosed
    intent = text_intent(
        _key("human"),
        ACCOUNT_DISCLOSING,
        user,
        "Hi, Sam from the shop here.",
        tag="HUMAN_AGENT",
        automated=False,
    )
    outcome = media_stack.run(intent)[intent["idempotency_key"]]
    assert (outcome.status, outcome.disclosure) == ("sent", None)
    assert _texts_to(control, ACCOUNT_DISCLOSING, user) == ["Hi, Sam from the shop here."]
