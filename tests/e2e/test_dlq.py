"""The dead-letter queue end to end: what lands there, list/show, replay, purge, and the CLI.

Other tests of the session dead-letter too, so every check here looks only at its own keys
(or at a private key prefix, for the purges that would otherwise touch foreign entries).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from ig_outbound.emulator import EmulatorControl
from ig_outbound.harness.env import client_view, process_env, tuned
from ig_outbound.harness.intents import make_intent
from ig_outbound.harness.wait import wait_until_async
from ig_outbound.producers.dlq import ALL, DeadLetter, DeadLetters, replay_key
from ig_outbound.producers.enqueue import OutboundClient
from ig_outbound.producers.intent import MAX_IDEMPOTENCY_KEY
from ig_outbound.producers.keys import ARQ_IN_PROGRESS_PREFIX, Keys
from ig_outbound.producers.validation import parse_intent
from ig_outbound.worker.settings import Settings
from tests.e2e.conftest import ACCOUNT_A, ACCOUNT_B, USERS, Stack, calls_for

pytestmark = pytest.mark.slow

UNKNOWN_USER = {"id": "99999999999"}  # the emulator fails it with 100/2534014


@pytest.fixture
def dlq(stack: Stack) -> Iterator[DeadLetters]:
    with DeadLetters(redis.Redis.from_url(stack.redis_url), stack.settings) as d:
        yield d


def _text(label: str) -> dict[str, Any]:
    return {"kind": "text", "text": f"{label} {uuid.uuid4().hex}"}


def _only(dlq: DeadLetters, key: str) -> DeadLetter:
    (letter,) = dlq.list(count=10, key=key)
    return letter


async def _dead_letter(client: OutboundClient, dlq: DeadLetters, intent: dict[str, Any]) -> Any:
    await client.enqueue(intent)
    outcome = await client.wait(intent["idempotency_key"], timeout=20)
    assert outcome.status != "sent", outcome
    return _only(dlq, intent["idempotency_key"])


def _raw_job(stack: Stack, r: Any, payload: str, job_id: str | None = None) -> None:
    """Plant a job; under a random job id unless it is to replace an intent's own job (a bad
    job ends only the intent whose job id it runs under)."""
    job_id = job_id or f"dlq-raw-{uuid.uuid4().hex}"
    r.set(f"arq:job:{job_id}", payload, px=3_600_000)
    r.zadd(stack.keys.queue, {job_id: int(time.time() * 1000)})


async def _parked(client: OutboundClient, stack: Stack, intent: dict[str, Any]) -> str:
    """Enqueue `intent` with its job an hour away; returns the job id to plant under."""
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    await client.enqueue({**intent, "not_before": later})
    return stack.keys.job_id(intent["idempotency_key"])


def _send_job(arg: Any) -> str:
    return json.dumps({"t": None, "f": "ig_outbound.send", "a": [arg], "k": {}, "et": 0})


async def _wait_for(dlq: DeadLetters, match: Any) -> DeadLetter:
    found: list[DeadLetter] = []

    def listed() -> bool:
        found[:] = [letter for letter in dlq.list(count=10_000) if match(letter)]
        return bool(found)

    await wait_until_async(listed, 10, "the dead letter")
    (letter,) = found
    return letter


def _cli(stack: Stack, *args: str, prefix: str | None = None) -> subprocess.Popen[str]:
    settings = client_view(stack.settings)
    env = process_env(tuned(settings, key_prefix=prefix) if prefix else settings)
    return subprocess.Popen(
        [sys.executable, "-m", "ig_outbound.cli", "dlq", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _done(proc: subprocess.Popen[str]) -> tuple[int, Any]:
    out, err = proc.communicate(timeout=30)
    try:
        return proc.returncode, json.loads(out)
    except ValueError:
        raise AssertionError(f"not JSON (rc {proc.returncode}): {out!r} {err[-2000:]!r}") from None


async def test_a_permanent_failure_is_dead_lettered_whole_and_listed(
    client: OutboundClient, dlq: DeadLetters, new_key: Any
) -> None:
    now = datetime.now(UTC)
    intent = make_intent(
        new_key("dlq-perm"),
        ACCOUNT_A,
        UNKNOWN_USER,
        _text("perm"),
        metadata={"order": "A-1", "n": 7},
        not_before=(now - timedelta(hours=1)).isoformat(),
        not_after=(now + timedelta(hours=1)).isoformat(),
    )
    letter = await _dead_letter(client, dlq, intent)
    key = intent["idempotency_key"]
    assert (letter.key, letter.status, letter.reason) == (key, "failed", "no_matching_user")
    assert letter.intent == parse_intent(intent).model_dump(mode="json")  # the whole intent
    assert letter.outcome is not None and letter.outcome.error is not None
    assert (letter.outcome.error.code, letter.outcome.error.subcode) == (100, 2534014)
    assert letter.outcome.metadata == {"order": "A-1", "n": 7}
    assert letter.replayed_as is None
    assert abs((letter.dead_lettered_at - datetime.now(UTC)).total_seconds()) < 30
    # Filters: by status (and key), newest first, paginated by entry id.
    assert letter.entry_id in [x.entry_id for x in dlq.list(count=10_000, status="failed")]
    assert dlq.list(count=10_000, status="expired", key=key) == []
    second = await _dead_letter(
        client, dlq, make_intent(new_key("dlq-perm2"), ACCOUNT_A, UNKNOWN_USER, _text("p2"))
    )
    ids = [x.entry_id for x in dlq.list(count=10_000)]
    assert ids.index(second.entry_id) < ids.index(letter.entry_id)
    assert dlq.list(count=1, key=key, after=second.entry_id) == [letter]
    assert dlq.list(count=10, key=key, after=letter.entry_id) == []
    # show
    assert dlq.show(letter.entry_id) == letter
    assert dlq.show("1-0") is None
    with pytest.raises(ValueError):
        dlq.show("not-an-id")
    # A dry run applies the deadline rule: a future not_after stays, a past not_before goes.
    (dry,) = dlq.replay([letter.entry_id], dry_run=True)
    assert dry.status == "would_queue" and dry.intent is not None
    assert dry.intent["not_after"] == parse_intent(intent).model_dump(mode="json")["not_after"]
    assert dry.intent["not_before"] is None


async def test_replay_after_the_cause_is_fixed_sends_once_under_the_derived_key(
    client: OutboundClient,
    dlq: DeadLetters,
    control: EmulatorControl,
    raw_redis: Any,
    stack: Stack,
    new_key: Any,
) -> None:
    control.script([{"status": 403, "code": 10, "subcode": 2534022, "ig_id": ACCOUNT_B}])
    intent = make_intent(
        new_key("dlq-window"), ACCOUNT_B, USERS[7], _text("window"), metadata={"order": "B-2"}
    )
    letter = await _dead_letter(client, dlq, intent)
    assert (letter.status, letter.reason) == ("failed", "outside_window")
    assert calls_for(control, intent) == []
    derived = f"{intent['idempotency_key']}~r{letter.entry_id}"

    (dry,) = dlq.replay([letter.entry_id], dry_run=True)
    assert (dry.status, dry.new_key) == ("would_queue", derived)
    assert raw_redis.exists(stack.keys.record(derived)) == 0
    assert dlq.show(letter.entry_id) == letter  # a dry run writes nothing

    (first,) = dlq.replay([letter.entry_id])
    assert (first.status, first.original_key, first.new_key) == (
        "queued",
        intent["idempotency_key"],
        derived,
    )
    outcome = await client.wait(derived, timeout=20)
    assert outcome.status == "sent", outcome
    assert outcome.metadata == {"order": "B-2"}
    shown = dlq.show(letter.entry_id)
    assert shown is not None and shown.replayed_as == derived
    assert _only(dlq, intent["idempotency_key"]).replayed_as == derived

    # Twice: nothing queued, by the bookkeeping and (without it) by the enqueue script.
    (again,) = dlq.replay(letter.entry_id)
    assert (again.status, again.new_key, again.state) == ("duplicate", derived, "sent")
    raw_redis.hdel(stack.keys.dead_letter_replays, letter.entry_id)
    third, fourth = dlq.replay([letter.entry_id, letter.entry_id])
    assert (third.status, third.state) == ("duplicate", "sent")
    assert fourth.status == "duplicate"
    assert raw_redis.hget(stack.keys.dead_letter_replays, letter.entry_id) == derived
    # The proof no replay queued a second send: ARQ is done with the derived key's job
    # (neither queued nor running), and a later intent of the same conversation (sent only
    # after every earlier one has its outcome) gets through.
    job_id = stack.keys.job_id(derived)
    await wait_until_async(
        lambda: (
            raw_redis.zscore(stack.keys.queue, job_id) is None
            and not raw_redis.exists(ARQ_IN_PROGRESS_PREFIX + job_id)
        ),
        10,
        "ARQ to be done with the replayed job",
    )
    fence = make_intent(new_key("dlq-fence"), ACCOUNT_B, USERS[7], _text("fence"))
    await client.enqueue(fence)
    assert (await client.wait(fence["idempotency_key"], timeout=20)).status == "sent"
    assert len(calls_for(control, intent)) == 1
    assert (await client.outcome(derived)) == outcome


async def test_replay_of_an_expired_intent_gets_a_fresh_deadline(
    client: OutboundClient, dlq: DeadLetters, control: EmulatorControl, new_key: Any
) -> None:
    past = datetime.now(UTC) - timedelta(seconds=1)
    intent = make_intent(
        new_key("dlq-late"), ACCOUNT_A, USERS[8], _text("late"), not_after=past.isoformat()
    )
    letter = await _dead_letter(client, dlq, intent)
    assert (letter.status, letter.reason) == ("expired", "deadline_passed")
    (result,) = dlq.replay([letter.entry_id])
    assert result.status == "queued" and result.intent is not None
    assert result.intent["not_after"] is None
    assert (await client.wait(result.new_key or "", timeout=20)).status == "sent"
    assert len(calls_for(control, intent)) == 1


async def test_replay_refuses_what_cannot_be_replayed(
    client: OutboundClient, dlq: DeadLetters, raw_redis: Any, stack: Stack, new_key: Any
) -> None:
    # A rejected (invalid) intent: written as a raw job, since enqueue would refuse it.
    key = new_key("dlq-invalid")
    bad = {
        "idempotency_key": key,
        "account_id": "17841400000000101",
        "recipient": {},
        "content": {"kind": "text", "text": "x" * 1001},
    }
    valid = make_intent(key, ACCOUNT_A, USERS[33], _text("valid"))
    _raw_job(stack, raw_redis, _send_job(bad), await _parked(client, stack, valid))
    # A keyed job of an unknown name (quarantined by the worker: not an intent).
    named = make_intent(new_key("dlq-named"), ACCOUNT_A, USERS[34], _text("named"))
    job_id = await _parked(client, stack, named)
    _raw_job(stack, raw_redis, json.dumps({"t": None, "f": "nope", "a": [named], "k": {}}), job_id)
    # Keyless garbage: an object without a key, and text that is not JSON.
    marker = uuid.uuid4().hex
    _raw_job(stack, raw_redis, _send_job({"marker": marker}))
    _raw_job(stack, raw_redis, "{not json " + marker)

    invalid = await _wait_for(dlq, lambda x: x.key == key)
    quarantined = await _wait_for(dlq, lambda x: x.key == named["idempotency_key"])
    keyless = await _wait_for(dlq, lambda x: x.intent == {"marker": marker})
    not_json = await _wait_for(
        dlq, lambda x: isinstance(x.intent, dict) and marker in str(x.intent.get("raw"))
    )
    assert (invalid.status, invalid.reason, invalid.intent) == ("rejected", "invalid_intent", bad)
    assert (keyless.key, keyless.status, not_json.key) == (None, "rejected", None)

    ids = [x.entry_id for x in (invalid, quarantined, keyless, not_json)]
    results = dlq.replay([*ids, "1-0", "nope"])
    assert [r.status for r in results] == ["refused"] * 6
    codes = [r.error["error"] if r.error else None for r in results]
    assert codes == [
        "invalid_intent",
        "bad_job",
        "no_key",
        "no_key",
        "unknown_entry",
        "invalid_entry_id",
    ]
    assert results[0].error is not None
    locs = {p["loc"] for p in results[0].error["problems"]}
    assert {"recipient", "content.text"} <= locs
    # Nothing else happened: no record under the derived key, no bookkeeping.
    assert raw_redis.exists(stack.keys.record(replay_key(key, invalid.entry_id))) == 0
    assert raw_redis.hmget(stack.keys.dead_letter_replays, ids) == [None] * 4
    assert dlq.replay([invalid.entry_id], dry_run=True)[0].status == "refused"


def test_replay_key_is_deterministic_and_bounded() -> None:
    assert replay_key("a:b", "1718000000000-0") == "a:b~r1718000000000-0"
    long = "k" * MAX_IDEMPOTENCY_KEY
    derived = replay_key(long, "1718000000000-12")
    assert len(derived) == MAX_IDEMPOTENCY_KEY
    assert derived == replay_key(long, "1718000000000-12")
    assert derived != replay_key(long, "1718000000000-13")
    assert derived != replay_key(long[:-1] + "j", "1718000000000-12")
    assert derived.endswith("~r1718000000000-12")
    parse_intent(make_intent(derived, ACCOUNT_A, USERS[0], _text("k")))  # a valid key


async def test_purge_by_ids_removes_entries_and_their_bookkeeping(
    client: OutboundClient, dlq: DeadLetters, raw_redis: Any, stack: Stack, new_key: Any
) -> None:
    intent = make_intent(new_key("dlq-purge"), ACCOUNT_A, UNKNOWN_USER, _text("purge"))
    letter = await _dead_letter(client, dlq, intent)
    (replayed,) = dlq.replay([letter.entry_id])
    assert replayed.status == "queued" and replayed.new_key
    assert (await client.wait(replayed.new_key, timeout=20)).status == "failed"
    again = _only(dlq, replayed.new_key)  # the replay dead-lettered too
    before = raw_redis.xlen(stack.keys.dead_letters)
    assert dlq.purge([letter.entry_id, again.entry_id, "1-0"]) == 2
    assert raw_redis.xlen(stack.keys.dead_letters) == before - 2
    assert dlq.show(letter.entry_id) is None and dlq.show(again.entry_id) is None
    assert raw_redis.hget(stack.keys.dead_letter_replays, letter.entry_id) is None
    with pytest.raises(ValueError):
        dlq.purge()
    with pytest.raises(ValueError):
        dlq.purge(ALL, older_than=timedelta(days=1))
    with pytest.raises(ValueError):
        dlq.purge(["bad"])


def _private(stack: Stack) -> tuple[DeadLetters, Keys, Any]:
    """A DLQ under a private key prefix, with one entry of ten days ago and one of now."""
    settings = Settings(redis_url=stack.redis_url, key_prefix=f"dlqt{uuid.uuid4().hex[:8]}")
    keys = Keys(settings.key_prefix)
    r: Any = redis.Redis.from_url(stack.redis_url, decode_responses=True)
    old_ms = int((time.time() - 10 * 86400) * 1000)
    fields = {"key": "old", "status": "failed", "outcome": "{}", "intent": "{}"}
    old_id = r.xadd(keys.dead_letters, fields, id=f"{old_ms}-0")
    new_id = r.xadd(keys.dead_letters, {**fields, "key": "new"})
    r.hset(keys.dead_letter_replays, mapping={old_id: "old~r", new_id: "new~r", "1-0": "gone"})
    return DeadLetters(redis.Redis.from_url(stack.redis_url), settings), keys, r


def test_purge_older_than_and_all(stack: Stack) -> None:
    private, keys, r = _private(stack)
    with private:
        assert [x.key for x in private.list()] == ["new", "old"]
        assert private.purge(older_than=timedelta(days=30)) == 0
        assert private.purge(older_than=timedelta(days=7)) == 1
        (left,) = private.list()
        assert (left.key, left.replayed_as) == ("new", "new~r")
        assert r.hkeys(keys.dead_letter_replays) == [left.entry_id]
        assert private.purge(ALL) == 1
        assert r.xlen(keys.dead_letters) == 0 and r.exists(keys.dead_letter_replays) == 0
    r.close()


def test_replay_all_takes_every_entry_there_is_on_a_private_prefix(
    stack: Stack, new_key: Any
) -> None:
    private, keys, r = _private(stack)  # two entries already replayed (bookkeeping)
    intent = make_intent(new_key("dlq-all"), ACCOUNT_A, USERS[0], _text("all"))
    stored = parse_intent(intent).model_dump(mode="json")
    fields = {"key": intent["idempotency_key"], "status": "failed", "intent": json.dumps(stored)}
    good = r.xadd(keys.dead_letters, fields)
    with private:
        dry = private.replay(ALL, dry_run=True)
        assert [x.entry_id for x in dry][-1] == good
        assert [(x.status, x.new_key) for x in dry[:2]] == [
            ("duplicate", "old~r"),
            ("duplicate", "new~r"),
        ]
        assert dry[2].error is not None and dry[2].error["error"] == "unknown_account"
        r.sadd(keys.accounts, intent["account_id"])  # this prefix's fleet now serves it
        results = private.replay(ALL)
        assert [x.status for x in results] == ["duplicate", "duplicate", "queued"]
        derived = replay_key(intent["idempotency_key"], good)
        assert r.zscore(keys.queue, keys.job_id(derived)) is not None
        assert [x.status for x in private.replay(ALL)][-1] == "duplicate"
    r.delete(*r.keys(f"{keys.prefix}:*"), keys.arq_job(derived))
    r.close()


async def test_cli_dlq_commands_print_json(
    client: OutboundClient, dlq: DeadLetters, stack: Stack, new_key: Any
) -> None:
    intent = make_intent(new_key("dlq-cli"), ACCOUNT_A, UNKNOWN_USER, _text("cli"))
    letter = await _dead_letter(client, dlq, intent)
    key, eid = intent["idempotency_key"], letter.entry_id
    private, keys, r = _private(stack)
    private.close()
    procs = {
        "list": _cli(stack, "list", "--status", "failed", "--count", "5", "--key", key),
        "list_bad": _cli(stack, "list", "--status", "sent"),
        "show": _cli(stack, "show", eid),
        "show_missing": _cli(stack, "show", "1-0"),
        "dry": _cli(stack, "replay", eid, "--dry-run"),
        "purge_old": _cli(stack, "purge", "--older-than", "7d", prefix=keys.prefix),
        "purge_bad": _cli(stack, "purge", "--older-than", "soon"),
        "purge_none": _cli(stack, "purge"),
    }
    out = {name: _done(proc) for name, proc in procs.items()}
    rc, listed = out["list"]
    assert rc == 0 and [e["entry_id"] for e in listed["entries"]] == [eid]
    assert listed["entries"][0]["intent"] == letter.intent
    assert listed["entries"][0]["outcome"]["reason"] == "no_matching_user"
    assert out["list_bad"][0] == 2 and out["list_bad"][1]["error"] == "invalid_status"
    rc, shown = out["show"]
    assert rc == 0 and (shown["entry_id"], shown["key"], shown["status"]) == (eid, key, "failed")
    assert out["show_missing"][0] == 2 and out["show_missing"][1]["error"] == "unknown_entry"
    rc, dry = out["dry"]
    assert rc == 0 and dry["dry_run"] is True and dry["totals"] == {"would_queue": 1}
    assert dry["results"][0]["new_key"] == f"{key}~r{eid}"
    assert out["purge_old"] == (0, {"purged": 1})
    assert [e["key"] for e in private_list(stack, keys.prefix)] == ["new"]
    assert out["purge_bad"][0] == 2 and out["purge_bad"][1]["error"] == "invalid_duration"
    assert out["purge_none"][0] == 2 and out["purge_none"][1]["error"] == "invalid_arguments"
    # A real replay; one refusal among the results means exit 2.
    rc, mixed = _done(_cli(stack, "replay", eid, "1-0"))
    assert rc == 2 and mixed["totals"] == {"queued": 1, "refused": 1}
    assert mixed["results"][1]["error"]["error"] == "unknown_entry"
    assert (await client.wait(f"{key}~r{eid}", timeout=20)).status == "failed"
    rc, again = _done(_cli(stack, "replay", eid))
    assert rc == 0 and again["totals"] == {"duplicate": 1}
    r.delete(keys.dead_letters, keys.dead_letter_replays)
    r.close()


def private_list(stack: Stack, prefix: str) -> list[dict[str, Any]]:
    settings = Settings(redis_url=stack.redis_url, key_prefix=prefix)
    with DeadLetters(redis.Redis.from_url(stack.redis_url), settings) as d:
        return [x.as_dict() for x in d.list()]
