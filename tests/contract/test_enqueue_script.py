"""The raw enqueue path refuses what the worker would refuse, before its first write.

Producers in other languages call the enqueue script directly, so the script is the last
line of defence: bad arguments, foreign keys, oversized or deeply nested intents, and JSON
that Redis's cjson reads but Python's json (the worker's parser) does not, are all refused
with nothing written. Real Redis, no worker.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ig_outbound.producers.intent import MAX_INTENT_BYTES
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.redis_util import resolve
from ig_outbound.producers.scripts import ENQUEUE

KEYS = Keys("raw")
ACCOUNT = "17841400000000001"
DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS


def _intent_json(key: str, **extra: Any) -> str:
    return json.dumps(
        {
            "idempotency_key": key,
            "account_id": ACCOUNT,
            "recipient": {"id": "1254477777772919"},
            "content": {"kind": "text", "text": "hi"},
            **extra,
        }
    )


def _keys(key: str, prefix: str = "raw") -> list[str]:
    k = Keys(prefix)
    return [k.record(key), k.arq_job(key), k.queue, k.accounts]


def _argv(intent: str | bytes, key: str, **over: Any) -> list[Any]:
    args = {
        "intent": intent, "key": key, "account": ACCOUNT, "prefix": "raw",
        "not_before": 0, "not_after": 0, "default_deadline": DAY_MS, "retention": WEEK_MS,
        "window_hint": 0,
    }  # fmt: skip
    args.update(over)
    return list(args.values())


async def _call(r: aioredis.Redis, keys: list[str], argv: list[Any]) -> list[str]:
    reply = await resolve(r.evalsha(await _sha(r), len(keys), *keys, *argv))
    return [x.decode() if isinstance(x, bytes) else str(x) for x in reply]


async def _sha(r: aioredis.Redis) -> str:
    return str(await resolve(r.script_load(ENQUEUE.source)))


@pytest.fixture
async def r(aredis: aioredis.Redis) -> aioredis.Redis:
    await resolve(aredis.sadd(KEYS.accounts, ACCOUNT))
    return aredis


async def _written(r: aioredis.Redis) -> list[bytes]:
    """Every key but the accounts set (which the fixture wrote) and the fleet's counters
    (every answer is counted, a refusal too)."""
    ignored = {KEYS.accounts.encode(), KEYS.counters.encode()}
    return sorted(k for k in await resolve(r.keys("*")) if k not in ignored)


async def test_every_answer_is_counted_for_the_fleet_metrics(r: aioredis.Redis) -> None:
    await _call(r, _keys("c1"), _argv(_intent_json("c1"), "c1"))
    await _call(r, _keys("c1"), _argv(_intent_json("c1"), "c1"))  # the same again
    await _call(r, _keys("c2"), _argv("{not json", "c2"))
    await _call(r, _keys("c3"), _argv(_intent_json("c3", account_id="777"), "c3", account="777"))
    counters = await resolve(r.hgetall(KEYS.counters))
    assert counters == {
        b"enqueued": b"1",
        b"refused:duplicate": b"1",
        b"refused:invalid": b"1",
        b"refused:unknown_account": b"1",
    }
    # A call whose prefix or keys are wrong counts nowhere: it names no fleet.
    await _call(r, [*_keys("c4")[:3], "raw:elsewhere"], _argv(_intent_json("c4"), "c4"))
    assert await resolve(r.hgetall(KEYS.counters)) == counters


async def test_a_good_call_is_queued(r: aioredis.Redis) -> None:
    reply = await _call(r, _keys("k1"), _argv(_intent_json("k1"), "k1"))
    assert reply == ["queued", KEYS.job_id("k1")]
    record = await resolve(r.hgetall(KEYS.record("k1")))
    assert int(record[b"deadline"]) - int(record[b"enqueued_ms"]) == DAY_MS
    assert 0 < await resolve(r.pttl(KEYS.record("k1"))) <= WEEK_MS


async def test_a_conversations_lifetime_grows_and_never_shrinks(r: aioredis.Redis) -> None:
    """Its first intent gives the conversation the retention; a later one with a longer
    retention lengthens it, one with a shorter retention leaves it (the earlier intent
    still needs it)."""
    conv = KEYS.conversation(ACCOUNT, "id:1254477777772919")
    assert (await _call(r, _keys("c1"), _argv(_intent_json("c1"), "c1")))[0] == "queued"
    assert WEEK_MS - 60_000 < await resolve(r.pttl(conv)) <= WEEK_MS
    longer = 2 * WEEK_MS
    assert (await _call(r, _keys("c2"), _argv(_intent_json("c2"), "c2", retention=longer)))[
        0
    ] == "queued"
    assert longer - 60_000 < await resolve(r.pttl(conv)) <= longer
    assert (await _call(r, _keys("c3"), _argv(_intent_json("c3"), "c3")))[0] == "queued"
    assert longer - 60_000 < await resolve(r.pttl(conv)) <= longer
    # Listed for the sweeper once, by its first intent, while it has pending ones.
    assert await resolve(r.zrange(KEYS.conversations, 0, -1)) == [conv.encode()]
    enqueued_ms = int(await resolve(r.hget(KEYS.record("c1"), "enqueued_ms")) or 0)
    assert await resolve(r.zscore(KEYS.conversations, conv)) == enqueued_ms


BAD_ARGUMENTS = {
    "run-at NaN": {"not_before": "nan"},
    "run-at inf": {"not_before": "inf"},
    "deadline not a number": {"not_after": "tomorrow"},
    "deadline fractional": {"not_after": "1.5"},
    "deadline negative": {"not_after": -5},
    "deadline absurd": {"not_after": 10**15},
    "default deadline 0": {"default_deadline": 0},
    "retention 0": {"retention": 0},
    "retention negative": {"retention": -1},
    "retention below the minimum": {"retention": 1000},
    "retention not a number": {"retention": "forever"},
    "key with a space": {"key": "k 1"},
    "account not digits": {"account": "acct"},
    "prefix with a colon": {"prefix": "raw:x"},
    "window hint not a number": {"window_hint": "yesterday"},
}


@pytest.mark.parametrize("over", BAD_ARGUMENTS.values(), ids=BAD_ARGUMENTS.keys())
async def test_bad_arguments_are_refused_before_any_write(
    r: aioredis.Redis, over: dict[str, Any]
) -> None:
    over = dict(over)
    key = str(over.pop("key", "k2"))
    reply = await _call(r, _keys(key), _argv(_intent_json(key), key, **over))
    assert reply[0] == "invalid", reply
    assert await _written(r) == []


@pytest.mark.parametrize("priority", ["urgent", "", 1, None, ["bulk"], {"lane": "bulk"}])
async def test_a_priority_other_than_interactive_or_bulk_is_refused_before_any_write(
    r: aioredis.Redis, priority: Any
) -> None:
    intent = _intent_json("p1", priority=priority)
    reply = await _call(r, _keys("p1"), _argv(intent, "p1"))
    if priority is None:  # JSON null decodes to cjson.null: not absent, and not a lane
        assert reply[:1] == ["invalid"] and reply[2] == "priority", reply
    else:
        assert reply == ["invalid", 'priority must be "interactive" or "bulk"', "priority"]
    assert await _written(r) == []


async def test_each_lane_reserves_its_own_slots(r: aioredis.Redis) -> None:
    """A bulk backlog's reservations never push an interactive intent back (and an intent
    without `priority` is interactive, as the model's default says)."""
    await resolve(r.hset(KEYS.rates, mapping={"light_interval_ms": "100", "light_burst": "1"}))
    for i in range(20):
        key = f"b{i}"
        intent = _intent_json(key, priority="bulk", recipient={"id": f"9{i:04d}"})
        assert (await _call(r, _keys(key), _argv(intent, key)))[0] == "queued"
    plain = _intent_json("i0", recipient={"id": "80000"})
    assert (await _call(r, _keys("i0"), _argv(plain, "i0")))[0] == "queued"
    tagged = _intent_json("i1", recipient={"id": "80001"}, priority="interactive")
    assert (await _call(r, _keys("i1"), _argv(tagged, "i1")))[0] == "queued"
    scores = dict(await resolve(r.zrange(KEYS.queue, 0, -1, withscores=True)))
    bulk = sorted(scores[KEYS.job_id(f"b{i}").encode()] for i in range(20))
    assert bulk[-1] - bulk[0] >= 1900  # 20 slots 100 ms apart in the bulk lane
    first, second = scores[KEYS.job_id("i0").encode()], scores[KEYS.job_id("i1").encode()]
    assert first <= bulk[1] and second - first == 100  # the interactive lane's own slots
    assert await resolve(r.exists(KEYS.rate_tat_bulk(ACCOUNT, "light"))) == 1


