"""Injected faults: scripted answers, random 5xx, ambiguous sends, timeouts, throttling, latency."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from ig_outbound.emulator import EmulatorControl, ScriptedAnswer
from tests.emulator.conftest import IG_A, IG_B, TOKEN_B, USER_1, USER_B, error_of, post

TEXT = {"recipient": {"id": USER_1}, "message": {"text": "hi"}}
TEXT_B = {"recipient": {"id": USER_B}, "message": {"text": "hi"}}


def test_scripted_500_then_success(graph: httpx.Client, control: EmulatorControl) -> None:
    assert control.script([{"status": 500, "code": 2}]) == 1
    first = post(graph, TEXT)
    assert first.status_code == 500
    error = error_of(first)
    assert (error["type"], error["code"], error["is_transient"]) == ("IGApiException", 2, True)
    second = post(graph, TEXT)
    assert second.status_code == 200
    seen = control.calls()
    assert len(seen["calls"]) == 1
    assert [(r["code"], r["fault"]) for r in seen["rejected"]] == [(2, "scripted")]
    assert control.stats()["faults_injected"]["scripted"] == 1


@pytest.mark.parametrize(
    ("answer", "error_type", "subcode"),
    [
        ({"status": 400, "code": 100, "subcode": 2534014}, "IGApiException", 2534014),
        ({"status": 400, "code": 190}, "OAuthException", None),
        ({"status": 403, "code": 10, "subcode": 2534022}, "IGApiException", 2534022),
    ],
)
def test_scripted_error_shapes(
    graph: httpx.Client,
    control: EmulatorControl,
    answer: dict[str, int],
    error_type: str,
    subcode: int | None,
) -> None:
    control.script([answer])
    response = post(graph, TEXT)
    assert response.status_code == answer["status"]
    error = error_of(response)
    assert (error["type"], error["code"], error.get("error_subcode")) == (
        error_type,
        answer["code"],
        subcode,
    )
    assert error["message"]
    assert control.calls()["calls"] == []


def test_scripted_answer_for_one_account_only(
    graph: httpx.Client, control: EmulatorControl
) -> None:
    control.script([ScriptedAnswer(status=500, code=1, ig_id=IG_B, times=2)])
    assert post(graph, TEXT).status_code == 200  # account A is not affected
    assert post(graph, TEXT_B, token=TOKEN_B, node="me").status_code == 500
    assert post(graph, TEXT_B, token=TOKEN_B, node="me").status_code == 500
    assert post(graph, TEXT_B, token=TOKEN_B, node="me").status_code == 200
    assert control.stats()["scripted_pending"] == 0


def test_scripted_after_send_records_the_call(
    graph: httpx.Client, control: EmulatorControl
) -> None:
    control.script([{"status": 500, "code": 2, "after_send": True}])
    assert post(graph, TEXT).status_code == 500
    [call] = control.calls()["calls"]
    assert (call["response_status"], call["fault"]) == (500, "scripted")
    assert call["message_id"].startswith("aWdf")


def test_throttle_answer_has_buc_header(graph: httpx.Client, control: EmulatorControl) -> None:
    control.set_faults(throttle_rate=1.0)
    response = post(graph, TEXT)
    assert response.status_code == 400
    error = error_of(response)
    assert (error["type"], error["code"], error["error_subcode"]) == (
        "IGApiException",
        613,
        2534040,
    )
    assert error["message"] == "Calls to this api have exceeded the rate limit."
    usage = json.loads(response.headers["X-Business-Use-Case-Usage"])
    [entry] = usage[IG_A]
    assert entry["type"] == "instagram"
    assert entry["call_count"] == 100
    assert entry["estimated_time_to_regain_access"] >= 1
    assert {"total_cputime", "total_time"} <= set(entry)
    assert control.calls()["calls"] == []
    assert control.stats()["faults_injected"] == {"throttle": 1}


def test_error_5xx_is_not_recorded(graph: httpx.Client, control: EmulatorControl) -> None:
    control.set_faults(error_5xx_rate=1.0)
    response = post(graph, TEXT)
    assert response.status_code == 500
    error = error_of(response)
    assert error["message"] == "An unexpected error has occurred. Please retry your request later."
    assert (error["code"], error["is_transient"]) == (2, True)
    assert control.calls()["calls"] == []
    assert control.stats()["rejected_by_code"] == {"2": 1}


def test_error_5xx_after_send_is_recorded(graph: httpx.Client, control: EmulatorControl) -> None:
    control.set_faults(error_5xx_after_send_rate=1.0, error_5xx_code=1)
    response = post(graph, TEXT)
    assert response.status_code == 500
    assert error_of(response)["code"] == 1
    [call] = control.calls()["calls"]
    assert (call["response_status"], call["fault"]) == (500, "error_5xx_after_send")
    assert control.stats()["rejected"] == 0


def test_timeout_records_the_call(graph: httpx.Client, control: EmulatorControl) -> None:
    control.set_faults(timeout_rate=1.0, timeout_hang_s=1.0)
    with pytest.raises(httpx.ReadTimeout):
        graph.post(
            f"/v23.0/{IG_A}/messages",
            json=TEXT,
            headers={"Authorization": "Bearer IGAAtokenA-very-secret-0001"},
            timeout=0.2,
        )
    [call] = control.wait_for_calls(1)
    assert call["fault"] == "timeout"


def test_latency_is_applied(graph: httpx.Client, control: EmulatorControl) -> None:
    control.set_faults(latency_ms=150, latency_jitter_ms=20)
    assert post(graph, TEXT).status_code == 200
    [call] = control.calls()["calls"]
    assert call["finished_at"] - call["arrived_at"] >= 0.15
    assert control.stats()["faults_injected"]["latency"] == 1


def test_transit_delays_the_arrival_itself(graph: httpx.Client, control: EmulatorControl) -> None:
    """Transit is slept before the arrival time is taken: the rate windows see the call late
    (the limiter's transit allowance is proven against this)."""
    control.set_faults(transit_ms=150, transit_jitter_ms=20)
    sent_at = time.time()
    assert post(graph, TEXT).status_code == 200
    [call] = control.calls()["calls"]
    assert call["arrived_at"] - sent_at >= 0.15
    assert call["finished_at"] - call["arrived_at"] < 0.15
    assert control.stats()["faults_injected"]["transit"] == 1


def test_seeded_faults_are_reproducible(graph: httpx.Client, control: EmulatorControl) -> None:
    def pattern() -> list[int]:
        control.set_faults(error_5xx_rate=0.5, seed=1234)
        return [post(graph, TEXT).status_code for _ in range(16)]

    first, second = pattern(), pattern()
    assert first == second
    assert {200, 500} == set(first)


def test_reset_clears_faults_and_script(graph: httpx.Client, control: EmulatorControl) -> None:
    control.set_faults(error_5xx_rate=1.0)
    control.script([{"status": 500, "code": 2}])
    control.reset()
    assert control.faults()["error_5xx_rate"] == 0.0
    assert control.stats()["scripted_pending"] == 0
    assert post(graph, TEXT).status_code == 200


def test_bad_fault_settings_are_refused(control: EmulatorControl) -> None:
    with pytest.raises(httpx.HTTPStatusError) as info:
        control.set_faults(error_5xx_rate=2.0)
    assert info.value.response.status_code == 422
    with pytest.raises(httpx.HTTPStatusError):
        control.set_faults(no_such_fault=1)
    assert control.faults()["error_5xx_rate"] == 0.0
