"""Meta's per-account rate limits (fact sheet §3): 100/s light, 10/s audio/video, 750/h replies.

Real HTTP against emulator processes: the shared one (limits off by configuration, switched on
through ``PUT /_emulator/rate_limits``) and one started with limits on in its configuration.
Windows are long where a burst must fit in one, and short (or limits small) where a window
must slide, so no assertion depends on tight timing.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from ig_outbound.emulator import EmulatorControl, RateLimitConfig, run_emulator_process
from ig_outbound.emulator.rate_limits import (
    LATE_ARRIVAL_S,
    RateLimiter,
    max_in_any_window,
    rate_class_of,
)
from tests.emulator.conftest import (
    IG_A,
    IG_B,
    TOKEN_A,
    TOKEN_B,
    USER_1,
    USER_B,
    base_config,
    error_of,
    post,
)

BUC = "X-Business-Use-Case-Usage"
TEXT = {"recipient": {"id": USER_1}, "message": {"text": "hi"}}
TEXT_B = {"recipient": {"id": USER_B}, "message": {"text": "hi"}}
TYPING = {"recipient": {"id": USER_1}, "sender_action": "typing_on"}
MARK_SEEN = {"recipient": {"id": USER_1}, "sender_action": "mark_seen"}
REACT = {
    "recipient": {"id": USER_1},
    "sender_action": "react",
    "payload": {"message_id": "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUl", "reaction": "love"},
}
STICKER = {"recipient": {"id": USER_1}, "message": {"attachment": {"type": "like_heart"}}}


def attachment(kind: str, to: str = USER_1) -> dict[str, Any]:
    payload = {"url": f"https://example.com/x.{kind}"}
    return {"recipient": {"id": to}, "message": {"attachment": {"type": kind, "payload": payload}}}


AUDIO, VIDEO, IMAGE, FILE = (attachment(k) for k in ("audio", "video", "image", "file"))


@dataclass
class Emulator:
    url: str
    graph: httpx.Client
    control: EmulatorControl


LIMITED_CONFIG = RateLimitConfig(
    enabled=True, window_s=3.0, private_replies_per_h=3, regain_minutes=2
)


@pytest.fixture(scope="module")
def limited_process() -> Iterator[Emulator]:
    """An emulator with rate limits on in its configuration."""
    config = base_config().model_copy(update={"rate_limits": LIMITED_CONFIG})
    with (
        run_emulator_process(config) as url,
        httpx.Client(base_url=url, timeout=10.0) as graph,
        EmulatorControl(url) as control,
    ):
        yield Emulator(url, graph, control)


@pytest.fixture
def limited(limited_process: Emulator) -> Emulator:
    limited_process.control.reset()
    return limited_process


@pytest.fixture
def shared(emulator_url: str, graph: httpx.Client, control: EmulatorControl) -> Emulator:
    """The session emulator (reset before each test: limits off, as configured)."""
    return Emulator(emulator_url, graph, control)


def usage(response: httpx.Response, ig_id: str = IG_A) -> dict[str, Any]:
    data = json.loads(response.headers[BUC])
    assert list(data) == [ig_id]
    [entry] = data[ig_id]
    assert entry["type"] == "instagram"
    assert set(entry) == {
        "type",
        "call_count",
        "total_cputime",
        "total_time",
        "estimated_time_to_regain_access",
    }
    return dict(entry)


async def burst(
    url: str, bodies: list[dict[str, Any]], token: str = TOKEN_A
) -> list[httpx.Response]:
    """Send all bodies at once (concurrently) over real HTTP."""
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=len(bodies))
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits) as client:
        return list(
            await asyncio.gather(*[client.post("/v23.0/me/messages", json=b) for b in bodies])
        )


def sleep_until(deadline: float) -> None:
    time.sleep(max(0.0, deadline - time.time()))


# --- the light budget: 100 per window ------------------------------------------------------------


@pytest.mark.parametrize("how", ["config", "control"])
async def test_101st_light_call_in_the_window_is_throttled(
    how: str, request: pytest.FixtureRequest
) -> None:
    if how == "config":
        emu: Emulator = request.getfixturevalue("limited")
    else:
        emu = request.getfixturevalue("shared")
        settings = emu.control.set_rate_limits(enabled=True, window_s=3.0, regain_minutes=2)
        assert (settings["enabled"], settings["light_per_s"]) == (True, 100)
    light: list[dict[str, Any]] = [TEXT, TYPING, MARK_SEEN, REACT, STICKER, IMAGE, FILE] * 15
    responses = await burst(emu.url, light[:100])
    assert [r.status_code for r in responses] == [200] * 100, responses[-1].text
    assert max(usage(r)["call_count"] for r in responses) == 100

    over = post(emu.graph, TEXT)
    assert over.status_code == 400
    error = error_of(over)
    assert (error["type"], error["code"], error["error_subcode"]) == (
        "IGApiException",
        613,
        2534040,
    )
    assert error["message"] == "Calls to this api have exceeded the rate limit."
    entry = usage(over)
    assert entry["call_count"] == 100
    assert entry["estimated_time_to_regain_access"] == 2

    stats = emu.control.stats()
    assert stats["accepted"] == 100  # the throttled call was not delivered
    assert stats["violations"] == emu.control.violations() == 1
    assert stats["violations_by_account_class"] == {IG_A: {"light": 1}}
    assert stats["max_calls_in_any_window"] == {IG_A: {"light": 100}}
    assert stats["rejected_by_error"] == {"613/2534040": 1}
    assert stats["faults_injected"] == {}
    [rejected] = emu.control.calls()["rejected"]
    assert (rejected["code"], rejected["ig_id"], rejected["fault"]) == (613, IG_A, "rate_limit")


def test_window_slides(shared: Emulator) -> None:
    window = 0.6
    shared.control.set_rate_limits(enabled=True, light_per_s=5, window_s=window)
    assert [post(shared.graph, TEXT).status_code for _ in range(3)] == [200] * 3
    calls = shared.control.calls()["calls"]
    sleep_until(calls[0]["arrived_at"] + window / 2)
    assert [post(shared.graph, TEXT).status_code for _ in range(3)] == [200, 200, 400]
    later = shared.control.calls()["calls"][3]["arrived_at"]
    # The first three have left the window, the two later ones are still in it: a sliding
    # window (a fixed one would have started afresh) lets three more through, not five.
    sleep_until(calls[2]["arrived_at"] + window + 0.05)
    assert time.time() < later + window - 0.05, "test machine too slow for this window"
    assert [post(shared.graph, TEXT).status_code for _ in range(4)] == [200, 200, 200, 400]
    # Once everything has left the window, the budget is whole again.
    sleep_until(time.time() + window + 0.05)
    assert [post(shared.graph, TEXT).status_code for _ in range(5)] == [200] * 5
    stats = shared.control.stats()
    assert stats["violations_by_account_class"] == {IG_A: {"light": 2}}
    assert stats["max_calls_in_any_window"] == {IG_A: {"light": 5}}
    assert stats["accepted"] == 13


# --- separate budgets ----------------------------------------------------------------------------


def test_audio_and_video_have_their_own_budget(shared: Emulator) -> None:
    shared.control.set_rate_limits(enabled=True, light_per_s=4, media_per_s=3, window_s=3.0)
    # The light budget fills up; images and files are light, so they count there.
    assert [post(shared.graph, b).status_code for b in (TEXT, IMAGE, FILE, STICKER)] == [200] * 4
    assert post(shared.graph, TEXT).status_code == 400
    # Audio/video still have all of theirs.
    assert [post(shared.graph, b).status_code for b in (AUDIO, VIDEO, AUDIO)] == [200] * 3
    throttled = post(shared.graph, VIDEO)
    assert (throttled.status_code, error_of(throttled)["code"]) == (400, 613)
    stats = shared.control.stats()
    assert stats["violations_by_account_class"] == {IG_A: {"light": 1, "media": 1}}
    assert stats["max_calls_in_any_window"] == {IG_A: {"light": 4, "media": 3}}


def test_media_calls_do_not_use_the_light_budget(shared: Emulator) -> None:
    shared.control.set_rate_limits(enabled=True, light_per_s=2, media_per_s=2, window_s=3.0)
    assert [post(shared.graph, b).status_code for b in (AUDIO, VIDEO, AUDIO)] == [200, 200, 400]
    assert [post(shared.graph, b).status_code for b in (TEXT, TYPING, TEXT)] == [200, 200, 400]


def test_two_accounts_have_independent_budgets(shared: Emulator) -> None:
    shared.control.set_rate_limits(enabled=True, light_per_s=3, window_s=3.0)
    assert [post(shared.graph, TEXT).status_code for _ in range(4)] == [200, 200, 200, 400]
    first_b = post(shared.graph, TEXT_B, token=TOKEN_B, node=IG_B)
    assert first_b.status_code == 200
    assert usage(first_b, IG_B)["call_count"] == 33  # B's own window: 1 of 3
    b = [post(shared.graph, TEXT_B, token=TOKEN_B, node="me").status_code for _ in range(3)]
    assert b == [200, 200, 400]
    stats = shared.control.stats()
    assert stats["violations_by_account_class"] == {IG_A: {"light": 1}, IG_B: {"light": 1}}
    assert stats["max_calls_in_any_window"] == {IG_A: {"light": 3}, IG_B: {"light": 3}}


# --- private replies: 750 per hour ---------------------------------------------------------------


def _reply(comment_id: str) -> dict[str, Any]:
    return {"recipient": {"comment_id": comment_id}, "message": {"text": "details sent"}}


def test_private_replies_have_an_hourly_budget(limited: Emulator) -> None:
    assert limited.control.rate_limits()["private_replies_window_s"] == 3600.0
    comments = [f"1790000000000100{i}" for i in range(5)]
    for i, comment in enumerate(comments):
        limited.control.add_comment(comment, IG_A, f"526000000000010{i}")
    answers = [post(limited.graph, _reply(c)) for c in comments[:4]]
    assert [r.status_code for r in answers] == [200, 200, 200, 400]
    assert [usage(r)["call_count"] for r in answers[:3]] == [33, 66, 100]
    assert usage(answers[3])["estimated_time_to_regain_access"] == 2
    assert (error_of(answers[3])["code"], error_of(answers[3])["error_subcode"]) == (613, 2534040)
    # Other kinds of calls are not affected.
    assert post(limited.graph, TEXT).status_code == 200
    stats = limited.control.stats()
    assert stats["violations_by_account_class"] == {IG_A: {"private_reply": 1}}
    assert stats["max_calls_in_any_window"] == {IG_A: {"light": 1, "private_reply": 3}}


def test_private_reply_window_slides(limited: Emulator) -> None:
    window = 0.5
    limited.control.set_rate_limits(private_replies_per_h=2, private_replies_window_s=window)
    comments = [f"1790000000000200{i}" for i in range(4)]
    for i, comment in enumerate(comments):
        limited.control.add_comment(comment, IG_A, f"526000000000020{i}")
    statuses = [post(limited.graph, _reply(c)).status_code for c in comments[:3]]
    assert statuses == [200, 200, 400]
    last = limited.control.calls()["calls"][-1]["arrived_at"]
    sleep_until(last + window + 0.05)
    # The refused comment kept its one reply: it can be answered once the window has moved.
    assert post(limited.graph, _reply(comments[2])).status_code == 200
    assert post(limited.graph, _reply(comments[3])).status_code == 200
    assert limited.control.stats()["max_calls_in_any_window"][IG_A]["private_reply"] == 2


# --- the usage header ----------------------------------------------------------------------------


def test_usage_header_rises_with_the_window(shared: Emulator) -> None:
    shared.control.set_rate_limits(enabled=True, light_per_s=10, media_per_s=4, window_s=3.0)
    entries = [usage(post(shared.graph, TEXT)) for _ in range(5)]
    assert [e["call_count"] for e in entries] == [10, 20, 30, 40, 50]
    assert [e["total_time"] for e in entries] == [10, 20, 30, 40, 50]
    assert [e["total_cputime"] for e in entries] == [10, 20, 30, 40, 50]
    assert {e["estimated_time_to_regain_access"] for e in entries} == {0}
    # The busiest class counts: 3 of 4 media calls is 75 %.
    media = [usage(post(shared.graph, AUDIO))["call_count"] for _ in range(3)]
    assert media == [50, 50, 75]
    # Errors of a known account carry the header too (here: unknown recipient).
    unknown = post(shared.graph, {"recipient": {"id": "999"}, "message": {"text": "x"}})
    assert (unknown.status_code, usage(unknown)["call_count"]) == (400, 75)
    # A full window reads 100 % with a regain time, and the next call is refused.
    last = [usage(post(shared.graph, TEXT)) for _ in range(5)][-1]
    assert (last["call_count"], last["estimated_time_to_regain_access"]) == (100, 1)
    assert post(shared.graph, TEXT).status_code == 400


def test_malformed_body_is_invalid_parameter_not_a_violation(shared: Emulator) -> None:
    shared.control.set_rate_limits(enabled=True, light_per_s=1, window_s=3.0)
    assert post(shared.graph, TEXT).status_code == 200
    bad = post(shared.graph, {"recipient": {"id": USER_1}})
    assert (bad.status_code, error_of(bad)["code"]) == (400, 100)
    assert "error_subcode" not in error_of(bad)
    assert usage(bad)["call_count"] == 100  # every answer of a known account has it
    unauthenticated = post(shared.graph, TEXT, token="IGAAno-such-token")
    assert error_of(unauthenticated)["code"] == 190
    assert BUC not in unauthenticated.headers  # no account, no usage to report
    assert post(shared.graph, TEXT).status_code == 400
    assert shared.control.violations() == 1


# --- answers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "code", "subcode", "message"),
    [
        ("613", 613, 2534040, "Calls to this api have exceeded the rate limit."),
        ("4", 4, None, "Application request limit reached"),
        (80002, 80002, None, "There have been too many calls to this Instagram account."),
    ],
)
def test_throttle_answer_variants(
    shared: Emulator, answer: str | int, code: int, subcode: int | None, message: str
) -> None:
    settings = shared.control.set_rate_limits(
        enabled=True, light_per_s=1, window_s=3.0, throttle_answer=answer, regain_minutes=3
    )
    assert settings["throttle_answer"] == str(answer)
    assert post(shared.graph, TEXT).status_code == 200
    response = post(shared.graph, TEXT)
    assert response.status_code == 400
    error = error_of(response)
    assert (error["type"], error["code"], error.get("error_subcode")) == (
        "IGApiException",
        code,
        subcode,
    )
    assert message in error["message"]
    assert error["fbtrace_id"]
    assert usage(response)["estimated_time_to_regain_access"] == 3
    assert shared.control.stats()["rejected_by_code"] == {str(code): 1}


def test_injected_throttle_and_scripted_answers_still_work(shared: Emulator) -> None:
    shared.control.set_rate_limits(enabled=True, light_per_s=10, window_s=3.0)
    shared.control.script(
        [{"status": 500, "code": 2}, {"status": 500, "code": 2, "after_send": True}]
    )
    failed = post(shared.graph, TEXT)
    assert (failed.status_code, usage(failed)["call_count"]) == (500, 0)  # not delivered
    ambiguous = post(shared.graph, TEXT)
    assert (ambiguous.status_code, usage(ambiguous)["call_count"]) == (500, 10)  # delivered
    shared.control.set_faults(throttle_rate=1.0)
    fault = post(shared.graph, TEXT)
    assert (error_of(fault)["code"], error_of(fault)["error_subcode"]) == (613, 2534040)
    assert usage(fault)["call_count"] == 100  # the fault's own header wins
    stats = shared.control.stats()
    assert stats["faults_injected"] == {"scripted": 2, "throttle": 1}
    assert stats["violations"] == 0  # injected faults are not rate-limit violations


# --- off by default ------------------------------------------------------------------------------


def test_limits_are_on_by_default_as_on_graph() -> None:
    assert RateLimitConfig().enabled is True


async def test_disabled_means_no_header_and_no_throttling(shared: Emulator) -> None:
    settings = shared.control.rate_limits()
    assert settings == RateLimitConfig(enabled=False).model_dump(mode="json")
    assert settings["enabled"] is False
    responses = await burst(shared.url, [TEXT] * 120 + [AUDIO] * 15)
    assert {r.status_code for r in responses} == {200}
    assert not any(BUC in r.headers for r in responses)
    bad = post(shared.graph, {"recipient": {"id": USER_1}})
    assert bad.status_code == 400 and BUC not in bad.headers
    stats = shared.control.stats()
    assert (stats["violations"], stats["violations_by_account_class"]) == (0, {})
    # The measurement works without enforcement (it is how a sender's own limiter is judged).
    assert stats["max_calls_in_any_window"][IG_A]["media"] == 15
    assert stats["max_calls_in_any_window"][IG_A]["light"] >= 100


def test_reset_clears_windows_violations_and_settings(shared: Emulator) -> None:
    shared.control.set_rate_limits(enabled=True, light_per_s=1, window_s=30.0)
    assert [post(shared.graph, TEXT).status_code for _ in range(2)] == [200, 400]
    shared.control.reset()
    stats = shared.control.stats()
    assert (stats["violations"], stats["violations_by_account_class"]) == (0, {})
    assert stats["max_calls_in_any_window"] == {}
    assert shared.control.rate_limits()["enabled"] is False
    shared.control.set_rate_limits(enabled=True, light_per_s=1, window_s=30.0)
    assert post(shared.graph, TEXT).status_code == 200  # the old window is gone


def test_bad_settings_are_refused(shared: Emulator) -> None:
    for bad in ({"throttle_answer": "17"}, {"light_per_s": 0}, {"window_s": 0}, {"nope": 1}):
        with pytest.raises(httpx.HTTPStatusError) as info:
            shared.control.set_rate_limits(**bad)
        assert info.value.response.status_code == 422
    response = httpx.put(f"{shared.url}/_emulator/rate_limits", json=[1])
    assert response.status_code == 400
    assert shared.control.rate_limits() == RateLimitConfig(enabled=False).model_dump(mode="json")


# --- the window arithmetic itself ----------------------------------------------------------------


def test_rate_classes() -> None:
    assert rate_class_of("17900000000000001", "audio") == "private_reply"
    assert rate_class_of(None, "audio") == rate_class_of(None, "video") == "media"
    for kind in ("text", "image", "images", "file", "like_heart", "media_share", None):
        assert rate_class_of(None, kind) == "light"


def test_max_in_any_window() -> None:
    assert max_in_any_window([], 1.0) == 0
    assert max_in_any_window([5.0], 1.0) == 1
    # Spans are (end - w, end]: calls exactly one window apart are never in the same span.
    assert max_in_any_window([0.0, 1.0, 2.0], 1.0) == 1
    assert max_in_any_window([0.36, 0.0, 0.1, 0.2, 0.35], 0.3) == 4  # unsorted input
    assert max_in_any_window([1.0, 1.0, 1.0, 1.5], 0.3) == 3


def test_admission_sees_calls_that_arrived_later_but_were_accepted_first() -> None:
    limiter = RateLimiter(RateLimitConfig(enabled=True, light_per_s=2, window_s=0.5))
    for at in (1.0, 1.1):
        assert limiter.admit(IG_A, "light", at)
        limiter.record(IG_A, "light", at)
    # Arrived at 0.9 but reached the lock last: (0.6, 1.1] would hold three.
    assert not limiter.admit(IG_A, "light", 0.9)
    # At 0.5 no span of 0.5 s holds it together with both.
    assert limiter.admit(IG_A, "light", 0.5)
    assert limiter.admit(IG_A, "light", 1.65)
    assert limiter.violations_by_account_class() == {IG_A: {"light": 1}}


def test_windows_stay_bounded() -> None:
    limiter = RateLimiter(RateLimitConfig(enabled=True, window_s=1.0))
    for i in range(20_000):
        limiter.record(IG_A, "light", i * 0.01)  # 100/s for 200 s
    kept = limiter._windows[(IG_A, "light")]
    assert len(kept) <= 2 * (1.0 + LATE_ARRIVAL_S) * 100 + 64
    assert limiter.usage_percent(IG_A, 199.99) == 100
