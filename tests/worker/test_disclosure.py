"""Bot disclosure: sent once per trigger, just before the automated message that needs it,
never for what a human wrote; a crash between the two never repeats or skips it. In process:
the real job and scripts, real Redis, Graph on a MockTransport."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from ig_outbound.producers.inbound import record_echo
from ig_outbound.producers.redis_util import resolve
from ig_outbound.worker.disclosure import DEFAULT_TEXTS
from ig_outbound.worker.settings import DisclosureRule, DisclosureSettings
from tests.worker.conftest import ACCOUNT, USER, JobBench, MakeBench, graph_error, ok

TEXT = "You are chatting with the Shop bot."
HOUR_MS = 3_600_000


@pytest.fixture
async def disclosing(make_bench: MakeBench) -> JobBench:
    rule = DisclosureRule(enabled=True, text=TEXT, lapse_hours=24)
    return await make_bench(disclosure=DisclosureSettings(default=rule))


def _texts(bench: JobBench) -> list[str]:
    texts = []
    for request in bench.graph.requests:
        body = json.loads(request.content)
        texts.append(body.get("message", {}).get("text") or body.get("sender_action", ""))
    return texts


async def test_the_first_automated_message_is_preceded_by_the_disclosure(
    disclosing: JobBench,
) -> None:
    await disclosing.enqueue("first")
    disclosing.graph.script(ok("mid-disclosure"), ok("mid-message"))
    assert await disclosing.run("first") == "sent"
    assert _texts(disclosing) == [TEXT, "Your order has shipped"]
    outcome = await disclosing.client.outcome("first")
    assert outcome is not None and outcome.disclosure is not None
    assert (outcome.disclosure.trigger, outcome.disclosure.message_id) == (
        "conversation_start",
        "mid-disclosure",
    )
    # Within the lapse, the next automated message goes alone.
    await disclosing.enqueue("second")
    disclosing.graph.script(ok("mid-2"))
    assert await disclosing.run("second") == "sent"
    assert _texts(disclosing)[2:] == ["Your order has shipped"]


async def test_after_a_long_lapse_the_disclosure_is_sent_again(disclosing: JobBench) -> None:
    await disclosing.enqueue("early")
    disclosing.graph.script(ok(), ok())
    await disclosing.run("early")
    state = disclosing.keys.disclosure(ACCOUNT, USER)
    last = int(await resolve(disclosing.redis.hget(state, "last_auto_ms")) or 0)
    await resolve(disclosing.redis.hset(state, "last_auto_ms", str(last - 25 * HOUR_MS)))
    await disclosing.enqueue("late")
    disclosing.graph.script(ok(), ok())
    await disclosing.run("late")
    outcome = await disclosing.client.outcome("late")
    assert outcome is not None and outcome.disclosure is not None
    assert outcome.disclosure.trigger == "lapse"


async def test_a_human_writing_in_the_instagram_app_triggers_it_again(
    disclosing: JobBench,
) -> None:
    await disclosing.redis.set(disclosing.keys.gateway_alive, "1", px=60_000)
    await disclosing.enqueue("before")
    disclosing.graph.script(ok("m-d"), ok("m-before"))
    await disclosing.run("before")
    # An echo no send of ours claims: someone answered by hand in the Instagram app.
    now_ms = int((await disclosing.redis.time())[0]) * 1000 + 1000
    await record_echo(
        disclosing.redis, disclosing.keys, account_id=ACCOUNT, recipient_id=USER,
        mid="m-human", timestamp_ms=now_ms, message={"text": "Hi, Anna here"},
    )  # fmt: skip
    # Our own messages' echoes are claimed: they are not a human's.
    for mid, text in (("m-d", TEXT), ("m-before", "Your order has shipped")):
        await record_echo(
            disclosing.redis, disclosing.keys, account_id=ACCOUNT, recipient_id=USER,
            mid=mid, timestamp_ms=now_ms, message={"text": text},
        )  # fmt: skip
    await disclosing.enqueue("after")
    disclosing.graph.script(ok(), ok())
    await disclosing.run("after")
    outcome = await disclosing.client.outcome("after")
    assert outcome is not None and outcome.disclosure is not None
    assert outcome.disclosure.trigger == "human_handover"


async def test_a_human_agent_message_never_triggers_it_but_counts_as_human(
    disclosing: JobBench,
) -> None:
    await disclosing.enqueue("auto-1")
    disclosing.graph.script(ok(), ok())
    await disclosing.run("auto-1")
    await disclosing.enqueue("human", tag="HUMAN_AGENT", automated=False)
    disclosing.graph.script(ok())
    await disclosing.run("human")
    assert _texts(disclosing)[2:] == ["Your order has shipped"]  # no disclosure before it
    await disclosing.enqueue("auto-2")
    disclosing.graph.script(ok(), ok())
    await disclosing.run("auto-2")
    outcome = await disclosing.client.outcome("auto-2")
    assert outcome is not None and outcome.disclosure is not None
    assert outcome.disclosure.trigger == "human_handover"


async def test_sender_actions_never_trigger_it(disclosing: JobBench) -> None:
    await disclosing.client.enqueue(
        {"idempotency_key": "typing", "account_id": ACCOUNT, "recipient": {"id": USER},
         "content": {"kind": "typing_on"}}
    )  # fmt: skip
    disclosing.graph.script(ok())
    await disclosing.run("typing")
    assert _texts(disclosing) == ["typing_on"]


async def test_a_crash_between_the_disclosure_and_the_message_repeats_neither(
    disclosing: JobBench,
) -> None:
    """Run 1 sends the disclosure, then dies mid-message (the task is cancelled, as a
    SIGKILL leaves it); run 2 sends the message only."""
    await disclosing.enqueue("crash")
    disclosing.graph.script(ok("m-d"), asyncio.CancelledError)
    with pytest.raises(asyncio.CancelledError):
        await disclosing.run("crash")
    # The lease of the interrupted message send lapses; the next run treats it as ambiguous
    # (policy resend here: it was never delivered) and sends the message.
    await resolve(disclosing.redis.hset(disclosing.keys.record("crash"), "lease_until", "0"))
    disclosing.graph.script(ok("m-message"))
    assert await disclosing.run("crash", job_try=2) == "sent"
    assert _texts(disclosing) == [TEXT, "Your order has shipped", "Your order has shipped"]
    outcome = await disclosing.client.outcome("crash")
    assert outcome is not None and outcome.disclosure is not None
    assert outcome.disclosure.message_id == "m-d"


async def test_a_retry_after_the_disclosure_does_not_send_it_again(disclosing: JobBench) -> None:
    await disclosing.enqueue("retry")
    disclosing.graph.script(ok("m-d"), graph_error(503, 2))
    await disclosing.retry("retry")
    disclosing.graph.script(ok("m-message"))
    assert await disclosing.run("retry", job_try=2) == "sent"
    assert _texts(disclosing) == [TEXT, "Your order has shipped", "Your order has shipped"]


async def test_a_disclosure_graph_refuses_fails_the_message_unsent(disclosing: JobBench) -> None:
    await disclosing.enqueue("refused")
    disclosing.graph.script(graph_error(400, 100, 2534014))
    assert await disclosing.run("refused") == "failed"
    outcome = await disclosing.client.outcome("refused")
    assert outcome is not None and outcome.reason == "disclosure_failed:no_matching_user"
    assert len(disclosing.graph.requests) == 1


async def test_a_private_reply_carries_the_disclosure_inline(disclosing: JobBench) -> None:
    await disclosing.enqueue("reply", recipient={"comment_id": "17900"})
    disclosing.graph.script(httpx.Response(200, json={"recipient_id": USER, "message_id": "m"}))
    assert await disclosing.run("reply") == "sent"
    assert _texts(disclosing) == [f"{TEXT}\n\nYour order has shipped"]
    outcome = await disclosing.client.outcome("reply")
    assert outcome is not None and outcome.disclosure is not None


async def test_accounts_without_disclosure_send_alone(bench: JobBench) -> None:
    await bench.enqueue("plain")
    bench.graph.script(ok())
    await bench.run("plain")
    assert _texts(bench) == ["Your order has shipped"]


def test_the_default_texts_are_the_seeds_sentences() -> None:
    assert DEFAULT_TEXTS["ko"] == "회원님은 자동 채팅 환경과 상호 작용하고 있습니다"
    assert DEFAULT_TEXTS["en"] == "You are interacting with an automated experience."
