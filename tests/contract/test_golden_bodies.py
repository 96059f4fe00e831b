"""Golden request bodies: `build_body(intent)` must equal what Meta documents, key for key.

The first six bodies are the Korean guide's curl `-d` bodies (seed 000_ecbfbf7b6b1579b9),
copied character for character with the placeholders replaced. The rest are the fact sheet's
section 1 shapes (the shared fact sheet `docs/instagram-api.md`).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from ig_outbound.producers.intent import MessageIntent
from ig_outbound.producers.validation import parse_intent
from ig_outbound.worker.payloads import build_body

IG_ID = "17841400000000001"
IGSID = "1254477777772919"
COMMENT_ID = "17900000000000001"
MID = "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjEyNTAyMjE2NTg5MTIx"
POST_ID = "17895695668004550"


def intent(content: dict[str, Any], **envelope: Any) -> MessageIntent:
    data: dict[str, Any] = {
        "idempotency_key": "golden:1",
        "account_id": IG_ID,
        "recipient": {"id": IGSID},
        "content": content,
    }
    data.update(envelope)
    return parse_intent(data)


# --- the seed's six curl bodies (placeholders substituted, otherwise verbatim) ------------

# <IGSID> -> 1254477777772919, <TEXT_OR_LINK> -> Hello! Our menu: https://example.com/menu
SEED_TEXT = """{
           "recipient":{
               "id":"1254477777772919"
           },
           "message":{
              "text":"Hello! Our menu: https://example.com/menu"
           }
        }"""

# <IMAGE_OR_GIF_URL> -> https://cdn.example.com/media/cat.gif
SEED_IMAGE = """{
           "recipient":{
               "id":"1254477777772919"
           },
           "message":{
              "attachment":{
               "type":"image",
               "payload":{
                 "url":"https://cdn.example.com/media/cat.gif"
               }
             }
           }
         }"""

# <AUDIO_OR_VIDEO_FILE_URL> -> https://cdn.example.com/media/voice.m4a
SEED_AUDIO = """{
           "recipient":{
               "id":"1254477777772919"
           },
           "message":{
              "attachment":{
               "type":"audio",
               "payload":{
                 "url":"https://cdn.example.com/media/voice.m4a"
               }
             }
          }
        }"""

SEED_STICKER = """{
           "recipient":{
               "id":"1254477777772919"
           },
           "message":{
              "attachment":{
                "type":"like_heart"
              }
            }
         }"""

# <MESSAGE_ID> -> aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjEyNTAyMjE2NTg5MTIx
SEED_REACT = """{
           "recipient":{
               "id":"1254477777772919"
           },
           "sender_action":"react",
           "payload":{
             "message_id":"aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjEyNTAyMjE2NTg5MTIx",
             "reaction":"love"
           }
         }"""

# <POST_ID> -> 17895695668004550
SEED_MEDIA_SHARE = """{
           "recipient":{
               "id":"1254477777772919"
           },
           "message":{
              "attachment":{
                "type":"MEDIA_SHARE",
                "payload":{
                  "id":"17895695668004550"
                }
              }
           }
        }"""


def test_seed_text_body_is_built_verbatim() -> None:
    built = build_body(
        intent({"kind": "text", "text": "Hello! Our menu: https://example.com/menu"})
    )
    assert built == json.loads(SEED_TEXT)


def test_seed_image_or_gif_body_is_built_verbatim() -> None:
    built = build_body(intent({"kind": "image", "url": "https://cdn.example.com/media/cat.gif"}))
    assert built == json.loads(SEED_IMAGE)


def test_seed_audio_body_is_built_verbatim() -> None:
    built = build_body(intent({"kind": "audio", "url": "https://cdn.example.com/media/voice.m4a"}))
    assert built == json.loads(SEED_AUDIO)


def test_seed_like_heart_sticker_body_is_built_verbatim() -> None:
    assert build_body(intent({"kind": "sticker"})) == json.loads(SEED_STICKER)


def test_seed_react_body_is_built_verbatim_and_love_is_the_default_reaction() -> None:
    explicit = build_body(intent({"kind": "react", "message_id": MID, "reaction": "love"}))
    default = build_body(intent({"kind": "react", "message_id": MID}))
    assert explicit == json.loads(SEED_REACT)
    assert default == json.loads(SEED_REACT)


def test_seed_media_share_body_is_built_verbatim() -> None:
    built = build_body(intent({"kind": "media_share", "post_id": POST_ID}))
    assert built == json.loads(SEED_MEDIA_SHARE)


# --- the fact sheet's other shapes (section 1) ----------------------------------------------

TO = {"id": IGSID}

# Fact sheet generic template example; "https://…" and "…" substituted.
FACT_SHEET_GENERIC = """{"recipient":{"id":"1254477777772919"},"message":{"attachment":{"type":\
"template","payload":{"template_type":"generic","elements":[{"title":"Welcome!","image_url":\
"https://example.com/img/welcome.png","subtitle":"We have the right hat for everyone.",\
"default_action":{"type":"web_url","url":"https://example.com/shop"},"buttons":[{"type":\
"web_url","url":"https://example.com/home","title":"View Website"},{"type":"postback","title":\
"Start Chatting","payload":"DEVELOPER_DEFINED_PAYLOAD"}]}]}}}}"""


def test_generic_template_matches_the_fact_sheet_example() -> None:
    content = {
        "kind": "generic_template",
        "elements": [
            {
                "title": "Welcome!",
                "image_url": "https://example.com/img/welcome.png",
                "subtitle": "We have the right hat for everyone.",
                "default_action": {"type": "web_url", "url": "https://example.com/shop"},
                "buttons": [
                    {"type": "web_url", "url": "https://example.com/home", "title": "View Website"},
                    {
                        "type": "postback",
                        "title": "Start Chatting",
                        "payload": "DEVELOPER_DEFINED_PAYLOAD",
                    },
                ],
            }
        ],
    }
    assert build_body(intent(content)) == json.loads(FACT_SHEET_GENERIC)


def test_generic_template_element_omits_absent_optional_fields() -> None:
    content = {
        "kind": "generic_template",
        "elements": [
            {"title": "Only a subtitle", "subtitle": "sub"},
            {
                "title": "Only a button",
                "buttons": [{"type": "postback", "title": "Go", "payload": "GO"}],
            },
        ],
    }
    assert build_body(intent(content)) == {
        "recipient": TO,
        "message": {
            "attachment": {
                "type": "template",
                "payload": {
                    "template_type": "generic",
                    "elements": [
                        {"title": "Only a subtitle", "subtitle": "sub"},
                        {
                            "title": "Only a button",
                            "buttons": [{"type": "postback", "title": "Go", "payload": "GO"}],
                        },
                    ],
                },
            }
        },
    }


def test_multiple_images_mixing_url_and_attachment_id_become_an_attachments_list() -> None:
    content = {
        "kind": "images",
        "images": [
            {"url": "https://cdn.example.com/media/1.png"},
            {"attachment_id": "1357924680"},
            {"url": "https://cdn.example.com/media/3.jpg"},
        ],
    }
    assert build_body(intent(content)) == {
        "recipient": TO,
        "message": {
            "attachments": [
                {"type": "image", "payload": {"url": "https://cdn.example.com/media/1.png"}},
                {"type": "image", "payload": {"attachment_id": "1357924680"}},
                {"type": "image", "payload": {"url": "https://cdn.example.com/media/3.jpg"}},
            ]
        },
    }


@pytest.mark.parametrize(
    ("kind", "url"),
    [
        ("file", "https://cdn.example.com/docs/menu.pdf"),
        ("video", "https://cdn.example.com/media/clip.mp4"),
        ("audio", "https://cdn.example.com/media/voice.wav"),
        ("image", "https://cdn.example.com/media/photo.jpeg"),
    ],
)
def test_single_media_by_url_is_an_attachment_of_its_own_type(kind: str, url: str) -> None:
    assert build_body(intent({"kind": kind, "url": url})) == {
        "recipient": TO,
        "message": {"attachment": {"type": kind, "payload": {"url": url}}},
    }


@pytest.mark.parametrize("kind", ["image", "audio", "video", "file"])
def test_single_media_by_attachment_id_uses_payload_attachment_id(kind: str) -> None:
    assert build_body(intent({"kind": kind, "attachment_id": "246810"})) == json.loads(
        '{"recipient":{"id":"1254477777772919"},"message":{"attachment":{"type":"'
        + kind
        + '","payload":{"attachment_id":"246810"}}}}'
    )


def test_unreact_body_has_message_id_and_no_reaction() -> None:
    assert build_body(intent({"kind": "unreact", "message_id": MID})) == json.loads(
        '{"recipient":{"id":"1254477777772919"},"sender_action":"unreact",'
        '"payload":{"message_id":"' + MID + '"}}'
    )


def test_react_with_an_emoji_passes_the_emoji_through() -> None:
    assert build_body(intent({"kind": "react", "message_id": MID, "reaction": "\U0001f44b"})) == {
        "recipient": TO,
        "sender_action": "react",
        "payload": {"message_id": MID, "reaction": "\U0001f44b"},
    }


def test_button_template_body() -> None:
    content = {
        "kind": "button_template",
        "text": "What do you want to do next?",
        "buttons": [
            {"type": "web_url", "url": "https://example.com/shop", "title": "Visit"},
            {"type": "postback", "title": "Talk to us", "payload": "TALK"},
        ],
    }
    assert build_body(intent(content)) == {
        "recipient": TO,
        "message": {
            "attachment": {
                "type": "template",
                "payload": {
                    "template_type": "button",
                    "text": "What do you want to do next?",
                    "buttons": [
                        {"type": "web_url", "url": "https://example.com/shop", "title": "Visit"},
                        {"type": "postback", "title": "Talk to us", "payload": "TALK"},
                    ],
                },
            }
        },
    }


# Fact sheet quick-reply body; <TEXT>, <T1>, <P1> substituted, a second reply added.
FACT_SHEET_QUICK_REPLIES = (
    '{"recipient":{"id":"1254477777772919"},"messaging_type":"RESPONSE","message":'
    '{"text":"Pick a color","quick_replies":[{"content_type":"text","title":"Red",'
    '"payload":"RED"},{"content_type":"text","title":"Green","payload":"GREEN"}]}}'
)


def test_quick_replies_body_carries_messaging_type_response() -> None:
    content = {
        "kind": "text",
        "text": "Pick a color",
        "quick_replies": [
            {"title": "Red", "payload": "RED"},
            {"content_type": "text", "title": "Green", "payload": "GREEN"},
        ],
    }
    assert build_body(intent(content)) == json.loads(FACT_SHEET_QUICK_REPLIES)


def test_plain_text_has_no_messaging_type() -> None:
    assert "messaging_type" not in build_body(intent({"kind": "text", "text": "hi"}))


def test_private_reply_addresses_the_comment() -> None:
    built = build_body(
        intent(
            {"kind": "text", "text": "Thanks for commenting!"}, recipient={"comment_id": COMMENT_ID}
        )
    )
    assert built == json.loads(
        '{"recipient":{"comment_id":"17900000000000001"},'
        '"message":{"text":"Thanks for commenting!"}}'
    )


@pytest.mark.parametrize("action", ["typing_on", "typing_off", "mark_seen"])
def test_typing_and_seen_bodies_hold_only_recipient_and_sender_action(action: str) -> None:
    assert build_body(intent({"kind": action})) == {"recipient": TO, "sender_action": action}


@pytest.mark.parametrize("action", ["typing_on", "typing_off", "mark_seen"])
def test_sender_action_ignores_envelope_options_that_graph_forbids(action: str) -> None:
    built = build_body(
        intent(
            {"kind": action},
            metadata={"trace": "abc"},
            automated=False,
            not_before="2030-01-01T00:00:00Z",
            not_after="2030-01-02T00:00:00Z",
            window_hint="2029-12-31T23:00:00+00:00",
        )
    )
    assert built == {"recipient": TO, "sender_action": action}


def test_reply_to_is_a_top_level_mid_object() -> None:
    built = build_body(intent({"kind": "text", "text": "Answering that"}, reply_to=MID))
    assert built == {
        "recipient": TO,
        "message": {"text": "Answering that"},
        "reply_to": {"mid": MID},
    }


def test_reply_to_works_on_media_messages_too() -> None:
    built = build_body(
        intent({"kind": "image", "url": "https://cdn.example.com/media/a.png"}, reply_to=MID)
    )
    assert built == {
        "recipient": TO,
        "message": {
            "attachment": {
                "type": "image",
                "payload": {"url": "https://cdn.example.com/media/a.png"},
            }
        },
        "reply_to": {"mid": MID},
    }


def test_human_agent_tag_sets_messaging_type_message_tag() -> None:
    built = build_body(
        intent({"kind": "text", "text": "A human here"}, tag="HUMAN_AGENT", automated=False)
    )
    assert built == json.loads(
        '{"recipient":{"id":"1254477777772919"},"messaging_type":"MESSAGE_TAG",'
        '"tag":"HUMAN_AGENT","message":{"text":"A human here"}}'
    )


def test_human_agent_tag_wins_over_quick_replies_response_type() -> None:
    content = {
        "kind": "text",
        "text": "Pick one",
        "quick_replies": [{"title": "A", "payload": "A"}],
    }
    built = build_body(intent(content, tag="HUMAN_AGENT", automated=False))
    assert built == {
        "recipient": TO,
        "messaging_type": "MESSAGE_TAG",
        "tag": "HUMAN_AGENT",
        "message": {
            "text": "Pick one",
            "quick_replies": [{"content_type": "text", "title": "A", "payload": "A"}],
        },
    }


def test_human_agent_reply_to_a_message_carries_tag_and_reply_to() -> None:
    built = build_body(
        intent({"kind": "sticker"}, tag="HUMAN_AGENT", automated=False, reply_to=MID)
    )
    assert built == {
        "recipient": TO,
        "messaging_type": "MESSAGE_TAG",
        "tag": "HUMAN_AGENT",
        "message": {"attachment": {"type": "like_heart"}},
        "reply_to": {"mid": MID},
    }


def test_envelope_only_fields_never_reach_the_graph_body() -> None:
    built = build_body(
        intent(
            {"kind": "text", "text": "hi"},
            metadata={"campaign": "spring", "n": 3},
            not_before="2030-01-01T00:00:00Z",
            not_after="2030-01-02T00:00:00+09:00",
            window_hint="2029-12-31T23:00:00Z",
            automated=False,
        )
    )
    assert built == {"recipient": TO, "message": {"text": "hi"}}


def test_text_is_passed_through_byte_for_byte() -> None:
    text = "  안녕하세요 👋\nline two\ttab  "
    assert build_body(intent({"kind": "text", "text": text})) == {
        "recipient": TO,
        "message": {"text": text},
    }
