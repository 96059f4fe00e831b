"""The messaging window as Graph enforces it: 24 h after the user's last message, 7 days for
HUMAN_AGENT, refused with 403 10/2534022. The clock control moves time, so nothing waits.

Margins around each boundary are a minute: the real time between two calls is milliseconds.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ig_outbound.emulator import EmulatorConfig, EmulatorControl, create_app
from ig_outbound.emulator.config import AccountConfig, WindowConfig
from tests.emulator.conftest import COMMENT, IG_A, IG_B, TOKEN_B, USER_1, USER_2, USER_B, post

HOUR = 3600.0
DAY = 24 * HOUR
MINUTE = 60.0
NEW_USER = "5260000000000301"
MID = "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUl"

TEXT = {"recipient": {"id": USER_1}, "message": {"text": "hi"}}
HUMAN_AGENT = {**TEXT, "messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}
TYPING = {"recipient": {"id": USER_1}, "sender_action": "typing_on"}
SEEN = {"recipient": {"id": USER_1}, "sender_action": "mark_seen"}
REACT = {
    "recipient": {"id": USER_1},
    "sender_action": "react",
    "payload": {"message_id": MID, "reaction": "love"},
}


def text_to(igsid: str) -> dict[str, Any]:
    return {"recipient": {"id": igsid}, "message": {"text": "hi"}}


def assert_outside_window(response: httpx.Response) -> None:
    """Meta's exact answer (fact sheet §2): HTTP 403, IGApiException 10/2534022."""
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "code", "error_subcode", "fbtrace_id"}
    assert error["message"] == "This message is sent outside of allowed window."
    assert (error["type"], error["code"], error["error_subcode"]) == ("IGApiException", 10, 2534022)
    assert error["fbtrace_id"]


def test_configured_users_are_in_window_at_start(
    graph: httpx.Client, control: EmulatorControl
) -> None:
    assert post(graph, text_to(USER_1)).status_code == 200
    assert post(graph, text_to(USER_2)).status_code == 200
    assert post(graph, text_to(USER_B), token=TOKEN_B, node=IG_B).status_code == 200


def test_24_hours_after_the_start_the_window_closes(
    graph: httpx.Client, control: EmulatorControl
) -> None:
    control.advance_clock(DAY - MINUTE)
    assert post(graph, TEXT).status_code == 200
    control.advance_clock(2 * MINUTE)
    assert_outside_window(post(graph, TEXT))
    stats = control.stats()
    assert stats["rejected_by_error"] == {"10/2534022": 1}
    assert stats["accepted"] == 1
    [rejected] = control.calls()["rejected"]
    assert (rejected["status"], rejected["code"], rejected["subcode"], rejected["ig_id"]) == (
        403,
        10,
        2534022,
        IG_A,
    )


def test_a_message_from_the_user_reopens_the_window(
    graph: httpx.Client, control: EmulatorControl
) -> None:
    control.advance_clock(25 * HOUR)
    assert_outside_window(post(graph, TEXT))
    event = control.user_message(IG_A, USER_1, "are you there?")
    assert event["mid"].startswith("aWdf")
    assert post(graph, TEXT).status_code == 200
    control.advance_clock(DAY + MINUTE)
    assert_outside_window(post(graph, TEXT))


def test_a_message_recorded_in_the_past_sets_the_window(
    graph: httpx.Client, control: EmulatorControl
) -> None:
    control.add_users(IG_A, [NEW_USER], in_window=False)
    assert_outside_window(post(graph, text_to(NEW_USER)))  # an existing user who never wrote
    control.user_message(IG_A, NEW_USER, ago_s=DAY + MINUTE, webhook=False)
    assert_outside_window(post(graph, text_to(NEW_USER)))
    control.user_message(IG_A, NEW_USER, ago_s=DAY - MINUTE, webhook=False)
    assert post(graph, text_to(NEW_USER)).status_code == 200


def test_a_later_message_wins_over_an_earlier_one(
    graph: httpx.Client, control: EmulatorControl
) -> None:
    now = control.clock()["now"]
    control.user_message(IG_A, USER_1, at=now - 2 * HOUR)
    control.user_message(IG_A, USER_1, at=now - 30 * HOUR)  # arrives late, changes nothing
    control.advance_clock(DAY - 3 * HOUR)
    assert post(graph, TEXT).status_code == 200
    control.advance_clock(2 * HOUR)
    assert_outside_window(post(graph, TEXT))


