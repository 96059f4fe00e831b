"""Every documented body (fact sheet §1, the seed's curl samples) is accepted and recorded."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ig_outbound.emulator import EmulatorControl
from tests.emulator.conftest import COMMENT, COMMENTER, IG_A, USER_1, post

MID = "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDAwMDAwMDAwMDAx"
TO = {"id": USER_1}

GENERIC = {
    "template_type": "generic",
    "elements": [
        {
            "title": "Welcome!",
            "image_url": "https://example.com/welcome.png",
            "subtitle": "We have the right hat for everyone.",
            "default_action": {"type": "web_url", "url": "https://example.com"},
            "buttons": [
                {"type": "web_url", "url": "https://example.com", "title": "View Website"},
                {
                    "type": "postback",
                    "title": "Start Chatting",
                    "payload": "DEVELOPER_DEFINED_PAYLOAD",
                },
            ],
        }
    ],
}

# (name, body, expected message_kind or None for sender actions)
FACT_SHEET: list[tuple[str, dict[str, Any], str | None]] = [
    ("text", {"recipient": TO, "message": {"text": "Hello https://example.com"}}, "text"),
    (
        "image",
        {
            "recipient": TO,
            "message": {"attachment": {"type": "image", "payload": {"url": "https://e.com/a.gif"}}},
        },
        "image",
    ),
    (
        "image_doc_typo_attachments_object",
        {
            "recipient": TO,
            "message": {
                "attachments": {"type": "image", "payload": {"url": "https://e.com/a.png"}}
            },
        },
        "image",
    ),
    (
        "images_many",
        {
            "recipient": TO,
            "message": {
                "attachments": [
                    {"type": "image", "payload": {"url": "https://e.com/1.png"}},
                    {"type": "image", "payload": {"attachment_id": "1357924680"}},
                ]
            },
        },
        "images",
    ),
    *[
        (
            kind,
            {
                "recipient": TO,
                "message": {
                    "attachment": {"type": kind, "payload": {"url": f"https://e.com/x.{ext}"}}
                },
            },
            kind,
        )
        for kind, ext in (("audio", "m4a"), ("video", "mp4"), ("file", "pdf"))
    ],
    ("sticker", {"recipient": TO, "message": {"attachment": {"type": "like_heart"}}}, "like_heart"),
    (
        "react_love",
        {
            "recipient": TO,
            "sender_action": "react",
            "payload": {"message_id": MID, "reaction": "love"},
        },
        None,
    ),
    (
        "react_emoji",
        {
            "recipient": TO,
            "sender_action": "react",
            "payload": {"message_id": MID, "reaction": "\U0001f44b"},
        },
        None,
    ),
    (
        "unreact",
        {"recipient": TO, "sender_action": "unreact", "payload": {"message_id": MID}},
        None,
    ),
    (
        "media_share",
        {
            "recipient": TO,
            "message": {
                "attachment": {"type": "MEDIA_SHARE", "payload": {"id": "17895695668004550"}}
            },
        },
        "media_share",
    ),
    (
        "generic_template",
        {"recipient": TO, "message": {"attachment": {"type": "template", "payload": GENERIC}}},
        "generic_template",
    ),
    (
        "button_template",
        {
            "recipient": TO,
            "message": {
                "attachment": {
                    "type": "template",
                    "payload": {
                        "template_type": "button",
                        "text": "What do you want to do next?",
                        "buttons": [
                            {"type": "web_url", "url": "https://example.com", "title": "Visit"},
                            {"type": "postback", "title": "Talk", "payload": "TALK"},
                        ],
                    },
                }
            },
        },
        "button_template",
    ),
    (
        "quick_replies",
        {
            "recipient": TO,
            "messaging_type": "RESPONSE",
            "message": {
                "text": "Pick a color",
                "quick_replies": [
                    {"content_type": "text", "title": "Red", "payload": "RED"},
                    {"content_type": "text", "title": "Green", "payload": "GREEN"},
                ],
            },
        },
        "text",
    ),
    *[
        (action, {"recipient": TO, "sender_action": action}, None)
        for action in ("typing_on", "typing_off", "mark_seen")
    ],
    (
        "reply_to",
        {"recipient": TO, "reply_to": {"mid": MID}, "message": {"text": "Answering that"}},
        "text",
    ),
    (
        "human_agent",
        {
            "recipient": TO,
            "messaging_type": "MESSAGE_TAG",
            "tag": "HUMAN_AGENT",
            "message": {"text": "A human here"},
        },
        "text",
    ),
    (
        "uploaded_asset",
        {
            "recipient": TO,
            "message": {"attachment": {"type": "image", "payload": {"attachment_id": "246810"}}},
        },
        "image",
    ),
    ("update", {"recipient": TO, "messaging_type": "UPDATE", "message": {"text": "x"}}, "text"),
]

# The Korean guide's six curl bodies, placeholders replaced with real-looking ids.
SEED: list[tuple[str, dict[str, Any], str | None]] = [
    ("seed_text", {"recipient": {"id": USER_1}, "message": {"text": "안녕하세요"}}, "text"),
    (
        "seed_image",
        {
            "recipient": {"id": USER_1},
            "message": {
                "attachment": {"type": "image", "payload": {"url": "https://e.com/cat.gif"}}
            },
        },
        "image",
    ),
    (
        "seed_audio",
        {
            "recipient": {"id": USER_1},
            "message": {
                "attachment": {"type": "audio", "payload": {"url": "https://e.com/voice.m4a"}}
            },
        },
        "audio",
    ),
    (
        "seed_sticker",
        {"recipient": {"id": USER_1}, "message": {"attachment": {"type": "like_heart"}}},
        "like_heart",
    ),
    (
        "seed_react",
        {
            "recipient": {"id": USER_1},
            "sender_action": "react",
            "payload": {"message_id": MID, "reaction": "love"},
        },
        None,
    ),
    (
        "seed_media_share",
        {
            "recipient": {"id": USER_1},
            "message": {
                "attachment": {"type": "MEDIA_SHARE", "payload": {"id": "17895695668004550"}}
            },
        },
        "media_share",
    ),
]


@pytest.mark.parametrize(
    ("body", "message_kind"),
    [pytest.param(body, kind, id=name) for name, body, kind in FACT_SHEET + SEED],
)
def test_documented_body_is_accepted(
    graph: httpx.Client, control: EmulatorControl, body: dict[str, Any], message_kind: str | None
) -> None:
    response = post(graph, body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["recipient_id"] == USER_1
    if message_kind is None:
        assert set(answer) == {"recipient_id"}
    else:
        assert set(answer) == {"recipient_id", "message_id"}
        assert answer["message_id"].startswith("aWdf")
    [call] = control.calls()["calls"]
    assert call["body"] == body
    assert call["message_kind"] == message_kind
    assert call["ig_id"] == IG_A
    assert call["version"] == "v23.0"
    assert call["path_form"] == "id"
    assert call["response_status"] == 200
    assert call["message_id"] == answer.get("message_id")
    assert call["arrived_at"] <= call["finished_at"]


def test_private_reply_is_accepted(graph: httpx.Client, control: EmulatorControl) -> None:
    body = {"recipient": {"comment_id": COMMENT}, "message": {"text": "Thanks for commenting!"}}
    response = post(graph, body)
    assert response.status_code == 200, response.text
    assert response.json()["recipient_id"] == COMMENTER
    [call] = control.calls()["calls"]
    assert call["comment_id"] == COMMENT
    assert call["recipient_id"] == COMMENTER


def test_message_ids_are_unique(graph: httpx.Client) -> None:
    mids = {
        post(graph, {"recipient": TO, "message": {"text": "x"}}).json()["message_id"]
        for _ in range(5)
    }
    assert len(mids) == 5


def test_text_of_exactly_1000_bytes_is_accepted(graph: httpx.Client) -> None:
    text = "é" * 500  # 2 bytes each
    assert len(text.encode()) == 1000
    assert post(graph, {"recipient": TO, "message": {"text": text}}).status_code == 200


def test_long_quick_reply_title_is_truncated_not_rejected(
    graph: httpx.Client, control: EmulatorControl
) -> None:
    title = "An overly long option title"
    body = {
        "recipient": TO,
        "message": {
            "text": "Pick",
            "quick_replies": [{"content_type": "text", "title": title, "payload": "P"}],
        },
    }
    assert post(graph, body).status_code == 200
    [call] = control.calls()["calls"]
    assert call["truncations"] == [
        {"path": "message.quick_replies[0].title", "original": title, "delivered": title[:20]}
    ]