async def test_keys_that_are_not_the_intents_own_are_refused(r: aioredis.Redis) -> None:
    intent = _intent_json("k3")
    for keys in (
        _keys("other"),
        [*_keys("k3")[:3], "raw:elsewhere"],
        _keys("k3", prefix="other"),
        _keys("k3")[:3],
    ):
        reply = await _call(r, keys, _argv(intent, "k3"))
        assert (reply[0], reply[-1]) in {("invalid", "keys"), ("invalid", "call")}, reply
    assert await _written(r) == []


async def test_dates_that_cannot_work_are_refused(r: aioredis.Redis) -> None:
    now_ms = int((await resolve(r.time()))[0]) * 1000
    cases = {
        "not_before after the default deadline": {"not_before": now_ms + 2 * DAY_MS},
        "not_before after not_after": {"not_before": now_ms + 60_000, "not_after": now_ms + 1},
        "deadline beyond the retention": {"not_after": now_ms + 8 * DAY_MS},
        "default deadline beyond the retention": {"default_deadline": 8 * DAY_MS},
    }
    for name, over in cases.items():
        reply = await _call(r, _keys("k4"), _argv(_intent_json("k4"), "k4", **over))
        assert reply[0] == "invalid", (name, reply)
    assert await _written(r) == []


LENIENT_JSON = {
    "hex number": '"metadata":{"n":0x10}',
    "bare nan": '"metadata":{"n":nan}',
    "bare inf": '"metadata":{"n":inf}',
    "NaN literal": '"metadata":{"n":NaN}',
    "Infinity": '"metadata":{"n":-Infinity}',
    "leading zero": '"metadata":{"n":01}',
    "trailing dot": '"metadata":{"n":1.}',
    "plus sign": '"metadata":{"n":+1}',
}


