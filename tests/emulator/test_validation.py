"""Each validation rule: a violating body gets Graph's error and nothing is recorded as sent."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ig_outbound.emulator import EmulatorControl
from tests.emulator.conftest import TOKEN_A, USER_1, error_of, post

TO = {"id": USER_1}
MID = "aWdfbWVzc2FnZV9pdGVtOjE6SUdNZXNzYWdlVGhyZWFkOjE3ODQxOjE"
INVALID_DATA = 2534015  # "invalid message data" (fact sheet §4)
URL = "https://e.com/a.png"


def _image(url: str = URL) -> dict[str, Any]:
    return {"type": "image", "payload": {"url": url}}


def _msg(message: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"recipient": TO, "message": message, **top}


def _attach(attachment: dict[str, Any]) -> dict[str, Any]:
    return _msg({"attachment": attachment})


def _qr(n: int = 1, **item: Any) -> dict[str, Any]:
    reply = {"content_type": "text", "title": "T", "payload": "P", **item}
    return _msg({"text": "pick", "quick_replies": [reply] * n})


def _element(**fields: Any) -> dict[str, Any]:
    return {"title": "Hat", "subtitle": "Nice", **fields}


def _generic(*elements: dict[str, Any]) -> dict[str, Any]:
    return _attach(
        {"type": "template", "payload": {"template_type": "generic", "elements": list(elements)}}
    )


def _button_template(text: str = "Next?", n_buttons: int = 1) -> dict[str, Any]:
    button = {"type": "postback", "title": "Go", "payload": "GO"}
    payload = {"template_type": "button", "text": text, "buttons": [button] * n_buttons}
    return _attach({"type": "template", "payload": payload})


def _react(**payload: Any) -> dict[str, Any]:
    return {"recipient": TO, "sender_action": "react", "payload": payload}


# (id, body, expected subcode); all are HTTP 400, IGApiException, code 100.
CASES: list[tuple[str, dict[str, Any], int | None]] = [
    # structure
    ("message_and_sender_action", {**_msg({"text": "x"}), "sender_action": "typing_on"}, None),
    ("neither_message_nor_action", {"recipient": TO}, None),
    ("missing_recipient", {"message": {"text": "x"}}, None),
    ("recipient_empty", {"recipient": {}, "message": {"text": "x"}}, None),
    (
        "recipient_id_and_comment_id",
        {"recipient": {"id": USER_1, "comment_id": "1790"}, "message": {"text": "x"}},
        None,
    ),
    ("recipient_not_object", {"recipient": USER_1, "message": {"text": "x"}}, None),
    ("unknown_top_level_key", _msg({"text": "x"}, metadata="m"), None),
    ("payload_with_message", _msg({"text": "x"}, payload={"message_id": MID}), None),
    ("unknown_recipient", {"recipient": {"id": "999999999"}, "message": {"text": "x"}}, 2534014),
    ("recipient_username", {"recipient": {"id": "someone"}, "message": {"text": "x"}}, 2534014),
    # text
    ("text_empty", _msg({"text": ""}), INVALID_DATA),
    ("text_not_string", _msg({"text": 123}), INVALID_DATA),
    ("text_1001_bytes", _msg({"text": "é" * 500 + "a"}), INVALID_DATA),
    ("message_empty", _msg({}), INVALID_DATA),
    ("message_unknown_key", _msg({"text": "x", "metadata": "m"}), INVALID_DATA),
    ("message_not_object", _msg("hello"), INVALID_DATA),  # type: ignore[arg-type]
    # quick replies
    ("qr_14", _qr(14), INVALID_DATA),
    ("qr_empty", _qr(0), INVALID_DATA),
    ("qr_not_text_type", _qr(content_type="user_email"), INVALID_DATA),
    (
        "qr_missing_payload",
        _msg({"text": "x", "quick_replies": [{"content_type": "text", "title": "T"}]}),
        INVALID_DATA,
    ),
    ("qr_payload_1001", _qr(payload="p" * 1001), INVALID_DATA),
    (
        "qr_with_attachment",
        _msg({"attachment": _image(), "quick_replies": _qr()["message"]["quick_replies"]}),
        INVALID_DATA,
    ),
    # attachments
    ("text_and_attachment", _msg({"text": "x", "attachment": _image()}), INVALID_DATA),
    (
        "attachment_and_attachments",
        _msg({"attachment": _image(), "attachments": [_image()]}),
        INVALID_DATA,
    ),
    (
        "attachment_unknown_type",
        _attach({"type": "sticker", "payload": {"url": URL}}),
        INVALID_DATA,
    ),
    ("attachment_type_case", _attach({"type": "IMAGE", "payload": {"url": URL}}), INVALID_DATA),
    (
        "media_url_and_id",
        _attach({"type": "image", "payload": {"url": URL, "attachment_id": "1"}}),
        INVALID_DATA,
    ),
    ("media_no_payload", _attach({"type": "video"}), INVALID_DATA),
    ("media_url_ftp", _attach(_image("ftp://e.com/a.png")), INVALID_DATA),
    ("media_url_relative", _attach(_image("/a.png")), INVALID_DATA),
    (
        "like_heart_with_payload",
        _attach({"type": "like_heart", "payload": {"url": URL}}),
        INVALID_DATA,
    ),
    ("media_share_no_id", _attach({"type": "MEDIA_SHARE", "payload": {}}), INVALID_DATA),
    ("attachments_11", _msg({"attachments": [_image()] * 11}), INVALID_DATA),
    ("attachments_empty", _msg({"attachments": []}), INVALID_DATA),
    (
        "attachments_video",
        _msg({"attachments": [_image(), {"type": "video", "payload": {"url": URL}}]}),
        INVALID_DATA,
    ),
    # generic template
    ("generic_11_elements", _generic(*[_element()] * 11), INVALID_DATA),
    ("generic_no_elements", _generic(), INVALID_DATA),
    ("generic_title_81", _generic(_element(title="t" * 81)), INVALID_DATA),
    ("generic_no_title", _generic({"subtitle": "s"}), INVALID_DATA),
    ("generic_subtitle_81", _generic(_element(subtitle="s" * 81)), INVALID_DATA),
    ("generic_only_title", _generic({"title": "Hat"}), INVALID_DATA),
    (
        "generic_4_buttons",
        _generic(_element(buttons=[{"type": "postback", "title": "b", "payload": "p"}] * 4)),
        INVALID_DATA,
    ),
    (
        "generic_phone_button",
        _generic(_element(buttons=[{"type": "phone_number", "title": "Call", "payload": "+1"}])),
        INVALID_DATA,
    ),
    (
        "generic_web_url_no_url",
        _generic(_element(buttons=[{"type": "web_url", "title": "Go"}])),
        INVALID_DATA,
    ),
    (
        "generic_default_action_postback",
        _generic(_element(default_action={"type": "postback", "url": URL})),
        INVALID_DATA,
    ),
    ("generic_bad_image_url", _generic(_element(image_url="not a url")), INVALID_DATA),
    (
        "template_unknown_type",
        _attach({"type": "template", "payload": {"template_type": "media"}}),
        INVALID_DATA,
    ),
    # button template
    ("button_text_641", _button_template(text="t" * 641), INVALID_DATA),
    ("button_text_empty", _button_template(text=""), INVALID_DATA),
    ("button_0_buttons", _button_template(n_buttons=0), INVALID_DATA),
    ("button_4_buttons", _button_template(n_buttons=4), INVALID_DATA),
    # sender actions
    ("sender_action_unknown", {"recipient": TO, "sender_action": "typing"}, None),
    ("react_no_payload", {"recipient": TO, "sender_action": "react"}, None),
    ("react_no_reaction", _react(message_id=MID), None),
    ("react_empty_reaction", _react(message_id=MID, reaction=""), None),
    ("react_no_message_id", _react(reaction="love"), None),
    (
        "react_with_reply_to",
        {**_react(message_id=MID, reaction="love"), "reply_to": {"mid": MID}},
        None,
    ),
    (
        "unreact_with_reaction",
        {
            "recipient": TO,
            "sender_action": "unreact",
            "payload": {"message_id": MID, "reaction": "love"},
        },
        None,
    ),
    (
        "typing_with_payload",
        {"recipient": TO, "sender_action": "typing_on", "payload": {"message_id": MID}},
        None,
    ),
    (
        "mark_seen_with_messaging_type",
        {"recipient": TO, "sender_action": "mark_seen", "messaging_type": "RESPONSE"},
        None,
    ),
    (
        "action_to_comment",
        {"recipient": {"comment_id": "1790"}, "sender_action": "typing_on"},
        None,
    ),
    # messaging_type / tag / reply_to
    ("messaging_type_unknown", _msg({"text": "x"}, messaging_type="PROMO"), None),
    (
        "tag_other_than_human_agent",
        _msg({"text": "x"}, messaging_type="MESSAGE_TAG", tag="ACCOUNT_UPDATE"),
        None,
    ),
    ("tag_without_message_tag_type", _msg({"text": "x"}, tag="HUMAN_AGENT"), None),
    (
        "tag_with_response_type",
        _msg({"text": "x"}, messaging_type="RESPONSE", tag="HUMAN_AGENT"),
        None,
    ),
    ("message_tag_without_tag", _msg({"text": "x"}, messaging_type="MESSAGE_TAG"), None),
    ("reply_to_without_mid", _msg({"text": "x"}, reply_to={}), None),
]


@pytest.mark.parametrize(("body", "subcode"), [pytest.param(b, s, id=i) for i, b, s in CASES])
def test_violation_is_rejected(
    graph: httpx.Client, control: EmulatorControl, body: dict[str, Any], subcode: int | None
) -> None:
    response = post(graph, body)
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["type"] == "IGApiException"
    assert error["code"] == 100
    assert error.get("error_subcode") == subcode
    assert error["message"]
    assert len(error["fbtrace_id"]) >= 20
    seen = control.calls()
    assert seen["calls"] == []
    [rejected] = seen["rejected"]
    assert (rejected["code"], rejected["subcode"], rejected["status"]) == (100, subcode, 400)


@pytest.mark.parametrize(
    "raw",
    [b'{"recipient": {"id": "1"}, "message": ', b"[1, 2]", b"\xff\xfe"],
    ids=["truncated", "not_object", "not_utf8"],
)
def test_malformed_json_is_code_100(
    graph: httpx.Client, control: EmulatorControl, raw: bytes
) -> None:
    response = graph.post(
        "/v23.0/me/messages",
        content=raw,
        headers={"Authorization": f"Bearer {TOKEN_A}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    error = error_of(response)
    assert (error["type"], error["code"]) == ("IGApiException", 100)
    assert "error_subcode" not in error
    assert control.calls()["calls"] == []
