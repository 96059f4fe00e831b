"""Every branch of the send job's decision, in process: `send_intent` runs against a real
Redis (intents enqueued by the producer client, the real Lua journal) with Graph on an
`httpx.MockTransport`. Each test checks what the branch leaves behind: the job's return or
`arq.Retry`, the outcome and journal state, account pauses, and the requests Graph saw."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime

import httpx

from ig_outbound.producers.inbound import record_echo
from ig_outbound.producers.validation import parse_intent
from ig_outbound.worker.job import PARK_S
from ig_outbound.worker.payloads import build_body
from tests.worker.conftest import (
    ACCOUNT,
    ACCOUNT_PAUSE_S,
    THROTTLE_PAUSE_S,
    TOKEN,
    USER,
    JobBench,
    MakeBench,
    graph_error,
    in_seconds,
    ok,
)

MID = "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQx"


def _now_ms() -> int:
    return int(time.time() * 1000)


# --- success ---------------------------------------------------------------------------------


async def test_an_answered_send_is_sent_with_graphs_ids(bench: JobBench) -> None:
    """One POST with the intent's body and the account's token; the outcome carries Graph's ids."""
    intent = await bench.enqueue("ok")
    bench.graph.script(ok(MID))
    assert await bench.run("ok") == "sent"
    outcome = await bench.client.outcome("ok")
    assert outcome is not None
    assert (outcome.status, outcome.message_id, outcome.recipient_id) == ("sent", MID, USER)
    assert outcome.attempts == 1
    assert await bench.client.state("ok") == "sent"
    (request,) = bench.graph.requests
    assert request.url.path == f"/v23.0/{ACCOUNT}/messages"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert json.loads(request.content) == build_body(parse_intent(intent))
    # The finish script ended the ARQ job too (ARQ's own finish is then skipped).
    keys = bench.keys
    assert await bench.redis.exists(keys.arq_job("ok"), keys.arq_retry("ok")) == 0
    assert await bench.redis.exists(keys.arq_in_progress("ok")) == 0
    assert await bench.redis.zscore(keys.queue, keys.job_id("ok")) is None
    assert bench.services.retired == {keys.job_id("ok")}


# --- throttled -------------------------------------------------------------------------------


async def test_a_throttle_with_regain_time_pauses_the_account_that_long(bench: JobBench) -> None:
    """Meta's `estimated_time_to_regain_access` (minutes) sets the pause and the wait; the
    intent waits without spending an attempt of its budget."""
    await bench.enqueue("thr")
    usage = {ACCOUNT: [{"type": "instagram", "call_count": 100, "total_cputime": 20,
                        "total_time": 20, "estimated_time_to_regain_access": 2}]}  # fmt: skip
    headers = {"X-Business-Use-Case-Usage": json.dumps(usage)}
    bench.graph.script(graph_error(400, 613, 2534040, headers))
    retry = await bench.retry("thr")
    assert retry.defer_score == 120_000
    assert 115_000 < await bench.pause_left_ms() <= 120_000
    record = await bench.record("thr")
    assert (record.state, record.failures) == ("retrying", 0)
    assert await bench.client.outcome("thr") is None
    assert len(bench.graph.requests) == 1


async def test_a_throttle_without_regain_time_pauses_for_the_setting(bench: JobBench) -> None:
    """No usage header: the fallback pause from the settings, and no attempt spent."""
    await bench.enqueue("thr4")
    bench.graph.script(graph_error(400, 4))
    retry = await bench.retry("thr4")
    assert retry.defer_score == THROTTLE_PAUSE_S * 1000
    assert THROTTLE_PAUSE_S * 1000 - 5_000 < await bench.pause_left_ms() <= THROTTLE_PAUSE_S * 1000
    record = await bench.record("thr4")
    assert (record.state, record.failures) == ("retrying", 0)
    assert len(bench.graph.requests) == 1


# --- transient -------------------------------------------------------------------------------


