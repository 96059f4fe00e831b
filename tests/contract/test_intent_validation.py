"""`parse_intent`: every kind validates; bad intents name every problem at its exact `loc`."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ig_outbound.producers.errors import IntentError
from ig_outbound.producers.intent import ALL_KINDS, MessageIntent
from ig_outbound.producers.validation import parse_intent

IG_ID = "17841400000000001"
IGSID = "1254477777772919"
MID = "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjEyNTAy"
URL = "https://cdn.example.com/media/a.png"

Json = dict[str, Any]

# One good content per kind (all 15).
GOOD_CONTENT: dict[str, Json] = {
    "text": {"kind": "text", "text": "hello https://example.com/x"},
    "image": {"kind": "image", "url": URL},
    "audio": {"kind": "audio", "attachment_id": "1357924680"},
    "video": {"kind": "video", "url": "https://cdn.example.com/media/clip.mp4"},
    "file": {"kind": "file", "url": "https://cdn.example.com/docs/menu.pdf"},
    "images": {"kind": "images", "images": [{"url": URL}, {"attachment_id": "42"}]},
    "sticker": {"kind": "sticker"},
    "media_share": {"kind": "media_share", "post_id": "17895695668004550"},
    "generic_template": {
        "kind": "generic_template",
        "elements": [{"title": "Welcome!", "subtitle": "Hats for everyone"}],
    },
    "button_template": {
        "kind": "button_template",
        "text": "Next?",
        "buttons": [{"type": "postback", "title": "Talk", "payload": "TALK"}],
    },
    "react": {"kind": "react", "message_id": MID},
    "unreact": {"kind": "unreact", "message_id": MID},
    "typing_on": {"kind": "typing_on"},
    "typing_off": {"kind": "typing_off"},
    "mark_seen": {"kind": "mark_seen"},
}


def good(content: Json | None = None, **envelope: Any) -> Json:
    data: Json = {
        "idempotency_key": "mid.123:reply:0",
        "account_id": IG_ID,
        "recipient": {"id": IGSID},
        "content": copy.deepcopy(content if content is not None else GOOD_CONTENT["text"]),
    }
    data.update(envelope)
    return data


def problems_of(data: Any) -> list[tuple[str, str]]:
    """(loc, type) of every problem, in the order reported; fails if the input is valid."""
    with pytest.raises(IntentError) as info:
        parse_intent(data)
    return [(p.loc, p.type) for p in info.value.problems]


def messages_of(data: Any) -> list[str]:
    with pytest.raises(IntentError) as info:
        parse_intent(data)
    return [p.msg for p in info.value.problems]


# --- good input -------------------------------------------------------------------------------


def test_good_content_covers_every_kind() -> None:
    assert set(GOOD_CONTENT) == set(ALL_KINDS)
    assert len(ALL_KINDS) == 15


@pytest.mark.parametrize("kind", sorted(GOOD_CONTENT))
def test_every_kind_validates_from_dict_and_from_json_text(kind: str) -> None:
    data = good(GOOD_CONTENT[kind])
    from_dict = parse_intent(data)
    assert isinstance(from_dict, MessageIntent)
    assert from_dict.kind == kind
    assert from_dict.content.kind == kind
    assert parse_intent(json.dumps(data)) == from_dict
    assert parse_intent(json.dumps(data).encode()) == from_dict
    assert parse_intent(from_dict) is from_dict


@pytest.mark.parametrize("kind", sorted(GOOD_CONTENT))
def test_a_validated_intent_round_trips_through_its_own_json(kind: str) -> None:
    first = parse_intent(good(GOOD_CONTENT[kind]))
    assert parse_intent(first.model_dump_json()) == first


def test_envelope_defaults() -> None:
    parsed = parse_intent(good())
    assert parsed.v == 1
    assert parsed.automated is True
    assert parsed.tag is None
    assert parsed.reply_to is None
    assert parsed.metadata == {}
    assert parsed.not_before is None and parsed.not_after is None


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("a" * 1000, id="1000-ascii-bytes"),
        pytest.param("é" * 500, id="500x2-byte-chars"),
        pytest.param("가" * 333 + "a", id="333x3-byte-chars-plus-1"),
        pytest.param("\U0001f600" * 250, id="250x4-byte-emoji"),
    ],
)
def test_text_of_exactly_1000_utf8_bytes_is_accepted(text: str) -> None:
    assert len(text.encode("utf-8")) == 1000
    parsed = parse_intent(good({"kind": "text", "text": text}))
    assert parsed.content.kind == "text"


def test_limits_at_their_maximum_are_accepted() -> None:
    button = {"type": "web_url", "title": "t" * 20, "url": "https://example.com/b"}
    cases = [
        {
            "kind": "text",
            "text": "pick",
            "quick_replies": [{"title": "q" * 20, "payload": "p" * 1000}] * 13,
        },
        {"kind": "images", "images": [{"url": URL}] * 10},
        {
            "kind": "generic_template",
            "elements": [{"title": "t" * 80, "subtitle": "s" * 80, "buttons": [button] * 3}] * 10,
        },
        {"kind": "button_template", "text": "x" * 640, "buttons": [button] * 3},
    ]
    for content in cases:
        assert parse_intent(good(content)).kind == content["kind"]
    assert parse_intent(good(idempotency_key="k" * 200)).idempotency_key == "k" * 200


def test_metadata_of_exactly_1024_json_bytes_is_accepted() -> None:
    # {"k":"<1016 chars>"} is 8 + 1016 = 1024 bytes as compact JSON.
    metadata = {"k": "v" * 1016}
    assert len(json.dumps(metadata, separators=(",", ":")).encode()) == 1024
    assert parse_intent(good(metadata=metadata)).metadata == metadata


def test_human_agent_written_by_a_human_is_accepted() -> None:
    parsed = parse_intent(good(tag="HUMAN_AGENT", automated=False))
    assert parsed.tag is not None and parsed.tag.value == "HUMAN_AGENT"


def test_private_reply_with_text_is_accepted() -> None:
    parsed = parse_intent(good(recipient={"comment_id": "17900000000000001"}))
    assert parsed.recipient.comment_id == "17900000000000001"
    assert parsed.conversation() == f"{IG_ID}:comment:17900000000000001"


def test_aware_datetimes_in_order_are_accepted() -> None:
    parsed = parse_intent(
        good(not_before="2030-01-01T00:00:00+09:00", not_after="2030-01-01T00:00:01+09:00")
    )
    assert parsed.not_before is not None and parsed.not_before.utcoffset() is not None


# --- bad input: one problem each, exact loc and type --------------------------------------------

Mutation = Callable[[Json], None]


def _set(path: str, value: Any) -> Mutation:
    def apply(data: Json) -> None:
        *parents, last = path.split(".")
        node = data
        for part in parents:
            node = node[part]
        node[last] = value

    return apply


def _del(path: str) -> Mutation:
    def apply(data: Json) -> None:
        *parents, last = path.split(".")
        node = data
        for part in parents:
            node = node[part]
        del node[last]

    return apply


def _content(content: Json) -> Mutation:
    return _set("content", content)


def _qr(n: int, title: str = "ok") -> list[Json]:
    return [{"title": title, "payload": f"P{i}"} for i in range(n)]


PB = {"type": "postback", "title": "Go", "payload": "GO"}

BAD: list[Any] = [
    # wrong types
    pytest.param(
        _set("account_id", 17841400000000001), [("account_id", "string_type")], id="account-int"
    ),
    pytest.param(_set("recipient", IGSID), [("recipient", "model_type")], id="recipient-str"),
    pytest.param(_set("recipient.id", 5), [("recipient.id", "string_type")], id="recipient-id-int"),
    pytest.param(_set("content.text", 5), [("content.text", "string_type")], id="text-int"),
    pytest.param(_set("automated", "maybe"), [("automated", "bool_parsing")], id="automated-str"),
    pytest.param(_set("metadata", ["a"]), [("metadata", "dict_type")], id="metadata-list"),
    pytest.param(
        _set("content", "hello"), [("content", "model_attributes_type")], id="content-str"
    ),
    pytest.param(_set("v", 2), [("v", "literal_error")], id="version-2"),
    pytest.param(_set("tag", "ACCOUNT_UPDATE"), [("tag", "enum")], id="tag-not-on-ig"),
    pytest.param(
        _set("metadata", {"nested": {"a": 1}}),
        [
            ("metadata.nested.str", "string_type"),
            ("metadata.nested.int", "int_type"),
            ("metadata.nested.float", "float_type"),
            ("metadata.nested.bool", "bool_type"),
        ],
        id="metadata-nested",
    ),
    # kinds and extra fields
    pytest.param(_content({"kind": "poll"}), [("content", "union_tag_invalid")], id="unknown-kind"),
    pytest.param(_content({"text": "hi"}), [("content", "union_tag_not_found")], id="no-kind"),
    pytest.param(_set("urgency", "high"), [("urgency", "extra_forbidden")], id="extra-top"),
    pytest.param(_set("priority", "high"), [("priority", "enum")], id="unknown-priority"),
    pytest.param(
        _set("content.bold", True), [("content.bold", "extra_forbidden")], id="extra-content"
    ),
    pytest.param(
        _set("recipient.username", "bob"),
        [("recipient.username", "extra_forbidden")],
        id="extra-recipient",
    ),
    pytest.param(
        _content({"kind": "typing_on", "text": "x"}),
        [("content.text", "extra_forbidden")],
        id="extra-action",
    ),
    pytest.param(
        _content({"kind": "sticker", "sticker": "thumbs_up"}),
        [("content.sticker", "literal_error")],
        id="other-sticker",
    ),
    # text
    pytest.param(
        _set("content.text", "a" * 1001), [("content.text", "value_error")], id="text-1001-bytes"
    ),
    pytest.param(
        _set("content.text", "가" * 334), [("content.text", "value_error")], id="text-334-hangul"
    ),
    pytest.param(
        _set("content.text", "\U0001f600" * 250 + "a"),
        [("content.text", "value_error")],
        id="text-emoji-1001",
    ),
    pytest.param(_set("content.text", ""), [("content.text", "string_too_short")], id="text-empty"),
    pytest.param(_del("content.text"), [("content.text", "missing")], id="text-missing"),
    # quick replies
    pytest.param(
        _set("content.quick_replies", _qr(14)),
        [("content.quick_replies", "too_long")],
        id="14-quick-replies",
    ),
    pytest.param(
        _set("content.quick_replies", []),
        [("content.quick_replies", "too_short")],
        id="0-quick-replies",
    ),
    pytest.param(
        _set("content.quick_replies", _qr(2, "t" * 21)),
        [
            ("content.quick_replies.0.title", "string_too_long"),
            ("content.quick_replies.1.title", "string_too_long"),
        ],
        id="quick-reply-title-21",
    ),
    pytest.param(
        _set(
            "content.quick_replies", [{"content_type": "user_email", "title": "e", "payload": "p"}]
        ),
        [("content.quick_replies.0.content_type", "literal_error")],
        id="quick-reply-email",
    ),
    # media
    pytest.param(
        _content({"kind": "image", "url": "not a url"}),
        [("content.url", "url_parsing")],
        id="bad-url",
    ),
    pytest.param(
        _content({"kind": "video", "url": "http://cdn.example.com/a.mp4"}),
        [("content.url", "value_error")],
        id="http-url",
    ),
    pytest.param(
        _content({"kind": "file", "url": "ftp://cdn.example.com/a.pdf"}),
        [("content.url", "url_scheme")],
        id="ftp-url",
    ),
    pytest.param(
        _content({"kind": "audio", "attachment_id": "has space"}),
        [("content.attachment_id", "string_pattern_mismatch")],
        id="attachment-id-space",
    ),
    pytest.param(
        _content({"kind": "images", "images": [{"url": URL}]}),
        [("content.images", "too_short")],
        id="1-image",
    ),
    pytest.param(
        _content({"kind": "images", "images": [{"url": URL}] * 11}),
        [("content.images", "too_long")],
        id="11-images",
    ),
    pytest.param(
        _content({"kind": "images", "images": [{"url": URL, "attachment_id": "1"}, {}]}),
        [("content.images.0", "value_error"), ("content.images.1", "value_error")],
        id="images-both-and-neither",
    ),
    pytest.param(
        _content(
            {"kind": "images", "images": [{"url": "http://e.com/a.png"}, {"attachment_id": ""}]}
        ),
        [
            ("content.images.0.url", "value_error"),
            ("content.images.1.attachment_id", "string_too_short"),
        ],
        id="images-http-and-empty-id",
    ),
    pytest.param(
        _content({"kind": "media_share", "post_id": "abc"}),
        [("content.post_id", "string_pattern_mismatch")],
        id="media-share-non-numeric",
    ),
    # templates
    pytest.param(
        _content({"kind": "generic_template", "elements": [{"title": "t", "subtitle": "s"}] * 11}),
        [("content.elements", "too_long")],
        id="11-elements",
    ),
    pytest.param(
        _content({"kind": "generic_template", "elements": []}),
        [("content.elements", "too_short")],
        id="0-elements",
    ),
    pytest.param(
        _content({"kind": "generic_template", "elements": [{"title": "only a title"}]}),
        [("content.elements.0", "value_error")],
        id="element-only-title",
    ),
    pytest.param(
        _content({"kind": "generic_template", "elements": [{"title": "t" * 81, "subtitle": "s"}]}),
        [("content.elements.0.title", "string_too_long")],
        id="element-title-81",
    ),
    pytest.param(
        _content(
            {
                "kind": "generic_template",
                "elements": [{"title": "t", "image_url": "http://e.com/a.png"}],
            }
        ),
        [("content.elements.0.image_url", "value_error")],
        id="element-http-image",
    ),
    pytest.param(
        _content({"kind": "generic_template", "elements": [{"title": "t", "buttons": [PB] * 4}]}),
        [("content.elements.0.buttons", "too_long")],
        id="element-4-buttons",
    ),
    pytest.param(
        _content({"kind": "button_template", "text": "t", "buttons": [PB] * 4}),
        [("content.buttons", "too_long")],
        id="4-buttons",
    ),
    pytest.param(
        _content({"kind": "button_template", "text": "t", "buttons": []}),
        [("content.buttons", "too_short")],
        id="0-buttons",
    ),
    pytest.param(
        _content({"kind": "button_template", "text": "x" * 641, "buttons": [PB]}),
        [("content.text", "string_too_long")],
        id="button-text-641",
    ),
    pytest.param(
        _content(
            {
                "kind": "button_template",
                "text": "t",
                "buttons": [{"type": "phone_number", "title": "Call", "payload": "+1"}],
            }
        ),
        [("content.buttons.0", "union_tag_invalid")],
        id="unknown-button-type",
    ),
    pytest.param(
        _content({"kind": "button_template", "text": "t", "buttons": [{**PB, "title": "x" * 21}]}),
        [("content.buttons.0.postback.title", "string_too_long")],
        id="button-title-21",
    ),
    # sender actions
    pytest.param(
        _content({"kind": "react"}), [("content.message_id", "missing")], id="react-no-mid"
    ),
    pytest.param(
        _content({"kind": "react", "message_id": MID, "reaction": ""}),
        [("content.reaction", "string_too_short")],
        id="react-empty-reaction",
    ),
    pytest.param(
        _content({"kind": "unreact", "message_id": MID, "reaction": "love"}),
        [("content.reaction", "extra_forbidden")],
        id="unreact-with-reaction",
    ),
    # recipient and account
    pytest.param(_del("recipient"), [("recipient", "missing")], id="no-recipient"),
    pytest.param(_set("recipient", {}), [("recipient", "value_error")], id="empty-recipient"),
    pytest.param(
        _set("recipient", {"id": IGSID, "comment_id": "17900000000000001"}),
        [("recipient", "value_error")],
        id="two-recipients",
    ),
    pytest.param(
        _set("recipient.id", "bob"),
        [("recipient.id", "string_pattern_mismatch")],
        id="username-as-igsid",
    ),
    pytest.param(
        _set("account_id", "me"),
        [("account_id", "string_pattern_mismatch")],
        id="account-non-numeric",
    ),
    pytest.param(
        _set("account_id", "123\n"),
        [("account_id", "string_pattern_mismatch")],
        id="account-trailing-nl",
    ),
    pytest.param(_del("account_id"), [("account_id", "missing")], id="account-missing"),
    # idempotency key
    pytest.param(_del("idempotency_key"), [("idempotency_key", "missing")], id="key-missing"),
    pytest.param(
        _set("idempotency_key", ""), [("idempotency_key", "string_too_short")], id="key-empty"
    ),
    pytest.param(
        _set("idempotency_key", "k" * 201), [("idempotency_key", "string_too_long")], id="key-201"
    ),
    pytest.param(
        _set("idempotency_key", "has space"),
        [("idempotency_key", "string_pattern_mismatch")],
        id="key-space",
    ),
    pytest.param(
        _set("idempotency_key", "ключ"),
        [("idempotency_key", "string_pattern_mismatch")],
        id="key-non-ascii",
    ),
    # envelope options
    pytest.param(_set("reply_to", ""), [("reply_to", "string_too_short")], id="reply-to-empty"),
    pytest.param(
        _set("not_before", "2030-01-01T00:00:00"),
        [("not_before", "timezone_aware")],
        id="naive-not-before",
    ),
    pytest.param(
        _set("not_after", "2030-01-01T00:00:00"),
        [("not_after", "timezone_aware")],
        id="naive-not-after",
    ),
    pytest.param(
        _set("window_hint", "2030-01-01T00:00:00"),
        [("window_hint", "timezone_aware")],
        id="naive-window-hint",
    ),
    pytest.param(
        _set("not_after", "tomorrow"),
        [("not_after", "datetime_from_date_parsing")],
        id="not-after-garbage",
    ),
    pytest.param(
        _set("metadata", {"blob": "x" * 1017}),
        [("metadata", "value_error")],
        id="metadata-1025-bytes",
    ),
]


@pytest.mark.parametrize(("mutate", "expected"), BAD)
def test_bad_intent_reports_the_exact_problem_locations(
    mutate: Mutation, expected: list[tuple[str, str]]
) -> None:
    data = good()
    mutate(data)
    assert sorted(problems_of(data)) == sorted(expected)
    # The same locations come back when the intent arrives as JSON text (pydantic's JSON
    # mode may name a type error differently, e.g. dict_type for model_attributes_type).
    assert sorted(loc for loc, _ in problems_of(json.dumps(data))) == sorted(
        loc for loc, _ in expected
    )


@pytest.mark.parametrize(
    "content",
    [
        pytest.param({"kind": "image", "url": URL, "attachment_id": "1"}, id="image-both"),
        pytest.param({"kind": "audio"}, id="audio-neither"),
        pytest.param({"kind": "file", "url": URL, "attachment_id": "1"}, id="file-both"),
        pytest.param({"kind": "video"}, id="video-neither"),
    ],
)
def test_media_url_and_attachment_id_are_exclusive_and_one_is_required(content: Json) -> None:
    with pytest.raises(IntentError) as info:
        parse_intent(good(content))
    [problem] = info.value.problems
    assert problem.type == "value_error"
    assert problem.msg == "give exactly one of url or attachment_id"


@pytest.mark.parametrize(
    "content",
    [
        pytest.param({"kind": "image", "url": URL, "attachment_id": "1"}, id="image-both"),
        pytest.param({"kind": "audio"}, id="audio-neither"),
    ],
)
def test_media_source_problem_is_located_at_content_not_at_the_kind_tag(content: Json) -> None:
    assert problems_of(good(content)) == [("content", "value_error")]


# --- cross-field rules (reported at the intent level) ------------------------------------------


@pytest.mark.parametrize(
    ("envelope", "phrase"),
    [
        pytest.param(
            {"recipient": {"comment_id": "17900000000000001"}, "content": GOOD_CONTENT["image"]},
            "a private reply (recipient.comment_id) carries a text message",
            id="private-reply-image",
        ),
        pytest.param(
            {
                "recipient": {"comment_id": "17900000000000001"},
                "content": GOOD_CONTENT["typing_on"],
            },
            "a private reply (recipient.comment_id) carries a text message",
            id="private-reply-typing",
        ),
        pytest.param(
            {"recipient": {"comment_id": "17900000000000001"}, "reply_to": MID},
            "a private reply cannot reply_to a message",
            id="private-reply-reply-to",
        ),
        pytest.param(
            {"content": GOOD_CONTENT["typing_on"], "reply_to": MID},
            "reply_to is for messages, not the sender action 'typing_on'",
            id="reply-to-typing-on",
        ),
        pytest.param(
            {"content": GOOD_CONTENT["react"], "reply_to": MID},
            "reply_to is for messages, not the sender action 'react'",
            id="reply-to-react",
        ),
        pytest.param(
            {"content": GOOD_CONTENT["mark_seen"], "tag": "HUMAN_AGENT", "automated": False},
            "tag is for messages, not the sender action 'mark_seen'",
            id="tag-on-mark-seen",
        ),
        pytest.param(
            {"tag": "HUMAN_AGENT", "automated": True},
            "HUMAN_AGENT is only for messages a human wrote: set automated=false",
            id="human-agent-automated",
        ),
        pytest.param(
            {"tag": "HUMAN_AGENT"},
            "HUMAN_AGENT is only for messages a human wrote: set automated=false",
            id="human-agent-automated-by-default",
        ),
        pytest.param(
            {"not_before": "2030-01-01T00:00:00Z", "not_after": "2030-01-01T00:00:00Z"},
            "not_before must be earlier than not_after",
            id="not-before-equals-not-after",
        ),
        pytest.param(
            {"not_before": "2030-01-01T09:00:01+09:00", "not_after": "2030-01-01T00:00:00Z"},
            "not_before must be earlier than not_after",
            id="not-before-after-not-after-across-zones",
        ),
    ],
)
def test_cross_field_rule_is_reported_at_intent_level(envelope: Json, phrase: str) -> None:
    data = good(**envelope)
    assert problems_of(data) == [("intent", "value_error")]
    assert messages_of(data) == [phrase]


def test_every_cross_field_problem_is_named_at_once() -> None:
    data = good(
        GOOD_CONTENT["typing_on"],
        reply_to=MID,
        tag="HUMAN_AGENT",
        not_before="2030-01-02T00:00:00Z",
        not_after="2030-01-01T00:00:00Z",
    )
    assert problems_of(data) == [("intent", "value_error")]
    [msg] = messages_of(data)
    for phrase in (
        "reply_to is for messages",
        "tag is for messages",
        "set automated=false",
        "not_before must be earlier than not_after",
    ):
        assert phrase in msg


def test_every_field_problem_is_reported_at_once() -> None:
    data = good(
        {"kind": "text", "text": "", "quick_replies": _qr(1, "t" * 21)},
        idempotency_key="has space",
        account_id="me",
        recipient={"id": IGSID, "comment_id": "1"},
        not_after="2030-01-01T00:00:00",
        metadata={"blob": "x" * 2000},
        surprise=1,
    )
    assert sorted(problems_of(data)) == sorted(
        [
            ("idempotency_key", "string_pattern_mismatch"),
            ("account_id", "string_pattern_mismatch"),
            ("recipient", "value_error"),
            ("content.text", "string_too_short"),
            ("content.quick_replies.0.title", "string_too_long"),
            ("not_after", "timezone_aware"),
            ("metadata", "value_error"),
            ("surprise", "extra_forbidden"),
        ]
    )


def test_every_problem_of_a_template_is_reported_at_once() -> None:
    content = {
        "kind": "generic_template",
        "elements": [
            {"title": "only a title"},
            {"title": "t" * 81, "image_url": "http://e.com/a.png"},
            {"title": "ok", "buttons": [{"type": "call", "title": "x"}]},
        ],
    }
    assert sorted(problems_of(good(content))) == sorted(
        [
            ("content.elements.0", "value_error"),
            ("content.elements.1.title", "string_too_long"),
            ("content.elements.1.image_url", "value_error"),
            ("content.elements.2.buttons.0", "union_tag_invalid"),
        ]
    )


def test_cross_field_problem_is_reported_together_with_field_problems() -> None:
    data = good(
        {"kind": "text", "text": ""},
        not_before="2030-01-02T00:00:00Z",
        not_after="2030-01-01T00:00:00Z",
    )
    assert sorted(problems_of(data)) == [
        ("content.text", "string_too_short"),
        ("intent", "value_error"),
    ]


# --- not an intent at all ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("{not json", [("intent", "json_invalid")], id="text-not-json"),
        pytest.param(b"\xff\xfe{", [("intent", "json_invalid")], id="bytes-not-json"),
        pytest.param("", [("intent", "json_invalid")], id="empty-text"),
        pytest.param('[{"idempotency_key": "k"}]', [("intent", "model_type")], id="json-list"),
        pytest.param("null", [("intent", "model_type")], id="json-null"),
        pytest.param('"an intent"', [("intent", "model_type")], id="json-string"),
        pytest.param([good()], [("intent", "model_type")], id="python-list"),
        pytest.param(None, [("intent", "model_type")], id="none"),
        pytest.param(42, [("intent", "model_type")], id="int"),
    ],
)
def test_non_object_input_is_one_intent_level_problem(
    raw: Any, expected: list[tuple[str, str]]
) -> None:
    assert problems_of(raw) == expected


def test_intent_error_as_dict_is_machine_readable_and_carries_a_readable_key() -> None:
    data = good(account_id="me", content={"kind": "text", "text": ""})
    with pytest.raises(IntentError) as info:
        parse_intent(data)
    err = info.value
    assert err.key == "mid.123:reply:0"
    as_dict = err.as_dict()
    assert as_dict["error"] == "invalid_intent"
    assert as_dict["key"] == "mid.123:reply:0"
    assert sorted(p["loc"] for p in as_dict["problems"]) == ["account_id", "content.text"]
    for p in as_dict["problems"]:
        assert set(p) == {"loc", "type", "msg"}
        assert p["msg"] and not p["msg"].startswith("Value error")
    assert json.loads(json.dumps(as_dict)) == as_dict
    assert isinstance(err, ValueError)
    assert "2 problem(s)" in str(err)


def test_intent_error_has_no_key_when_the_key_itself_is_bad() -> None:
    with pytest.raises(IntentError) as info:
        parse_intent(good(idempotency_key="has space", account_id="me"))
    assert info.value.key is None
    assert info.value.as_dict()["key"] is None


def test_intent_error_does_not_echo_the_rejected_input() -> None:
    secret = "do-not-echo-this-value-0123456789"
    with pytest.raises(IntentError) as info:
        parse_intent(good({"kind": "text", "text": secret, "quick_replies": []}, account_id=secret))
    assert secret not in json.dumps(info.value.as_dict())


# --- property: parse_intent never raises anything but IntentError -------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
FIELDS = [
    "v",
    "idempotency_key",
    "account_id",
    "recipient",
    "content",
    "reply_to",
    "tag",
    "automated",
    "not_before",
    "not_after",
    "window_hint",
    "metadata",
]
CONTENT_FIELDS = [
    "text",
    "quick_replies",
    "url",
    "attachment_id",
    "images",
    "sticker",
    "post_id",
    "elements",
    "buttons",
    "message_id",
    "reaction",
]
contents = st.builds(
    lambda kind, extra: {"kind": kind, **extra},
    st.sampled_from([*sorted(ALL_KINDS), "poll", ""]),
    st.dictionaries(st.sampled_from(CONTENT_FIELDS), json_values, max_size=3),
)
# Start from a good intent and overwrite some fields, so deep validation paths are reached.
intent_like = st.builds(
    lambda kind, patch, content: {**good(GOOD_CONTENT[kind]), **patch, **content},
    st.sampled_from(sorted(ALL_KINDS)),
    st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=3),
    st.one_of(st.just({}), contents.map(lambda c: {"content": c})),
)
anything = st.one_of(json_values, intent_like)


def _check(data: Any) -> None:
    try:
        result = parse_intent(data)
    except IntentError as err:
        assert err.problems
        as_dict = err.as_dict()
        assert json.loads(json.dumps(as_dict)) == as_dict
        for problem in err.problems:
            assert isinstance(problem.loc, str) and problem.loc
            assert isinstance(problem.type, str) and problem.type
            assert isinstance(problem.msg, str)
    else:
        assert isinstance(result, MessageIntent)
        assert result.kind in ALL_KINDS


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(anything)
def test_parse_intent_returns_an_intent_or_raises_intent_error_for_any_json_value(
    data: Any,
) -> None:
    _check(data)


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(anything)
def test_parse_intent_of_json_text_agrees_with_parse_of_the_value(data: Any) -> None:
    text = json.dumps(data)
    _check(text)
    _check(text.encode())
    try:
        from_value: MessageIntent | None = parse_intent(data)
    except IntentError:
        from_value = None
    try:
        from_text: MessageIntent | None = parse_intent(text)
    except IntentError:
        from_text = None
    if from_value is not None:
        assert from_text == from_value


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(st.binary(max_size=64) | st.text(max_size=64))
def test_parse_intent_of_arbitrary_text_or_bytes_raises_only_intent_error(raw: str | bytes) -> None:
    _check(raw)
