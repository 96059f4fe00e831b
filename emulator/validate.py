"""Strict validation of a ``/messages`` body against the documented shapes (fact sheet §1, §9).

Errors: top-level/structural problems -> code 100 without subcode; content of ``message``
that is invalid for its type -> 100 / 2534015 ("invalid message data"). Text over 1000 bytes
is one of those (the exact Graph answer is UNCONFIRMED, §10.10).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from ig_outbound.emulator.graph_errors import (
    GraphError,
    invalid_message_data,
    invalid_parameter,
    no_matching_user,
)

ErrorFactory = Callable[[str], GraphError]

TEXT_MAX_BYTES = 1000
QUICK_REPLIES_MAX = 13
QUICK_REPLY_TITLE_MAX = 20  # longer titles are truncated by Graph, not rejected
PAYLOAD_MAX = 1000  # Messenger limit for quick reply / postback payloads (IG: UNCONFIRMED)
IMAGES_MAX = 10
GENERIC_ELEMENTS_MAX = 10
GENERIC_TITLE_MAX = 80
GENERIC_SUBTITLE_MAX = 80
BUTTONS_MAX = 3
BUTTON_TEXT_MAX = 640

TOP_LEVEL_KEYS = frozenset(
    {"recipient", "message", "sender_action", "payload", "messaging_type", "tag", "reply_to"}
)
MESSAGING_TYPES = frozenset({"RESPONSE", "UPDATE", "MESSAGE_TAG"})
ALLOWED_TAGS = frozenset({"HUMAN_AGENT"})  # the only tag available on IG (fact sheet §1.2)
SENDER_ACTIONS = frozenset({"react", "unreact", "typing_on", "typing_off", "mark_seen"})
MEDIA_TYPES = frozenset({"image", "audio", "video", "file"})

Kind = Literal["message", "sender_action"]


@dataclass(frozen=True)
class Truncation:
    path: str
    original: str
    delivered: str


@dataclass
class ValidatedSend:
    """What a valid body asks for; later checks (window, rate) read this, not the raw dict."""

    kind: Kind
    recipient_id: str | None  # IGSID, or None for a private reply until resolved
    comment_id: str | None
    sender_action: str | None = None
    # text | image | images | audio | video | file | like_heart | media_share |
    # generic_template | button_template; None for sender actions.
    message_kind: str | None = None
    messaging_type: str | None = None
    tag: str | None = None
    reply_to_mid: str | None = None
    truncations: list[Truncation] = field(default_factory=list)


# --- small helpers ---------------------------------------------------------------------


def _obj(value: Any, name: str, err: ErrorFactory) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise err(f"param {name} must be an object")
    return value


def _only(obj: Mapping[str, Any], allowed: Iterable[str], name: str, err: ErrorFactory) -> None:
    extra = sorted(set(obj) - set(allowed))
    if extra:
        raise err(f"param {name} has unexpected field(s): {', '.join(extra)}")


def _text(value: Any, name: str, err: ErrorFactory, max_chars: int | None = None) -> str:
    if not isinstance(value, str) or value == "":
        raise err(f"param {name} must be a non-empty string")
    if max_chars is not None and len(value) > max_chars:
        raise err(f"param {name} must be at most {max_chars} characters")
    return value


def _id(value: Any, name: str, err: ErrorFactory) -> str:
    # Graph accepts ids as JSON strings or numbers; booleans are not ids.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _text(value, name, err)


def _url(value: Any, name: str, err: ErrorFactory) -> str:
    text = _text(value, name, err)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in text):
        raise err(f"param {name} must be a valid http(s) URL")
    return text


def _list(value: Any, name: str, lo: int, hi: int, err: ErrorFactory) -> list[Any]:
    if not isinstance(value, list):
        raise err(f"param {name} must be a list")
    if not lo <= len(value) <= hi:
        raise err(f"param {name} must have between {lo} and {hi} items")
    return value


# --- entry point -------------------------------------------------------------------------


def validate_send(body: Mapping[str, Any]) -> ValidatedSend:
    """Check a whole body; raise ``GraphError`` on the first violation."""
    _only(body, TOP_LEVEL_KEYS, "request", invalid_parameter)
    has_message, has_action = "message" in body, "sender_action" in body
    if has_message == has_action:
        raise invalid_parameter("Must send either message or sender_action, not both or neither")
    if "recipient" not in body:
        raise invalid_parameter("param recipient must be non-empty")
    recipient_id, comment_id = _recipient(body["recipient"])
    if has_action:
        return _sender_action(body, recipient_id, comment_id)
    return _message_send(body, recipient_id, comment_id)


def _recipient(value: Any) -> tuple[str | None, str | None]:
    recipient = _obj(value, "recipient", invalid_parameter)
    _only(recipient, ("id", "comment_id"), "recipient", invalid_parameter)
    if len(recipient) != 1:
        raise invalid_parameter("param recipient must have exactly one of id or comment_id")
    if "comment_id" in recipient:
        return None, _id(recipient["comment_id"], "recipient[comment_id]", invalid_parameter)
    igsid = _id(recipient["id"], "recipient[id]", invalid_parameter)
    if not igsid.isdigit():
        raise no_matching_user()  # usernames / non-IGSIDs are "no matching user" on Graph
    return igsid, None


# --- sender actions ------------------------------------------------------------------------


def _sender_action(
    body: Mapping[str, Any], recipient_id: str | None, comment_id: str | None
) -> ValidatedSend:
    action = body["sender_action"]
    if action not in SENDER_ACTIONS:
        raise invalid_parameter(f"param sender_action must be one of {sorted(SENDER_ACTIONS)}")
    if comment_id is not None:
        raise invalid_parameter("sender_action needs recipient[id], not a comment")
    if action in ("react", "unreact"):
        _only(body, ("recipient", "sender_action", "payload"), "request", invalid_parameter)
        _reaction_payload(action, body.get("payload"))
    else:
        # IGL-SA: "the request must contain only recipient and sender_action".
        _only(body, ("recipient", "sender_action"), "request", invalid_parameter)
    return ValidatedSend("sender_action", recipient_id, None, sender_action=action)


def _reaction_payload(action: str, value: Any) -> None:
    if value is None:
        raise invalid_parameter(f"sender_action {action} needs payload[message_id]")
    payload = _obj(value, "payload", invalid_parameter)
    if action == "unreact":
        _only(payload, ("message_id",), "payload", invalid_parameter)
    else:
        _only(payload, ("message_id", "reaction"), "payload", invalid_parameter)
        _text(payload.get("reaction"), "payload[reaction]", invalid_parameter)
    _text(payload.get("message_id"), "payload[message_id]", invalid_parameter)


# --- messages --------------------------------------------------------------------------------


def _message_send(
    body: Mapping[str, Any], recipient_id: str | None, comment_id: str | None
) -> ValidatedSend:
    if "payload" in body:
        raise invalid_parameter("param payload is only allowed with sender_action")
    messaging_type, tag = _messaging_type_and_tag(body)
    reply_to_mid = None
    if "reply_to" in body:
        reply_to = _obj(body["reply_to"], "reply_to", invalid_parameter)
        _only(reply_to, ("mid",), "reply_to", invalid_parameter)
        reply_to_mid = _text(reply_to.get("mid"), "reply_to[mid]", invalid_parameter)
    truncations: list[Truncation] = []
    kind = _message(body["message"], truncations)
    return ValidatedSend(
        "message",
        recipient_id,
        comment_id,
        message_kind=kind,
        messaging_type=messaging_type,
        tag=tag,
        reply_to_mid=reply_to_mid,
        truncations=truncations,
    )


def _messaging_type_and_tag(body: Mapping[str, Any]) -> tuple[str | None, str | None]:
    messaging_type = body.get("messaging_type")
    if messaging_type is not None and messaging_type not in MESSAGING_TYPES:
        raise invalid_parameter(f"param messaging_type must be one of {sorted(MESSAGING_TYPES)}")
    tag = body.get("tag")
    if tag is not None:
        if tag not in ALLOWED_TAGS:
            raise invalid_parameter("param tag must be HUMAN_AGENT on Instagram")
        if messaging_type != "MESSAGE_TAG":
            raise invalid_parameter("param tag requires messaging_type MESSAGE_TAG")
    elif messaging_type == "MESSAGE_TAG":
        raise invalid_parameter("messaging_type MESSAGE_TAG requires param tag")
    return messaging_type, tag


def _message(value: Any, truncations: list[Truncation]) -> str:
    err = invalid_message_data
    message = _obj(value, "message", err)
    _only(message, ("text", "quick_replies", "attachment", "attachments"), "message", err)
    contents = [k for k in ("text", "attachment", "attachments") if k in message]
    if len(contents) != 1:
        raise err("param message must have exactly one of text, attachment or attachments")
    if "quick_replies" in message and "text" not in message:
        raise err("param message[quick_replies] is only allowed with message[text]")
    if "text" in message:
        text = _text(message["text"], "message[text]", err)
        if len(text.encode("utf-8")) > TEXT_MAX_BYTES:
            raise err(f"param message[text] must be at most {TEXT_MAX_BYTES} UTF-8 bytes")
        if "quick_replies" in message:
            _quick_replies(message["quick_replies"], truncations)
        return "text"
    if "attachments" in message:
        return _attachments(message["attachments"])
    return _attachment(message["attachment"], "message[attachment]")


def _quick_replies(value: Any, truncations: list[Truncation]) -> None:
    err = invalid_message_data
    items = _list(value, "message[quick_replies]", 1, QUICK_REPLIES_MAX, err)
    for i, item in enumerate(items):
        name = f"message[quick_replies][{i}]"
        reply = _obj(item, name, err)
        _only(reply, ("content_type", "title", "payload"), name, err)
        # user_phone_number / user_email were disabled for IG on Oct 5 2026 (IG-CL).
        if reply.get("content_type") != "text":
            raise err(f"param {name}[content_type] must be text")
        title = _text(reply.get("title"), f"{name}[title]", err)
        _text(reply.get("payload"), f"{name}[payload]", err, PAYLOAD_MAX)
        if len(title) > QUICK_REPLY_TITLE_MAX:
            truncations.append(
                Truncation(
                    f"message.quick_replies[{i}].title", title, title[:QUICK_REPLY_TITLE_MAX]
                )
            )


def _attachments(value: Any) -> str:
    err = invalid_message_data
    # IGL-SEND's single-image sample uses an object here; Graph accepts it as one image.
    items = [value] if isinstance(value, dict) else value
    items = _list(items, "message[attachments]", 1, IMAGES_MAX, err)
    for i, item in enumerate(items):
        name = f"message[attachments][{i}]"
        attachment = _obj(item, name, err)
        if attachment.get("type") != "image":
            raise err(f"param {name}[type] must be image (only images can be sent as a list)")
        _media(attachment, name)
    return "images" if len(items) > 1 else "image"


def _attachment(value: Any, name: str) -> str:
    err = invalid_message_data
    attachment = _obj(value, name, err)
    kind = attachment.get("type")
    if kind in MEDIA_TYPES:
        _media(attachment, name)
        return str(kind)
    if kind == "like_heart":
        _only(attachment, ("type",), name, err)
        return "like_heart"
    if kind == "MEDIA_SHARE":
        _only(attachment, ("type", "payload"), name, err)
        payload = _obj(attachment.get("payload"), f"{name}[payload]", err)
        _only(payload, ("id",), f"{name}[payload]", err)
        _id(payload.get("id"), f"{name}[payload][id]", err)
        return "media_share"
    if kind == "template":
        _only(attachment, ("type", "payload"), name, err)
        return _template(attachment.get("payload"), f"{name}[payload]")
    raise err(f"param {name}[type] is not a supported attachment type")


def _media(attachment: Mapping[str, Any], name: str) -> None:
    err = invalid_message_data
    _only(attachment, ("type", "payload"), name, err)
    payload = _obj(attachment.get("payload"), f"{name}[payload]", err)
    _only(payload, ("url", "attachment_id"), f"{name}[payload]", err)
    if len(payload) != 1:
        raise err(f"param {name}[payload] must have exactly one of url or attachment_id")
    if "url" in payload:
        _url(payload["url"], f"{name}[payload][url]", err)
    else:
        _id(payload["attachment_id"], f"{name}[payload][attachment_id]", err)


# --- templates --------------------------------------------------------------------------------


def _template(value: Any, name: str) -> str:
    err = invalid_message_data
    payload = _obj(value, name, err)
    template_type = payload.get("template_type")
    if template_type == "generic":
        _only(payload, ("template_type", "elements"), name, err)
        elements = _list(payload.get("elements"), f"{name}[elements]", 1, GENERIC_ELEMENTS_MAX, err)
        for i, element in enumerate(elements):
            _generic_element(element, f"{name}[elements][{i}]")
        return "generic_template"
    if template_type == "button":
        _only(payload, ("template_type", "text", "buttons"), name, err)
        _text(payload.get("text"), f"{name}[text]", err, BUTTON_TEXT_MAX)
        _buttons(payload.get("buttons"), f"{name}[buttons]")
        return "button_template"
    raise err(f"param {name}[template_type] must be generic or button")


def _generic_element(value: Any, name: str) -> None:
    err = invalid_message_data
    element = _obj(value, name, err)
    _only(element, ("title", "subtitle", "image_url", "default_action", "buttons"), name, err)
    _text(element.get("title"), f"{name}[title]", err, GENERIC_TITLE_MAX)
    if len(element) < 2:
        raise err(f"param {name} needs at least one property besides title")
    if "subtitle" in element:
        _text(element["subtitle"], f"{name}[subtitle]", err, GENERIC_SUBTITLE_MAX)
    if "image_url" in element:
        _url(element["image_url"], f"{name}[image_url]", err)
    if "default_action" in element:
        action = _obj(element["default_action"], f"{name}[default_action]", err)
        _only(action, ("type", "url"), f"{name}[default_action]", err)
        if action.get("type") != "web_url":
            raise err(f"param {name}[default_action][type] must be web_url")
        _url(action.get("url"), f"{name}[default_action][url]", err)
    if "buttons" in element:
        _buttons(element["buttons"], f"{name}[buttons]")


def _buttons(value: Any, name: str) -> None:
    err = invalid_message_data
    buttons = _list(value, name, 1, BUTTONS_MAX, err)
    for i, item in enumerate(buttons):
        button_name = f"{name}[{i}]"
        button = _obj(item, button_name, err)
        kind = button.get("type")
        if kind == "postback":
            _only(button, ("type", "title", "payload"), button_name, err)
            _text(button.get("payload"), f"{button_name}[payload]", err, PAYLOAD_MAX)
        elif kind == "web_url":
            _only(button, ("type", "url", "title"), button_name, err)
            _url(button.get("url"), f"{button_name}[url]", err)
        else:
            # Only postback and web_url buttons exist on Instagram (IGL-GT, IGL-BT).
            raise err(f"param {button_name}[type] must be postback or web_url")
        _text(button.get("title"), f"{button_name}[title]", err)