async def test_a_transient_error_is_retried_after_a_backoff_and_counted(bench: JobBench) -> None:
    """A 503 code 2: the lease is released, one failure counted, re-run after the first
    backoff step (full jitter up to `backoff_base_s`)."""
    await bench.enqueue("tr")
    bench.graph.script(graph_error(503, 2))
    retry = await bench.retry("tr")
    base_ms = bench.services.settings.retry.backoff_base_s * 1000
    assert retry.defer_score is not None and 50 <= retry.defer_score <= base_ms
    record = await bench.record("tr")
    assert (record.state, record.failures, record.attempts) == ("retrying", 1, 1)
    assert await bench.client.outcome("tr") is None
    assert len(bench.graph.requests) == 1


async def test_a_transient_error_fails_the_intent_when_the_budget_is_spent(
    make_bench: MakeBench,
) -> None:
    """With `max_attempts` 2 the second transient failure ends the intent `failed`."""
    bench = await make_bench(retry={"max_attempts": 2})
    await bench.enqueue("tr2")
    bench.graph.script(graph_error(503, 2), graph_error(503, 2))
    await bench.retry("tr2")
    assert await bench.run("tr2", job_try=2) == "failed"
    outcome = await bench.client.outcome("tr2")
    assert outcome is not None and outcome.error is not None
    assert (outcome.status, outcome.reason, outcome.attempts) == (
        "failed",
        "service_unavailable",
        2,
    )
    assert (outcome.error.http_status, outcome.error.code) == (503, 2)
    assert [d["key"] for d in await bench.dead_letters()] == ["tr2"]
    assert len(bench.graph.requests) == 2


async def test_an_error_transient_only_once_fails_on_its_second_occurrence(
    bench: JobBench,
) -> None:
    """A row capped at one transient occurrence (media fetch) fails although budget is left."""
    await bench.enqueue("once")
    bench.graph.script(graph_error(400, 100, 2018008), graph_error(400, 100, 2018008))
    await bench.retry("once")
    assert await bench.run("once", job_try=2) == "failed"
    outcome = await bench.client.outcome("once")
    assert outcome is not None and outcome.reason == "media_fetch_failed"
    assert len(bench.graph.requests) == 2


# --- permanent -------------------------------------------------------------------------------


async def test_a_permanent_error_fails_the_intent_into_the_dead_letters(bench: JobBench) -> None:
    """400 code 100/2534014: `failed` at once with Graph's error, dead-lettered, no retry."""
    await bench.enqueue("perm")
    bench.graph.script(graph_error(400, 100, 2534014))
    assert await bench.run("perm") == "failed"
    outcome = await bench.client.outcome("perm")
    assert outcome is not None and outcome.error is not None
    assert (outcome.status, outcome.reason) == ("failed", "no_matching_user")
    assert (outcome.error.code, outcome.error.subcode, outcome.error.error_class) == (
        100,
        2534014,
        "permanent",
    )
    assert await bench.client.state("perm") == "failed"
    (dead,) = await bench.dead_letters()
    assert (dead["key"], dead["status"]) == ("perm", "failed")
    assert json.loads(dead["intent"])["idempotency_key"] == "perm"
    assert len(bench.graph.requests) == 1


# --- account ---------------------------------------------------------------------------------


async def test_an_account_problem_pauses_the_account_and_the_intent_waits(
    bench: JobBench,
) -> None:
    """Code 190 (token): the account is paused for `account_pause_s`, the job re-runs after
    it, and the intent keeps waiting (no outcome, no attempt spent)."""
    await bench.enqueue("acct")
    bench.graph.script(graph_error(400, 190))
    retry = await bench.retry("acct")
    assert retry.defer_score == ACCOUNT_PAUSE_S * 1000
    assert ACCOUNT_PAUSE_S * 1000 - 5_000 < await bench.pause_left_ms() <= ACCOUNT_PAUSE_S * 1000
    record = await bench.record("acct")
    assert (record.state, record.failures) == ("retrying", 0)
    assert await bench.client.outcome("acct") is None
    assert len(bench.graph.requests) == 1


# --- ambiguous: this run's request left, no answer came ------------------------------------