@pytest.mark.parametrize("fragment", LENIENT_JSON.values(), ids=LENIENT_JSON.keys())
async def test_json_that_only_cjson_reads_is_refused(r: aioredis.Redis, fragment: str) -> None:
    text = _intent_json("k5")[:-1] + "," + fragment + "}"
    reply = await _call(r, _keys("k5"), _argv(text, "k5"))
    assert reply[0] == "invalid" and "JSON" in reply[1], reply
    assert await _written(r) == []


async def test_invalid_utf8_oversize_and_deep_nesting_are_refused(r: aioredis.Redis) -> None:
    base = _intent_json("k6")[:-1]
    texts: dict[str, str | bytes] = {
        "latin-1 byte": (base + ',"metadata":{"n":"caf\xe9"}}').encode("latin-1"),
        "surrogate bytes": base.encode() + b',"metadata":{"n":"\xed\xa0\x80"}}',
        "overlong": base.encode() + b',"metadata":{"n":"\xc0\xaf"}}',
        "too large": base + ',"metadata":{"n":"' + "x" * MAX_INTENT_BYTES + '"}}',
        "deep": base + ',"metadata":{"n":' + "[" * 900 + "]" * 900 + "}}",
    }
    for name, text in texts.items():
        reply = await _call(r, _keys("k6"), _argv(text, "k6"))
        assert reply[0] == "invalid", (name, reply)
    assert await _written(r) == []


async def test_strict_json_with_unicode_and_escapes_is_accepted(r: aioredis.Redis) -> None:
    text = _intent_json("k7", metadata={"n": -0.5e-3, "s": 'é "quoted" \\ 한국어 \u2764\ufe0f'})
    reply = await _call(r, _keys("k7"), _argv(text, "k7"))
    assert reply[0] == "queued", reply


# Tokens a JSON value may be built from, lenient ones included.
_TOKENS = st.sampled_from(
    ["1", "-2", "0.5", "1e3", "01", "0x1f", "nan", "inf", "+1", "1.", "true", "null", '"s"',
     '"\\u00e9"', '"\\ud800"', "[]", "{}", "[1,2]", '{"a":1}', "1E+2", "-0"]
)  # fmt: skip


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@example(values=['"\\ud800"'])
@example(values=["0x1f", "1"])
@example(values=["1.", "0.5"])
@example(values=["1e400"])
@example(values=["nan", '"s"'])
@example(values=["inf", "01", "+1"])
@example(values=['"s"', "-2", "[1,2]"])
@given(values=st.lists(_TOKENS, min_size=1, max_size=4))
async def test_the_script_queues_only_what_pythons_json_reads(
    r: aioredis.Redis, values: list[str]
) -> None:
    """Whatever the script queues, the worker can read, with the same values; and what
    Python reads, the script queues (except lone surrogate escapes, which the intent model
    refuses anyway: the script is stricter, never looser)."""
    await resolve(r.delete(KEYS.record("k8"), KEYS.arq_job("k8")))
    body = ",".join(f'"m{i}":{v}' for i, v in enumerate(values))
    text = _intent_json("k8")[:-1] + ',"metadata":{' + body + "}}"
    reply = await _call(r, _keys("k8"), _argv(text, "k8"))
    readable = _python_reads(text)
    if reply[0] == "queued":
        assert readable, text
        job = json.loads(await resolve(r.get(KEYS.arq_job("k8"))))
        assert job["a"][0] == json.loads(text)
    elif "\\ud800" not in text:
        assert not readable, (text, reply)


def _python_reads(text: str) -> bool:
    """json.loads reads it (NaN and Infinity refused, as the worker's model refuses them).
    1e400 reads, as infinity: the intent model refuses that, as from any producer."""
    try:
        json.loads(text, parse_constant=_refuse)
    except ValueError:
        return False
    return True


def _refuse(name: str) -> None:
    raise ValueError(name)
