"""Every kind's `build_body` output is accepted by the Graph emulator (and recorded as sent).

One emulator process for this module; each case builds an intent, turns it into the Graph body
and POSTs it the way the worker does (`Authorization: Bearer`, JSON).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ig_outbound.emulator import (
    AccountConfig,
    CommentConfig,
    EmulatorConfig,
    EmulatorControl,
    run_emulator_process,
)
from ig_outbound.producers.intent import ALL_KINDS, SENDER_ACTION_KINDS
from ig_outbound.producers.validation import parse_intent
from ig_outbound.worker.payloads import build_body

IG_ID = "17841400000000077"
TOKEN = "IGAAcontract-test-token-0077"
USER = "1254477777772919"
OTHER_USER = "5260000000000001"
COMMENT_ID = "17900000000000077"
COMMENTER = "5260000000000099"
MID = "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjEyNTAyMjE2NTg5MTIx"
URL = "https://cdn.example.com/media/a.png"
BUTTONS = [
    {"type": "web_url", "url": "https://example.com/shop", "title": "Visit"},
    {"type": "postback", "title": "Talk", "payload": "TALK"},
]

Json = dict[str, Any]

# (case id, content, extra envelope fields, message_kind the emulator should record)
CASES: list[tuple[str, Json, Json, str | None]] = [
    ("text", {"kind": "text", "text": "Hello! https://example.com/menu"}, {}, "text"),
    ("text_1000_bytes", {"kind": "text", "text": "가" * 333 + "a"}, {}, "text"),
    (
        "text_quick_replies",
        {
            "kind": "text",
            "text": "Pick a color",
            "quick_replies": [{"title": f"Color {i}", "payload": f"C{i}"} for i in range(13)],
        },
        {},
        "text",
    ),
    ("image_url", {"kind": "image", "url": "https://cdn.example.com/media/cat.gif"}, {}, "image"),
    ("image_attachment_id", {"kind": "image", "attachment_id": "246810"}, {}, "image"),
    ("audio", {"kind": "audio", "url": "https://cdn.example.com/media/voice.m4a"}, {}, "audio"),
    ("video", {"kind": "video", "url": "https://cdn.example.com/media/clip.mp4"}, {}, "video"),
    ("video_attachment_id", {"kind": "video", "attachment_id": "13579"}, {}, "video"),
    ("file", {"kind": "file", "url": "https://cdn.example.com/docs/menu.pdf"}, {}, "file"),
    (
        "images",
        {"kind": "images", "images": [{"url": URL}, {"attachment_id": "1357924680"}]},
        {},
        "images",
    ),
    ("images_10", {"kind": "images", "images": [{"url": URL}] * 10}, {}, "images"),
    ("sticker", {"kind": "sticker"}, {}, "like_heart"),
    ("media_share", {"kind": "media_share", "post_id": "17895695668004550"}, {}, "media_share"),
    (
        "generic_template",
        {
            "kind": "generic_template",
            "elements": [
                {
                    "title": "Welcome!",
                    "image_url": "https://example.com/img/welcome.png",
                    "subtitle": "We have the right hat for everyone.",
                    "default_action": {"type": "web_url", "url": "https://example.com/shop"},
                    "buttons": [*BUTTONS, {"type": "postback", "title": "More", "payload": "M"}],
                },
                {"title": "Second", "subtitle": "only a subtitle"},
            ]
            * 5,
        },
        {},
        "generic_template",
    ),
    (
        "button_template",
        {"kind": "button_template", "text": "x" * 640, "buttons": BUTTONS},
        {},
        "button_template",
    ),
    ("react", {"kind": "react", "message_id": MID}, {}, None),
    ("react_emoji", {"kind": "react", "message_id": MID, "reaction": "\U0001f44b"}, {}, None),
    ("unreact", {"kind": "unreact", "message_id": MID}, {}, None),
    ("typing_on", {"kind": "typing_on"}, {}, None),
    ("typing_off", {"kind": "typing_off"}, {}, None),
    ("mark_seen", {"kind": "mark_seen"}, {}, None),
    ("reply_to_text", {"kind": "text", "text": "Answering that"}, {"reply_to": MID}, "text"),
    (
        "reply_to_template",
        {"kind": "button_template", "text": "Next?", "buttons": BUTTONS[:1]},
        {"reply_to": MID},
        "button_template",
    ),
    (
        "human_agent",
        {"kind": "text", "text": "A human here"},
        {"tag": "HUMAN_AGENT", "automated": False},
        "text",
    ),
    (
        "human_agent_quick_replies",
        {"kind": "text", "text": "Pick", "quick_replies": [{"title": "A", "payload": "A"}]},
        {"tag": "HUMAN_AGENT", "automated": False, "reply_to": MID},
        "text",
    ),
    ("to_other_user", {"kind": "sticker"}, {"recipient": {"id": OTHER_USER}}, "like_heart"),
]


@pytest.fixture(scope="module")
def emulator_url() -> Iterator[str]:
    config = EmulatorConfig(
        accounts=[AccountConfig(ig_id=IG_ID, token=TOKEN, username="contract_shop")],
        users={IG_ID: [USER, OTHER_USER]},
        comments=[
            CommentConfig(
                comment_id=COMMENT_ID,
                ig_id=IG_ID,
                commenter_igsid=COMMENTER,
                created_at=time.time(),
            )
        ],
    )
    with run_emulator_process(config) as url:
        yield url


@pytest.fixture(scope="module")
def graph(emulator_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator_url, timeout=10.0) as client:
        yield client


@pytest.fixture(scope="module")
def control(emulator_url: str) -> Iterator[EmulatorControl]:
    with EmulatorControl(emulator_url) as ctl:
        yield ctl


def _intent_body(content: Json, envelope: Json) -> Json:
    data: Json = {
        "idempotency_key": f"contract:{content['kind']}",
        "account_id": IG_ID,
        "recipient": {"id": USER},
        "content": content,
    }
    data.update(envelope)
    return build_body(parse_intent(data))


def _send(graph: httpx.Client, body: Json) -> httpx.Response:
    return graph.post(
        f"/v23.0/{IG_ID}/messages", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
    )


def test_cases_cover_every_kind() -> None:
    assert {content["kind"] for _, content, _, _ in CASES} == set(ALL_KINDS)


@pytest.mark.parametrize(
    ("content", "envelope", "message_kind"),
    [pytest.param(c, e, k, id=case) for case, c, e, k in CASES],
)
def test_built_body_is_accepted_by_the_emulator(
    graph: httpx.Client,
    control: EmulatorControl,
    content: Json,
    envelope: Json,
    message_kind: str | None,
) -> None:
    body = _intent_body(content, envelope)
    before = control.calls()["next_since"]

    response = _send(graph, body)

    assert response.status_code == 200, response.text
    answer = response.json()
    recipient = envelope.get("recipient", {"id": USER})["id"]
    if content["kind"] in SENDER_ACTION_KINDS:
        assert answer == {"recipient_id": recipient}
    else:
        assert set(answer) == {"recipient_id", "message_id"}
        assert answer["recipient_id"] == recipient
        assert isinstance(answer["message_id"], str) and answer["message_id"]
    # The emulator recorded exactly this body, classified as the kind we meant.
    [call] = control.calls(since=before)["calls"]
    assert call["body"] == body
    assert call["recipient_id"] == recipient
    assert call["message_kind"] == message_kind
    if message_kind is None:
        assert call["kind"] == "sender_action"
        assert call["sender_action"] == content["kind"]
        assert call["message_id"] is None
    else:
        assert call["kind"] == "message"
        assert call["message_id"] == answer["message_id"]


def test_private_reply_body_is_accepted_and_answered_with_the_commenter(
    graph: httpx.Client, control: EmulatorControl
) -> None:
    body = _intent_body(
        {"kind": "text", "text": "Thanks for your comment!"},
        {"recipient": {"comment_id": COMMENT_ID}},
    )
    before = control.calls()["next_since"]

    response = _send(graph, body)

    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == {"recipient_id", "message_id"}
    assert answer["recipient_id"] == COMMENTER
    assert answer["message_id"]
    [call] = control.calls(since=before)["calls"]
    assert call["body"] == body
    assert call["comment_id"] == COMMENT_ID
    assert call["message_kind"] == "text"


def test_message_ids_of_accepted_messages_are_unique(graph: httpx.Client) -> None:
    body = _intent_body({"kind": "text", "text": "one of three"}, {})
    mids = [_send(graph, body).json()["message_id"] for _ in range(3)]
    assert len(set(mids)) == 3


def test_emulator_rejects_a_body_our_builder_would_never_produce(graph: httpx.Client) -> None:
    # Guards against a permissive emulator making the acceptance tests above meaningless.
    body = _intent_body({"kind": "typing_on"}, {})
    body["message"] = {"text": "not allowed next to a sender action"}
    response = _send(graph, body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == 100