async def test_an_unanswered_send_under_fail_ends_unknown(make_bench: MakeBench) -> None:
    """Policy `fail`: a read timeout ends the intent `unknown` (dead-lettered), never resent."""
    bench = await make_bench(ambiguous_policy="fail")
    await bench.enqueue("amb-f")
    bench.graph.script(httpx.ReadTimeout)
    assert await bench.run("amb-f") == "unknown"
    outcome = await bench.client.outcome("amb-f")
    assert outcome is not None and outcome.error is not None
    assert (outcome.status, outcome.reason) == ("unknown", "ambiguous_send")
    assert (outcome.error.error_class, outcome.error.message) == ("transient", "read_timeout")
    assert [d["status"] for d in await bench.dead_letters()] == ["unknown"]
    assert len(bench.graph.requests) == 1


async def test_an_unanswered_send_under_resend_is_counted_and_sent_again(
    bench: JobBench,
) -> None:
    """Policy `resend`: counted as an ambiguous send (record and fleet counter), retried as a
    transient failure, and the next run sends it again."""
    await bench.enqueue("amb-r")
    bench.graph.script(httpx.ReadTimeout, ok(MID))
    retry = await bench.retry("amb-r")
    assert retry.defer_score is not None and retry.defer_score > 0
    record = await bench.record("amb-r")
    assert (record.state, record.ambiguous, record.failures) == ("retrying", 1, 1)
    assert await bench.fleet_ambiguous_sends() == 1
    assert await bench.run("amb-r", job_try=2) == "sent"
    outcome = await bench.client.outcome("amb-r")
    assert outcome is not None and (outcome.status, outcome.attempts) == ("sent", 2)
    assert len(bench.graph.requests) == 2


async def test_an_unanswered_send_under_reconcile_is_settled_by_its_echo(
    make_bench: MakeBench,
) -> None:
    """Policy `reconcile`: the record goes `unconfirmed` and the job re-runs; the echo of the
    message settles it `sent` (reason `reconciled`, the echo's mid) without a second POST."""
    bench = await make_bench(ambiguous_policy="reconcile")
    await bench.enqueue("amb-e")
    bench.graph.script(httpx.ReadTimeout)
    retry = await bench.retry("amb-e")
    assert retry.defer_score == 1000
    assert await bench.client.state("amb-e") == "unconfirmed"
    await record_echo(
        bench.redis, bench.keys, account_id=ACCOUNT, recipient_id=USER, mid="echo-mid",
        timestamp_ms=_now_ms(), message={"text": "Your order has shipped"},
    )  # fmt: skip
    assert await bench.run("amb-e", job_try=2) == "sent"
    outcome = await bench.client.outcome("amb-e")
    assert outcome is not None
    assert (outcome.status, outcome.reason, outcome.message_id) == (
        "sent",
        "reconciled",
        "echo-mid",
    )
    assert await bench.fleet_ambiguous_sends() == 0
    assert len(bench.graph.requests) == 1


async def test_an_unanswered_send_under_reconcile_is_resent_after_the_grace_period(
    make_bench: MakeBench,
) -> None:
    """Policy `reconcile` without an echo: runs within the grace period only wait (no POST);
    the first run after it resends, counted as an ambiguous send."""
    bench = await make_bench(ambiguous_policy="reconcile", reconcile_grace_s=0.3)
    await bench.enqueue("amb-g")
    bench.graph.script(httpx.ReadTimeout, ok(MID))
    await bench.retry("amb-g")
    waiting = await bench.retry("amb-g", job_try=2)
    assert waiting.defer_score is not None and 0 < waiting.defer_score <= 300
    assert len(bench.graph.requests) == 1
    await asyncio.sleep(waiting.defer_score / 1000 + 0.05)  # as ARQ would: run it when due
    assert await bench.run("amb-g", job_try=3) == "sent"
    assert (await bench.record("amb-g")).ambiguous == 1
    assert await bench.fleet_ambiguous_sends() == 1
    assert len(bench.graph.requests) == 2


# --- ambiguous: an earlier run's send was never settled (it died mid-send) -------------------


async def _send_started_by_a_dead_run(bench: JobBench, key: str) -> None:
    """An earlier run began the send and vanished: its lease (of 0 s) has lapsed."""
    begin = await bench.services.journal.begin(key, "dead#1", 0, park_until_ms=_now_ms())
    assert begin.verdict == "go"


