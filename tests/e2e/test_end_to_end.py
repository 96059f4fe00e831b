"""Every kind end to end, and the main failure paths, against real processes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ig_outbound.emulator import EmulatorControl
from ig_outbound.harness.intents import make_intent
from ig_outbound.harness.wait import wait_until_async
from ig_outbound.producers.enqueue import OutboundClient, SyncOutboundClient
from ig_outbound.producers.errors import (
    IdempotencyConflictError,
    IntentError,
    UnknownAccountError,
    WindowClosedError,
)
from ig_outbound.producers.keys import ARQ_IN_PROGRESS_PREFIX
from tests.e2e.conftest import (
    ACCOUNT_A,
    ACCOUNT_B,
    ACCOUNT_BROKEN,
    ACCOUNT_THROTTLED,
    COMMENTS,
    USERS,
    Stack,
    calls_for,
)

pytestmark = pytest.mark.slow

MID = "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQx"
URL = "https://cdn.example.com/media/a.png"

KINDS: dict[str, dict[str, Any]] = {
    "text": {"kind": "text", "text": "Hello 👋 https://example.com"},
    "quick_replies": {
        "kind": "text",
        "text": "Pick one",
        "quick_replies": [{"title": "Yes", "payload": "Y"}, {"title": "No", "payload": "N"}],
    },
    "image_url": {"kind": "image", "url": URL},
    "image_attachment_id": {"kind": "image", "attachment_id": "1857777774821032"},
    "images": {
        "kind": "images",
        "images": [{"url": URL}, {"attachment_id": "1857777774821032"}, {"url": URL}],
    },
    "audio": {"kind": "audio", "url": "https://cdn.example.com/a.m4a"},
    "video": {"kind": "video", "url": "https://cdn.example.com/v.mp4"},
    "file": {"kind": "file", "url": "https://cdn.example.com/f.pdf"},
    "sticker": {"kind": "sticker"},
    "media_share": {"kind": "media_share", "post_id": "17895695668004550"},
    "generic_template": {
        "kind": "generic_template",
        "elements": [
            {
                "title": "Welcome!",
                "subtitle": "We have the right hat for everyone.",
                "image_url": URL,
                "default_action": {"type": "web_url", "url": "https://example.com"},
                "buttons": [
                    {"type": "web_url", "url": "https://example.com", "title": "View Website"},
                    {"type": "postback", "title": "Start Chatting", "payload": "START"},
                ],
            }
        ],
    },
    "button_template": {
        "kind": "button_template",
        "text": "What next?",
        "buttons": [{"type": "postback", "title": "Track", "payload": "TRACK"}],
    },
    "react": {"kind": "react", "message_id": MID, "reaction": "love"},
    "react_emoji": {"kind": "react", "message_id": MID, "reaction": "🎉"},
    "unreact": {"kind": "unreact", "message_id": MID},
    "typing_on": {"kind": "typing_on"},
    "typing_off": {"kind": "typing_off"},
    "mark_seen": {"kind": "mark_seen"},
}
SENDER_ACTIONS = {"react", "react_emoji", "unreact", "typing_on", "typing_off", "mark_seen"}


@pytest.mark.parametrize("name", sorted(KINDS))
async def test_every_kind_is_sent_once_with_the_documented_body(
    name: str, client: OutboundClient, control: EmulatorControl, new_key: Callable[[str], str]
) -> None:
    intent = make_intent(new_key(name), ACCOUNT_A, USERS[0], KINDS[name], metadata={"case": name})
    queued = await client.enqueue(intent)
    assert queued.status == "queued"
    outcome = await client.wait(intent["idempotency_key"], timeout=20)
    assert outcome.status == "sent", outcome
    assert outcome.metadata == {"case": name}
    assert outcome.attempts == 1
    calls = calls_for(control, intent)
    assert len(calls) == 1
    if name in SENDER_ACTIONS:
        assert outcome.message_id is None
    else:
        assert outcome.message_id == calls[0]["message_id"]
        assert outcome.message_id and outcome.message_id.startswith("aWdf")


@pytest.mark.parametrize(
    "extra",
    [
        {"reply_to": MID},
        {"tag": "HUMAN_AGENT", "automated": False},
    ],
    ids=["reply_to", "human_agent"],
)
async def test_message_options_reach_graph(
    extra: dict[str, Any], client: OutboundClient, control: EmulatorControl, new_key: Any
) -> None:
    intent = make_intent(new_key("opt"), ACCOUNT_A, USERS[0], KINDS["text"], **extra)
    await client.enqueue(intent)
    outcome = await client.wait(intent["idempotency_key"], timeout=20)
    assert outcome.status == "sent"
    (call,) = calls_for(control, intent)
    if "reply_to" in extra:
        assert call["body"]["reply_to"] == {"mid": MID}
    else:
        assert call["body"]["tag"] == "HUMAN_AGENT"
        assert call["body"]["messaging_type"] == "MESSAGE_TAG"


async def test_private_reply_reaches_the_commenter(
    client: OutboundClient, control: EmulatorControl, new_key: Any
) -> None:
    intent = make_intent(
        new_key("pr"), ACCOUNT_A, {"comment_id": COMMENTS[0]}, {"kind": "text", "text": "Thanks!"}
    )
    await client.enqueue(intent)
    outcome = await client.wait(intent["idempotency_key"], timeout=20)
    assert outcome.status == "sent"
    assert outcome.recipient_id == USERS[0]
    # Graph allows one private reply per comment: a second intent is refused at enqueue, and
    # never reaches Graph (which would answer 10900).
    second = make_intent(
        new_key("pr2"), ACCOUNT_A, {"comment_id": COMMENTS[0]}, {"kind": "text", "text": "Again"}
    )
    with pytest.raises(WindowClosedError) as refused:
        await client.enqueue(second)
    assert refused.value.reason == "private_reply_already_sent"
    assert control.stats()["rejected_by_error"].get("10900") is None


async def test_same_key_twice_is_a_duplicate_and_sends_once(
    client: OutboundClient, control: EmulatorControl, new_key: Any
) -> None:
    intent = make_intent(new_key("dup"), ACCOUNT_A, USERS[0], {"kind": "text", "text": "only once"})
    first = await client.enqueue(intent)
    second = await client.enqueue(intent)
    assert (first.status, second.status) == ("queued", "duplicate")
    await client.wait(intent["idempotency_key"], timeout=20)
    third = await client.enqueue(intent)
    assert third.status == "duplicate" and third.state == "sent"
    assert len(calls_for(control, intent)) == 1


async def test_same_key_with_other_content_is_a_conflict(
    client: OutboundClient, new_key: Any
) -> None:
    key = new_key("conflict")
    await client.enqueue(make_intent(key, ACCOUNT_A, USERS[0], {"kind": "text", "text": "one"}))
    with pytest.raises(IdempotencyConflictError):
        await client.enqueue(make_intent(key, ACCOUNT_A, USERS[0], {"kind": "text", "text": "two"}))


async def test_enqueue_many_is_one_batch_with_per_item_results(
    client: OutboundClient, new_key: Any
) -> None:
    good = [
        make_intent(new_key("b"), ACCOUNT_A, USERS[0], {"kind": "text", "text": f"n{i}"})
        for i in range(50)
    ]
    bad = make_intent(new_key("b"), ACCOUNT_A, USERS[0], {"kind": "text", "text": ""})
    results = await client.enqueue_many([*good[:25], bad, *good[25:], good[0]])
    assert [r.status for r in results] == ["queued"] * 25 + ["refused"] + ["queued"] * 25 + [
        "duplicate"
    ]
    assert isinstance(results[25].error, IntentError)
    outcomes = await client.wait_many([g["idempotency_key"] for g in good], timeout=30)
    assert len(outcomes) == 50
    assert {o.status for o in outcomes.values()} == {"sent"}


async def test_bad_intents_are_refused_at_enqueue_naming_every_problem(
    client: OutboundClient, new_key: Any
) -> None:
    bad = {
        "idempotency_key": new_key("bad"),
        "account_id": "not-a-number",
        "recipient": {"id": USERS[0], "comment_id": COMMENTS[0]},
        "content": {"kind": "text", "text": "x" * 1001},
    }
    with pytest.raises(IntentError) as info:
        await client.enqueue(bad)
    locs = {p.loc for p in info.value.problems}
    assert locs == {"account_id", "recipient", "content.text"}
    assert info.value.as_dict()["error"] == "invalid_intent"


async def test_unknown_account_is_refused_at_enqueue(client: OutboundClient, new_key: Any) -> None:
    intent = make_intent(new_key("acct"), "1234567", USERS[0], KINDS["text"])
    with pytest.raises(UnknownAccountError):
        await client.enqueue(intent)
    assert await client.state(intent["idempotency_key"]) is None


def test_sync_client_enqueues_and_waits(stack: Stack, new_key: Any) -> None:
    intent = make_intent(new_key("sync"), ACCOUNT_A, USERS[3], KINDS["sticker"])
    with SyncOutboundClient.connect(stack.redis_url, stack.settings) as sync:
        assert sync.enqueue(intent).status == "queued"
        assert sync.wait(intent["idempotency_key"], timeout=20).status == "sent"


async def test_5xx_then_success_retries_and_sends_once(
    client: OutboundClient, control: EmulatorControl, new_key: Any
) -> None:
    control.script([{"status": 500, "code": 2, "ig_id": ACCOUNT_B, "times": 2}])
    intent = make_intent(new_key("5xx"), ACCOUNT_B, USERS[0], KINDS["text"])
    await client.enqueue(intent)
    outcome = await client.wait(intent["idempotency_key"], timeout=20)
    assert outcome.status == "sent"
    assert outcome.attempts == 3
    assert len(calls_for(control, intent)) == 1


async def test_transient_errors_end_as_failed_when_the_budget_is_spent(
    client: OutboundClient, control: EmulatorControl, new_key: Any
) -> None:
    # Code 2 may be retried at most 3 times (the error table's cap).
    control.script([{"status": 500, "code": 2, "ig_id": ACCOUNT_B, "times": 10}])
    intent = make_intent(new_key("5xx-cap"), ACCOUNT_B, USERS[0], KINDS["text"])
    await client.enqueue(intent)
    outcome = await client.wait(intent["idempotency_key"], timeout=20)
    control.reset()
    assert outcome.status == "failed"
    assert outcome.reason == "service_unavailable"
    assert outcome.attempts == 4
    assert outcome.error is not None and outcome.error.code == 2


async def test_permanent_error_fails_without_retry(client: OutboundClient, new_key: Any) -> None:
    intent = make_intent(new_key("perm"), ACCOUNT_A, "99999999999", KINDS["text"])
    await client.enqueue(intent)
    outcome = await client.wait(intent["idempotency_key"], timeout=20)
    assert outcome.status == "failed"
    assert outcome.reason == "no_matching_user"
    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.subcode) == (100, 2534014)
    assert outcome.error.error_class == "permanent"
    assert outcome.attempts == 1


async def test_outside_window_is_permanent(
    client: OutboundClient, control: EmulatorControl, new_key: Any
) -> None:
    control.script([{"status": 403, "code": 10, "subcode": 2534022, "ig_id": ACCOUNT_B}])
    intent = make_intent(new_key("window"), ACCOUNT_B, USERS[0], KINDS["text"])
    await client.enqueue(intent)
    outcome = await client.wait(intent["idempotency_key"], timeout=20)
    assert (outcome.status, outcome.reason) == ("failed", "outside_window")


async def test_throttle_pauses_the_account_fleet_wide_then_sends(
    client: OutboundClient, control: EmulatorControl, raw_redis: Any, stack: Stack,
    new_key: Any,
) -> None:  # fmt: skip
    # Graph's throttle answer says "regain access in 1 minute" (X-Business-Use-Case-Usage).
    control.script([{"status": 400, "code": 4, "ig_id": ACCOUNT_THROTTLED}])
    first = make_intent(new_key("throttle"), ACCOUNT_THROTTLED, USERS[0], KINDS["text"])
    await client.enqueue(first)
    pause_key = stack.keys.pause(ACCOUNT_THROTTLED)
    await wait_until_async(lambda: raw_redis.pttl(pause_key) > 0, 10, "the account's pause", 0.02)
    assert 55_000 < raw_redis.pttl(pause_key) <= 60_000
    # While paused, nothing of this account is sent; other accounts go on.
    second = make_intent(new_key("throttle"), ACCOUNT_THROTTLED, USERS[0], KINDS["sticker"])
    other = make_intent(new_key("other"), ACCOUNT_B, USERS[0], KINDS["sticker"])
    await client.enqueue(second)
    await client.enqueue(other)
    assert (await client.wait(other["idempotency_key"], timeout=20)).status == "sent"
    # The proof the pause held: the throttled run ended by deferring its job past most of
    # the pause (a send would have ended it), and the next intent waits parked behind it.
    await wait_until_async(
        lambda: _deferred_past(raw_redis, stack, [first, second], seconds=30),
        10,
        "both intents of the paused account to be deferred past the next 30 s",
        0.02,
    )
    assert calls_for(control, first) == [] and calls_for(control, second) == []
    assert await client.outcome(first["idempotency_key"]) is None
    # End the pause early (as if the minute had passed) and let deferred jobs run now
    # (score 1, not 0: ARQ skips a job whose score is falsy).
    raw_redis.delete(pause_key)
    for intent in (first, second):
        raw_redis.zadd(stack.keys.queue, {stack.keys.job_id(intent["idempotency_key"]): 1})
    one = await client.wait(first["idempotency_key"], timeout=20)
    two = await client.wait(second["idempotency_key"], timeout=20)
    assert (one.status, two.status) == ("sent", "sent")
    assert (one.attempts, two.attempts) == (2, 1)
    assert len(calls_for(control, first)) == 1


def _deferred_past(r: Any, stack: Stack, intents: list[dict[str, Any]], seconds: float) -> bool:
    """Every intent's job waits in the queue (not running: ARQ sets a run's new score when
    it ends) to run more than `seconds` from now."""
    horizon_ms = (time.time() + seconds) * 1000
    for intent in intents:
        job_id = stack.keys.job_id(intent["idempotency_key"])
        score = r.zscore(stack.keys.queue, job_id)
        if score is None or score < horizon_ms or r.exists(ARQ_IN_PROGRESS_PREFIX + job_id):
            return False
    return True


async def test_account_problem_keeps_intents_waiting_until_their_deadline(
    client: OutboundClient, control: EmulatorControl, new_key: Any
) -> None:
    control.script([{"status": 400, "code": 190, "ig_id": ACCOUNT_BROKEN, "times": 1000}])
    deadline = datetime.now(UTC) + timedelta(seconds=3)
    intent = make_intent(
        new_key("token"), ACCOUNT_BROKEN, USERS[0], KINDS["text"], not_after=deadline.isoformat()
    )
    await client.enqueue(intent)
    outcome = await client.wait(intent["idempotency_key"], timeout=20)
    control.reset()
    assert outcome.status == "expired"
    assert outcome.finished_at >= deadline


async def test_not_before_defers_the_send(
    client: OutboundClient, control: EmulatorControl, new_key: Any
) -> None:
    at = datetime.now(UTC) + timedelta(seconds=1.5)
    intent = make_intent(
        new_key("later"), ACCOUNT_A, USERS[0], KINDS["sticker"], not_before=at.isoformat()
    )
    await client.enqueue(intent)
    outcome = await client.wait(intent["idempotency_key"], timeout=20)
    assert outcome.status == "sent"
    (call,) = calls_for(control, intent)
    assert call["arrived_at"] >= at.timestamp()


async def test_an_intent_past_its_deadline_expires_without_a_call(
    client: OutboundClient, control: EmulatorControl, new_key: Any
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    intent = make_intent(
        new_key("late"), ACCOUNT_A, USERS[5], KINDS["text"], not_after=before.isoformat()
    )
    await client.enqueue(intent)
    outcome = await client.wait(intent["idempotency_key"], timeout=20)
    assert (outcome.status, outcome.reason) == ("expired", "deadline_passed")
    assert calls_for(control, intent) == []


async def test_ambiguous_timeout_is_resent_and_counted(
    client: OutboundClient, control: EmulatorControl, raw_redis: Any, stack: Stack,
    new_key: Any,
) -> None:  # fmt: skip
    before = int(raw_redis.hget(stack.keys.counters, "ambiguous_sends") or 0)
    # Delivered, then the answer hangs past the worker's 1 s read timeout.
    control.script([{"status": 200, "code": None, "hang_s": 2.0, "ig_id": ACCOUNT_B}])
    intent = make_intent(new_key("ambiguous"), ACCOUNT_B, USERS[0], KINDS["text"])
    await client.enqueue(intent)
    outcome = await client.wait(intent["idempotency_key"], timeout=20)
    assert outcome.status == "sent"
    after = int(raw_redis.hget(stack.keys.counters, "ambiguous_sends") or 0)
    assert after - before == 1
    record = raw_redis.hgetall(stack.keys.record(intent["idempotency_key"]))
    assert record["ambiguous"] == "1"
    # The doubled delivery is exactly the counted ambiguous resend.
    assert len(calls_for(control, intent)) == 2


def _raw_job(stack: Stack, r: Any, job_id: str, payload: str) -> None:
    r.set(f"arq:job:{job_id}", payload, px=3_600_000)
    r.zadd(stack.keys.queue, {job_id: int(time.time() * 1000)})


async def _parked(client: OutboundClient, stack: Stack, key: str, user: str) -> str:
    """Enqueue an intent whose own job waits an hour; a job planted under its job id (the
    only way a bad job can end an intent) runs instead."""
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    await client.enqueue(make_intent(key, ACCOUNT_A, user, KINDS["text"], not_before=later))
    return stack.keys.job_id(key)


async def test_bad_jobs_from_raw_redis_end_rejected_and_the_worker_lives_on(
    client: OutboundClient, raw_redis: Any, stack: Stack, new_key: Any
) -> None:
    key = new_key("raw")
    bad_intent = {
        "idempotency_key": key,
        "account_id": ACCOUNT_A,
        "recipient": {},
        "content": {"kind": "text", "text": "x" * 1001, "extra": 1},
    }
    job: dict[str, Any] = {"t": None, "f": "ig_outbound.send", "a": [bad_intent], "k": {}, "et": 0}
    _raw_job(stack, raw_redis, await _parked(client, stack, key, USERS[31]), json.dumps(job))
    unkeyed: dict[str, Any] = {
        "t": None,
        "f": "ig_outbound.send",
        "a": [[1, 2, 3]],
        "k": {},
        "et": 0,
    }
    dlq_before = raw_redis.xlen(stack.keys.dead_letters)
    _raw_job(stack, raw_redis, "raw-2", json.dumps(unkeyed))
    two_args: dict[str, Any] = {
        "t": None,
        "f": "ig_outbound.send",
        "a": [1, 2],
        "k": {"x": 1},
        "et": 0,
    }
    _raw_job(stack, raw_redis, "raw-3", json.dumps(two_args))

    _raw_job(stack, raw_redis, "raw-4", "{not json")
    unknown_key = new_key("unknown-fn")
    good_intent = make_intent(unknown_key, ACCOUNT_A, USERS[0], KINDS["text"])
    unknown_fn: dict[str, Any] = {"t": None, "f": "nope", "a": [good_intent], "k": {}, "et": 0}
    job_id = await _parked(client, stack, unknown_key, USERS[32])
    _raw_job(stack, raw_redis, job_id, json.dumps(unknown_fn))
    _raw_job(stack, raw_redis, "raw-6", json.dumps({"f": "ig_outbound.send", "a": 3}))

    outcome = await client.wait(key, timeout=20)
    assert outcome.status == "rejected"
    assert outcome.reason == "invalid_intent"
    locs = {r["loc"] for r in outcome.reasons}
    assert {"recipient", "content.text", "content.extra"} <= locs
    unknown = await client.wait(unknown_key, timeout=20)
    assert (unknown.status, unknown.reason) == ("rejected", "bad_job")
    assert "unknown job name 'nope'" in unknown.reasons[0]["msg"]
    # Keyless garbage (list arg, two args, not JSON, wrong shape) goes to the dead letters.
    await wait_until_async(
        lambda: raw_redis.xlen(stack.keys.dead_letters) >= dlq_before + 6,
        10,
        "the bad jobs to be dead-lettered",
    )
    # Still alive and still sending.
    assert stack.worker.alive()
    ok = make_intent(new_key("after-raw"), ACCOUNT_A, USERS[0], KINDS["text"])
    await client.enqueue(ok)
    assert (await client.wait(ok["idempotency_key"], timeout=20)).status == "sent"


async def test_outcomes_are_published_once_on_the_stream(
    client: OutboundClient, raw_redis: Any, stack: Stack, new_key: Any
) -> None:
    intent = make_intent(new_key("stream"), ACCOUNT_A, USERS[0], KINDS["text"])
    await client.enqueue(intent)
    await client.wait(intent["idempotency_key"], timeout=20)
    entries = raw_redis.xrange(stack.keys.outcomes)
    mine = [e for _, e in entries if e["key"] == intent["idempotency_key"]]
    assert len(mine) == 1
    assert json.loads(mine[0]["outcome"])["status"] == "sent"


async def test_a_later_intent_expires_on_time_behind_a_stuck_conversation(
    client: OutboundClient, control: EmulatorControl, new_key: Any
) -> None:
    # The account's token is refused (190): the head waits (paused) until its deadline.
    control.script([{"status": 400, "code": 190, "ig_id": ACCOUNT_BROKEN, "times": 1000}])
    now = datetime.now(UTC)
    head = make_intent(
        new_key("stuck-head"),
        ACCOUNT_BROKEN,
        USERS[20],
        KINDS["text"],
        not_after=(now + timedelta(seconds=8)).isoformat(),
    )
    later_deadline = now + timedelta(seconds=2)
    later = make_intent(
        new_key("stuck-later"),
        ACCOUNT_BROKEN,
        USERS[20],
        KINDS["sticker"],
        not_after=later_deadline.isoformat(),
    )
    results = await client.enqueue_many([head, later])
    assert [r.status for r in results] == ["queued", "queued"]
    expired = await client.wait(later["idempotency_key"], timeout=20)
    # It ended at its own deadline, while the earlier intent was still waiting.
    assert expired.status == "expired"
    assert expired.finished_at >= later_deadline
    assert await client.outcome(head["idempotency_key"]) is None
    first = await client.wait(head["idempotency_key"], timeout=20)
    control.reset()
    assert first.status == "expired"
    assert first.finished_at > expired.finished_at