def test_human_agent_is_allowed_for_7_days(graph: httpx.Client, control: EmulatorControl) -> None:
    control.advance_clock(25 * HOUR)
    assert_outside_window(post(graph, TEXT))
    assert post(graph, HUMAN_AGENT).status_code == 200
    control.set_clock_offset(7 * DAY - MINUTE)
    assert post(graph, HUMAN_AGENT).status_code == 200
    control.advance_clock(2 * MINUTE)
    assert_outside_window(post(graph, HUMAN_AGENT))
    assert control.stats()["rejected_by_error"] == {"10/2534022": 2}


@pytest.mark.parametrize("body", [TYPING, SEEN, REACT], ids=["typing_on", "mark_seen", "react"])
def test_sender_actions_and_reactions_follow_the_24_hour_window(
    body: dict[str, Any], graph: httpx.Client, control: EmulatorControl
) -> None:
    control.advance_clock(DAY - MINUTE)
    assert post(graph, body).status_code == 200
    control.advance_clock(2 * MINUTE)
    assert_outside_window(post(graph, body))


def test_unknown_users_are_still_no_matching_user(
    graph: httpx.Client, control: EmulatorControl
) -> None:
    control.advance_clock(30 * DAY)
    response = post(graph, text_to("5260000000009999"))
    assert response.json()["error"]["error_subcode"] == 2534014


def test_private_replies_keep_their_own_rule(graph: httpx.Client, control: EmulatorControl) -> None:
    reply = {"recipient": {"comment_id": COMMENT}, "message": {"text": "details in DM"}}
    control.advance_clock(6 * DAY)  # the commenter never wrote a DM: no window needed
    assert post(graph, reply).status_code == 200
    control.reset()
    control.advance_clock(7 * DAY + MINUTE)  # the comment's age is on the emulator's clock
    assert_outside_window(post(graph, reply))


def test_window_can_be_switched_off(graph: httpx.Client, control: EmulatorControl) -> None:
    control.advance_clock(30 * DAY)
    assert control.set_window(enforced=False)["enforced"] is False
    assert post(graph, TEXT).status_code == 200


def test_reset_puts_the_clock_back_and_reopens_windows(
    graph: httpx.Client, control: EmulatorControl
) -> None:
    control.advance_clock(2 * DAY)
    assert_outside_window(post(graph, TEXT))
    control.reset()
    assert control.clock()["offset_s"] == 0.0
    assert post(graph, TEXT).status_code == 200


def test_clock_control_validates(emulator_url: str, control: EmulatorControl) -> None:
    for body in ({}, {"advance_s": -1}, {"advance_s": 1, "offset_s": 2}):
        response = httpx.put(f"{emulator_url}/_emulator/clock", json=body)
        assert response.status_code == 422, body
    before = control.clock()
    after = control.advance_clock(HOUR)
    assert after["offset_s"] == before["offset_s"] + HOUR
    assert after["now"] >= before["now"] + HOUR


async def test_any_recipient_counts_as_registered_at_start() -> None:
    config = EmulatorConfig(
        accounts=[AccountConfig(ig_id=IG_A, token="IGAAany-secret", username="any")],
        allow_any_recipient=True,
    )
    app = create_app(config)
    headers = {"Authorization": "Bearer IGAAany-secret"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://graph") as client:
        first = await client.post("/v23.0/me/messages", json=text_to("777"), headers=headers)
        assert first.status_code == 200, first.text
        app.state.emulator.clock.advance(DAY + MINUTE)
        assert_outside_window(
            await client.post("/v23.0/me/messages", json=text_to("778"), headers=headers)
        )


async def test_registered_users_need_a_message_when_configured_so() -> None:
    config = EmulatorConfig(
        accounts=[AccountConfig(ig_id=IG_A, token="IGAAstrict-secret", username="strict")],
        users={IG_A: [USER_1]},
        window=WindowConfig(registered_users_in_window=False, standard_s=HOUR),
    )
    app = create_app(config)
    headers = {"Authorization": "Bearer IGAAstrict-secret"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://graph") as client:
        assert_outside_window(await client.post("/v23.0/me/messages", json=TEXT, headers=headers))
        state = app.state.emulator
        state.record_user_message(IG_A, USER_1, state.clock.now() - HOUR + MINUTE, None)
        assert (await client.post("/v23.0/me/messages", json=TEXT, headers=headers)).is_success
        state.clock.advance(2 * MINUTE)  # the configured standard window is an hour here
        assert_outside_window(await client.post("/v23.0/me/messages", json=TEXT, headers=headers))