async def test_a_dead_runs_send_under_fail_ends_unknown_without_a_request(
    make_bench: MakeBench,
) -> None:
    """Policy `fail` at the start of a run: `unknown`, counting the earlier attempt."""
    bench = await make_bench(ambiguous_policy="fail")
    await bench.enqueue("dead-f")
    await _send_started_by_a_dead_run(bench, "dead-f")
    assert await bench.run("dead-f", job_try=2) == "unknown"
    outcome = await bench.client.outcome("dead-f")
    assert outcome is not None
    assert (outcome.status, outcome.reason, outcome.attempts) == ("unknown", "ambiguous_send", 1)
    assert bench.graph.requests == []


async def test_a_dead_runs_send_under_resend_is_sent_again_and_counted(bench: JobBench) -> None:
    """Policy `resend` at the start of a run: this run takes the send over, counted."""
    await bench.enqueue("dead-r")
    await _send_started_by_a_dead_run(bench, "dead-r")
    bench.graph.script(ok(MID))
    assert await bench.run("dead-r", job_try=2) == "sent"
    outcome = await bench.client.outcome("dead-r")
    assert outcome is not None and (outcome.status, outcome.attempts) == ("sent", 2)
    assert (await bench.record("dead-r")).ambiguous == 1
    assert await bench.fleet_ambiguous_sends() == 1
    assert len(bench.graph.requests) == 1


# --- before sending --------------------------------------------------------------------------


async def test_an_intent_past_its_deadline_expires_without_a_request(bench: JobBench) -> None:
    """`not_after` passed: `expired` (dead-lettered), Graph never called."""
    await bench.enqueue("late", not_after=in_seconds(-1))
    assert await bench.run("late") == "expired"
    outcome = await bench.client.outcome("late")
    assert outcome is not None and (outcome.status, outcome.reason) == (
        "expired",
        "deadline_passed",
    )
    assert [d["key"] for d in await bench.dead_letters()] == ["late"]
    assert bench.graph.requests == []


async def test_an_intent_before_its_not_before_is_deferred_to_it(bench: JobBench) -> None:
    """`not_before` a minute away: the job re-runs then; nothing sent, nothing recorded."""
    await bench.enqueue("early", not_before=in_seconds(60))
    retry = await bench.retry("early")
    assert retry.defer_score is not None and 59_000 < retry.defer_score <= 60_000
    assert await bench.client.state("early") == "queued"
    assert bench.graph.requests == []


async def test_a_later_intent_run_out_of_turn_is_parked_until_the_head_ends(
    bench: JobBench,
) -> None:
    """The second intent of a conversation run while the first has no outcome: the journal
    parks its job (queue score about an hour away) and the run ends with `Retry(defer=None)`
    so ARQ leaves that score alone; nothing is sent. The head's end then queues it now."""
    await bench.enqueue("head")
    await bench.enqueue("next")
    before_ms = _now_ms()
    retry = await bench.retry("next")
    assert retry.defer_score is None
    parked = await bench.queue_score_ms("next")
    assert parked is not None and parked >= before_ms + PARK_S * 1000
    assert parked < datetime.now(UTC).timestamp() * 1000 + PARK_S * 1000 + 1_000
    assert await bench.client.state("next") == "queued"
    assert bench.graph.requests == []
    bench.graph.script(ok(MID))
    assert await bench.run("head") == "sent"
    woken = await bench.queue_score_ms("next")
    assert woken is not None and woken <= _now_ms()


async def test_auto_resends_an_unanswered_send_while_no_gateway_feeds_echoes(
    bench: JobBench,
) -> None:
    """Policy `auto` (the default) without a live gateway: no echoes will come, resend."""
    await bench.enqueue("auto-r")
    bench.graph.script(httpx.ReadTimeout)
    await bench.retry("auto-r")
    assert (await bench.record("auto-r")).state == "retrying"


async def test_auto_reconciles_an_unanswered_send_while_a_gateway_feeds_echoes(
    bench: JobBench,
) -> None:
    """Policy `auto` with a live gateway: wait for the echo instead of resending."""
    await bench.redis.set(bench.keys.gateway_alive, "1", px=30_000)
    await bench.enqueue("auto-c")
    bench.graph.script(httpx.ReadTimeout)
    await bench.retry("auto-c")
    record = await bench.record("auto-c")
    assert (record.state, record.ambiguous) == ("unconfirmed", 0)
