"""Meta's messaging windows, checked at enqueue and again just before the send, on Redis's
clock, at the boundary (± 1 s, no safety margin). In process: real Redis, real scripts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ig_outbound.producers.errors import WindowClosedError
from ig_outbound.producers.redis_util import resolve
from tests.worker.conftest import ACCOUNT, USER, JobBench, ok

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


async def _now_ms(bench: JobBench) -> int:
    seconds, micros = await bench.redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def _user_wrote(bench: JobBench, ago_ms: int, user: str = USER) -> None:
    when = await _now_ms(bench) - ago_ms
    await bench.redis.set(bench.keys.user_last_message(ACCOUNT, user), when)


async def _comment(bench: JobBench, comment: str, ago_ms: int, replied: bool = False) -> None:
    fields = {"account": ACCOUNT, "user": USER, "created_ms": await _now_ms(bench) - ago_ms}
    if replied:
        fields["replied"] = "1"
    await resolve(bench.redis.hset(bench.keys.comment(comment), mapping=fields))


@pytest.fixture
async def strict(bench: JobBench) -> JobBench:
    """The boundary exactly: no safety margin, unknown windows refused."""
    await resolve(
        bench.redis.hset(bench.keys.policy, mapping={"margin_ms": 0, "unknown": "refuse"})
    )
    return bench


async def _refusal(bench: JobBench, key: str, **fields: object) -> str:
    with pytest.raises(WindowClosedError) as info:
        await bench.enqueue(key, **fields)
    assert not await bench.redis.exists(bench.keys.record(key))  # nothing was written
    return info.value.reason


async def test_an_automated_message_goes_until_24_hours_after_the_users_last_message(
    strict: JobBench,
) -> None:
    await _user_wrote(strict, DAY_MS - 1000)
    await strict.enqueue("in-time")
    await _user_wrote(strict, DAY_MS + 1000)
    assert await _refusal(strict, "too-late") == "window_closed"


async def test_human_agent_goes_until_7_days(strict: JobBench) -> None:
    human = {"tag": "HUMAN_AGENT", "automated": False}
    await _user_wrote(strict, 7 * DAY_MS - 1000)
    await strict.enqueue("human-in-time", **human)
    await _user_wrote(strict, 7 * DAY_MS + 1000)
    assert await _refusal(strict, "human-too-late", **human) == "window_closed"


async def test_a_private_reply_goes_within_7_days_of_its_comment_and_once(
    strict: JobBench,
) -> None:
    reply = {"recipient": {"comment_id": "178"}}
    await _comment(strict, "178", 7 * DAY_MS + 1000)
    assert await _refusal(strict, "old-comment", **reply) == "window_closed"
    await _comment(strict, "178", 7 * DAY_MS - 1000)
    await strict.enqueue("reply-1", **reply)
    strict.graph.script(ok())
    assert await strict.run("reply-1") == "sent"
    assert await _refusal(strict, "reply-2", **reply) == "private_reply_already_sent"


async def test_a_second_private_reply_queued_before_the_first_was_sent_never_goes(
    strict: JobBench,
) -> None:
    reply = {"recipient": {"comment_id": "179"}}
    await _comment(strict, "179", HOUR_MS)
    await strict.enqueue("first", **reply)
    await strict.enqueue("second", **reply)
    strict.graph.script(ok())
    assert await strict.run("first") == "sent"
    assert await strict.run("second") == "rejected"
    outcome = await strict.client.outcome("second")
    assert outcome is not None and outcome.reason == "private_reply_already_sent"
    assert len(strict.graph.requests) == 1


async def test_a_window_that_closes_while_the_intent_waits_ends_it_expired_unsent(
    strict: JobBench,
) -> None:
    await _user_wrote(strict, HOUR_MS)
    await strict.enqueue("waited")
    await _user_wrote(strict, DAY_MS + 1000)  # time passed (as far as the window goes)
    assert await strict.run("waited") == "expired"
    outcome = await strict.client.outcome("waited")
    assert outcome is not None and outcome.reason == "window_closed"
    assert strict.graph.requests == []


async def test_the_window_hint_counts_when_no_webhook_fact_does(strict: JobBench) -> None:
    now = await _now_ms(strict)
    assert await _refusal(strict, "no-facts") == "window_unknown"
    recent = {"window_hint": _iso(now - HOUR_MS)}
    await strict.enqueue("hinted", **recent)
    old = {"window_hint": _iso(now - DAY_MS - 1000)}
    assert await _refusal(strict, "hinted-late", **old) == "window_closed"
    # A webhook fact wins over the producer's hint.
    await _user_wrote(strict, DAY_MS + 1000)
    assert await _refusal(strict, "fact-wins", **recent) == "window_closed"


async def test_an_unknown_window_lets_graph_decide_by_default(bench: JobBench) -> None:
    await bench.enqueue("unknown-ok")
    bench.graph.script(ok())
    assert await bench.run("unknown-ok") == "sent"


async def test_the_safety_margin_closes_the_window_early(bench: JobBench) -> None:
    await resolve(bench.redis.hset(bench.keys.policy, mapping={"margin_ms": 60_000}))
    await _user_wrote(bench, DAY_MS - 30_000)  # 30 s left: inside the 60 s margin
    with pytest.raises(WindowClosedError):
        await bench.enqueue("in-margin")


async def test_a_sent_messages_mid_is_claimed_so_its_echo_settles_nothing_else(
    bench: JobBench,
) -> None:
    """While a gateway feeds echoes, a confirmed send claims its mid."""
    await bench.redis.set(bench.keys.gateway_alive, "1", px=30_000)
    await bench.enqueue("claims")
    bench.graph.script(ok("aWdfmid-claimed"))
    assert await bench.run("claims") == "sent"
    claims = await bench.redis.zrange(bench.keys.echo_claims(ACCOUNT, USER), 0, -1)
    assert claims == [b"aWdfmid-claimed"]


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()
