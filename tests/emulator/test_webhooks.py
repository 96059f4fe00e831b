"""Webhooks, in process: the emulator app and the receiver meet through httpx transports.

Echoes of every delivered message (same mid, also when the answer was an error), none for
sender actions or reactions; signing over the exact bytes; retries and give-up; batching; the
users' own events. Delivery is awaited with ``webhooks.idle()``, never with a sleep.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from ig_outbound.emulator import ScriptedAnswer
from tests.emulator.conftest import COMMENT, COMMENTER, IG_A, USER_1, base_config
from tests.emulator.inprocess import HOOK_URL, SECRET, World, open_world, world_config
from tests.emulator.webhook_checks import assert_signed, assert_well_formed

CDN = "https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id="
MEDIA_URL = "https://example.com/media/original.png"
MID = "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUl"


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with open_world(world_config()) as opened:
        yield opened


def to_user(message: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"recipient": {"id": USER_1}, "message": message, **extra}


def media(kind: str) -> dict[str, Any]:
    return {"attachment": {"type": kind, "payload": {"url": MEDIA_URL}}}


GENERIC = {
    "template_type": "generic",
    "elements": [
        {
            "title": "Welcome!",
            "subtitle": "Hats",
            "buttons": [{"type": "postback", "title": "Start", "payload": "START"}],
        }
    ],
}
BUTTONS = {
    "template_type": "button",
    "text": "What next?",
    "buttons": [{"type": "postback", "title": "Track", "payload": "TRACK"}],
}
QUICK = {
    "text": "Pick one",
    "quick_replies": [
        {"content_type": "text", "title": "Yes", "payload": "Y"},
        {"content_type": "text", "title": "No", "payload": "N"},
    ],
}
# name -> (message sent, text echoed, attachment types echoed)
ECHO_CASES: dict[str, tuple[dict[str, Any], str | None, list[str]]] = {
    "text": ({"text": "Danke! Größe M 👋"}, "Danke! Größe M 👋", []),
    "quick_replies": (QUICK, "Pick one", []),
    "image": (media("image"), None, ["image"]),
    "image_attachment_id": (
        {"attachment": {"type": "image", "payload": {"attachment_id": "1857777774821032"}}},
        None,
        ["image"],
    ),
    "images": (
        {"attachments": [media("image")["attachment"], media("image")["attachment"]]},
        None,
        ["image", "image"],
    ),
    "audio": (media("audio"), None, ["audio"]),
    "video": (media("video"), None, ["video"]),
    "file": (media("file"), None, ["file"]),
    "sticker": ({"attachment": {"type": "like_heart"}}, None, ["image"]),
    "media_share": (
        {"attachment": {"type": "MEDIA_SHARE", "payload": {"id": "17895695668004550"}}},
        None,
        ["ig_post"],
    ),
    "generic_template": (
        {"attachment": {"type": "template", "payload": GENERIC}},
        None,
        ["template"],
    ),
    "button_template": (
        {"attachment": {"type": "template", "payload": BUTTONS}},
        None,
        ["template"],
    ),
}


@pytest.mark.parametrize("name", sorted(ECHO_CASES))
async def test_every_delivered_message_is_echoed_with_its_mid(name: str, world: World) -> None:
    sent, text, types = ECHO_CASES[name]
    response = await world.send(to_user(sent))
    assert response.status_code == 200, response.text
    await world.settle()
    [hook] = world.webhooks()
    assert (hook["kinds"], hook["state"]) == (["echo"], "delivered")
    [entry] = assert_well_formed(hook["body"].encode())
    [item] = entry["messaging"]
    assert entry["id"] == IG_A
    assert (item["sender"]["id"], item["recipient"]["id"]) == (IG_A, USER_1)
    echo = item["message"]
    assert echo["mid"] == response.json()["message_id"]
    assert echo["is_echo"] is True
    assert echo.get("text") == text
    attachments = echo.get("attachments", [])
    assert [a["type"] for a in attachments] == types
    for attachment in attachments:
        if attachment["type"] == "template":
            assert attachment["payload"] == sent["attachment"]["payload"]
        else:  # re-hosted on Meta's CDN, never the URL the business sent
            assert attachment["payload"]["url"].startswith(CDN)
    assert MEDIA_URL not in hook["body"]
    if name == "media_share":
        assert attachments[0]["payload"]["ig_post_media_id"] == "17895695668004550"


async def test_echo_keeps_reply_to_and_human_agent_messages_echo_too(world: World) -> None:
    reply = await world.send(to_user({"text": "re"}, reply_to={"mid": MID}))
    tagged = await world.send(
        to_user({"text": "agent"}, messaging_type="MESSAGE_TAG", tag="HUMAN_AGENT")
    )
    await world.settle()
    first, second = (item["message"] for item in world.items())
    assert first == {
        "mid": reply.json()["message_id"],
        "text": "re",
        "reply_to": {"mid": MID},
        "is_echo": True,
    }
    assert second == {"mid": tagged.json()["message_id"], "text": "agent", "is_echo": True}


async def test_no_echo_for_sender_actions_and_reactions(world: World) -> None:
    for action in ("typing_on", "typing_off", "mark_seen"):
        assert (await world.send({"recipient": {"id": USER_1}, "sender_action": action})).is_success
    react = {"message_id": MID, "reaction": "love"}
    await world.send({"recipient": {"id": USER_1}, "sender_action": "react", "payload": react})
    unreact = {"message_id": MID}
    await world.send({"recipient": {"id": USER_1}, "sender_action": "unreact", "payload": unreact})
    assert len(world.state.calls) == 5
    # Echoes are queued during the send itself: nothing was queued for these five.
    assert world.webhooks() == []
    last = await world.send(to_user({"text": "now a message"}))
    await world.settle()
    assert [item["message"]["mid"] for item in world.items()] == [last.json()["message_id"]]


async def test_private_reply_echo_goes_to_the_commenter(world: World) -> None:
    reply = {"recipient": {"comment_id": COMMENT}, "message": {"text": "see DM"}}
    response = await world.send(reply)
    assert response.json()["recipient_id"] == COMMENTER
    await world.settle()
    [item] = world.items()
    assert (item["sender"]["id"], item["recipient"]["id"]) == (IG_A, COMMENTER)
    assert item["message"]["mid"] == response.json()["message_id"]


@pytest.mark.parametrize(
    "answer",
    [
        ScriptedAnswer(status=500, code=2, after_send=True),
        ScriptedAnswer(code=None, hang_s=0.001),  # the timeout case: delivered, answer late
    ],
    ids=["5xx_after_send", "timeout"],
)
async def test_a_delivered_message_is_echoed_whatever_the_answer(
    answer: ScriptedAnswer, world: World
) -> None:
    world.state.push_script([answer])
    response = await world.send(to_user({"text": "ambiguous"}))
    await world.settle()
    [call] = world.state.calls
    assert call.fault == "scripted"
    [item] = world.items()
    assert item["message"]["mid"] == call.message_id
    assert item["message"]["text"] == "ambiguous"
    if answer.after_send:
        assert response.status_code == 500


async def test_injected_5xx_after_send_is_echoed_but_5xx_before_is_not(world: World) -> None:
    world.state.set_faults({"error_5xx_rate": 1.0})
    assert (await world.send(to_user({"text": "lost"}))).status_code == 500
    world.state.set_faults({"error_5xx_rate": 0.0, "error_5xx_after_send_rate": 1.0})
    assert (await world.send(to_user({"text": "delivered"}))).status_code == 500
    await world.settle()
    [call] = world.state.calls
    assert [item["message"]["mid"] for item in world.items()] == [call.message_id]


async def test_refused_sends_are_not_echoed(world: World) -> None:
    world.state.clock.advance(25 * 3600)
    assert (await world.send(to_user({"text": "late"}))).status_code == 403
    assert world.webhooks() == []


async def test_signature_is_over_the_exact_ascii_bytes(world: World) -> None:
    text = 'Grüße äöå 👋 "quoted" </script>'
    await world.send(to_user({"text": text}))
    await world.settle()
    [received] = world.receiver.received
    assert received.headers["content-type"] == "application/json"
    assert_signed(SECRET, received.body, received.headers["x-hub-signature-256"])
    assert b"\\u00fc" in received.body and b"\\ud83d\\udc4b" in received.body
    assert json.loads(received.body)["entry"][0]["messaging"][0]["message"]["text"] == text
    [hook] = world.webhooks()
    assert hook["body"].encode() == received.body
    assert hook["signature"] == received.headers["x-hub-signature-256"]


async def test_retries_until_the_receiver_answers_200() -> None:
    async with open_world(world_config(retries=5)) as world:
        world.receiver.script.extend(
            [500, httpx.ConnectError, httpx.ReadTimeout, (429, {"Retry-After": "0"}), 200]
        )
        await world.send(to_user({"text": "persist"}))
        await world.settle()
        [hook] = world.webhooks()
        assert hook["state"] == "delivered"
        attempts = [(a["status"], a["error"]) for a in hook["attempts"]]
        assert attempts == [
            (500, None),
            (None, "ConnectError"),
            (None, "ReadTimeout"),
            (429, None),
            (200, None),
        ]
        bodies = {r.body for r in world.receiver.received}
        assert len(world.receiver.received) == 5 and len(bodies) == 1  # the same bytes
        stats = world.state.stats()["webhooks"]
        assert (stats["delivered"], stats["retried"], stats["given_up"]) == (1, 4, 0)


async def test_gives_up_after_the_configured_retries() -> None:
    async with open_world(world_config(retries=2)) as world:
        world.receiver.script.extend([503] * 10)
        await world.send(to_user({"text": "doomed"}))
        await world.send(to_user({"text": "doomed too"}))
        await world.settle()
        assert [h["state"] for h in world.webhooks()] == ["given_up", "given_up"]
        assert [len(h["attempts"]) for h in world.webhooks()] == [3, 3]
        assert len(world.receiver.received) == 6
        stats = world.state.stats()["webhooks"]
        assert stats == {
            "queued": 2,
            "delivered": 0,
            "retried": 4,
            "given_up": 2,
            "dropped": 0,
            "pending": 0,
        }


async def test_waiting_events_are_batched_up_to_batch_max() -> None:
    async with open_world(world_config(batch_max=3, concurrency=1)) as world:
        world.receiver.gate = asyncio.Event()
        mids = []
        for n in range(5):
            response = await world.send(to_user({"text": f"m{n}"}))
            mids.append(response.json()["message_id"])
            await world.receiver.wait_for(1)  # the first is in flight, the rest wait
        world.receiver.gate.set()
        await world.settle()
        batches = [
            [e["messaging"][0]["message"]["mid"] for e in assert_well_formed(r.body)]
            for r in world.receiver.received
        ]
        assert batches == [mids[:1], mids[1:4], mids[4:]]
        assert [h["kinds"] for h in world.webhooks()] == [["echo"], ["echo"] * 3, ["echo"]]


async def test_a_full_queue_drops_and_counts() -> None:
    async with open_world(world_config(queue_max=2, concurrency=1)) as world:
        world.receiver.gate = asyncio.Event()
        await world.send(to_user({"text": "in flight"}))
        await world.receiver.wait_for(1)
        await world.send(to_user({"text": "waits"}))
        await world.send(to_user({"text": "dropped"}))
        assert world.state.stats()["webhooks"]["dropped"] == 1
        world.receiver.gate.set()
        await world.settle()
        assert [item["message"]["text"] for item in world.items()] == ["in flight", "waits"]


async def test_user_message_and_comment_webhooks(world: World) -> None:
    sent = await world.send(to_user(QUICK))
    business_mid = sent.json()["message_id"]
    event = await world.control(
        "users/message",
        {
            "ig_id": IG_A,
            "igsid": USER_1,
            "text": "Yes",
            "quick_reply_payload": "Y",
            "reply_to_mid": business_mid,
        },
    )
    comment = await world.control(
        "users/comment",
        {"ig_id": IG_A, "igsid": "5260000000000401", "text": "Preis? 😍", "username": "anna"},
    )
    await world.settle()
    _echo, message, commented = (assert_well_formed(h["body"].encode()) for h in world.webhooks())
    [item] = message[0]["messaging"]
    assert (item["sender"]["id"], item["recipient"]["id"]) == (USER_1, IG_A)
    assert item["message"] == {
        "mid": event["mid"],
        "text": "Yes",
        "quick_reply": {"payload": "Y"},
        "reply_to": {"mid": business_mid},
    }
    assert item["timestamp"] == int(event["at"] * 1000)
    [entry] = commented
    assert entry["value"]["id"] == comment["comment_id"]
    assert entry["value"]["from"] == {"id": "5260000000000401", "username": "anna"}
    assert entry["value"]["text"] == "Preis? 😍"
    # The comment is registered: its one private reply works and is echoed to the commenter.
    reply = {"recipient": {"comment_id": comment["comment_id"]}, "message": {"text": "DM'd"}}
    answer = await world.send(reply)
    assert answer.json()["recipient_id"] == "5260000000000401"
    # The commenter exists now but never wrote a DM: outside the window.
    direct = {"recipient": {"id": "5260000000000401"}, "message": {"text": "hi"}}
    assert (await world.send(direct)).status_code == 403


async def test_without_a_url_nothing_is_built_but_facts_are_kept() -> None:
    async with open_world(base_config()) as world:
        event = await world.control("users/message", {"ig_id": IG_A, "igsid": "5260000000000402"})
        assert event["webhook"] is None
        await world.send(to_user({"text": "no hook"}))
        direct = {"recipient": {"id": "5260000000000402"}, "message": {"text": "hi"}}
        assert (await world.send(direct)).status_code == 200
        assert world.state.stats()["webhooks"]["queued"] == 0
        assert world.receiver.received == []


async def test_settings_never_show_the_secret_and_reset_clears(world: World) -> None:
    shown = (await world.client.get("/_emulator/webhooks/settings")).text
    assert SECRET not in shown and HOOK_URL in shown
    changed = await world.client.put("/_emulator/webhooks/settings", json={"retries": 1})
    assert changed.json()["retries"] == 1 and SECRET not in changed.text
    await world.send(to_user({"text": "x"}))
    await world.settle()
    assert len(world.webhooks()) == 1
    await world.control("reset", {})
    listed = (await world.client.get("/_emulator/webhooks")).json()
    assert listed == {"webhooks": [], "next_since": 0}
    assert world.state.webhooks.settings.retries == 5  # back to the configured settings


async def test_a_url_removed_while_webhooks_wait_gives_them_up() -> None:
    async with open_world(world_config(retries=1, concurrency=1)) as world:
        world.receiver.gate = asyncio.Event()
        await world.send(to_user({"text": "in flight"}))
        await world.receiver.wait_for(1)
        await world.send(to_user({"text": "queued"}))
        world.state.webhooks.configure({"url": None})
        world.receiver.gate.set()
        await world.settle()
        first, second = world.webhooks()
        assert first["state"] == "delivered"
        assert (second["state"], [a["error"] for a in second["attempts"]]) == (
            "given_up",
            ["InvalidURL", "InvalidURL"],
        )


async def test_a_person_writing_in_the_app_sends_only_an_echo(world: World) -> None:
    event = await world.control(
        "business/message", {"ig_id": IG_A, "igsid": USER_1, "text": "Sam here, by hand"}
    )
    await world.settle()
    [body] = (assert_well_formed(h["body"].encode()) for h in world.webhooks())
    [item] = body[0]["messaging"]
    # From the business to the user, like an echo of an API send, but no call made it.
    assert (item["sender"]["id"], item["recipient"]["id"]) == (IG_A, USER_1)
    assert item["message"] == {"mid": event["mid"], "text": "Sam here, by hand", "is_echo": True}
    assert world.state.stats()["accepted"] == 0
    unknown = await world.client.post(
        "/_emulator/business/message", json={"ig_id": "99", "igsid": USER_1}
    )
    assert unknown.status_code == 400 and "unknown account 99" in unknown.text
