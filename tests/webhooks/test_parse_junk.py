"""What cannot be a webhook is refused with a code; everything else parses, and what is not
understood is kept as an `unknown` event instead of being dropped or failing the batch."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ig_outbound.producers.webhooks import (
    EchoEvent,
    MessageEvent,
    ReactionEvent,
    SeenEvent,
    UnknownEvent,
    WebhookError,
    parse_webhook,
    parse_webhook_payload,
)
from tests.webhooks.payloads import ENTRY_TIME, IG_ID, TS, USER, load, meta_body, receive


def refusal(body: bytes | str) -> WebhookError:
    with pytest.raises(WebhookError) as caught:
        parse_webhook(body)
    return caught.value


def one_item(item: Any, **entry: Any) -> list[Any]:
    """The events of a body with one messaging item (a `list` so tests can unpack it)."""
    head = {"id": IG_ID, "time": ENTRY_TIME, **entry}
    body = {"object": "instagram", "entry": [{**head, "messaging": [item]}]}
    return list(parse_webhook(meta_body(body)).events)


def inbound(**event: Any) -> dict[str, Any]:
    return {"sender": {"id": USER}, "recipient": {"id": IG_ID}, "timestamp": TS, **event}


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"\xff\xfe{}",
        b'{"object": "instagram", "entry": NaN}',
        b"Infinity",
        b"\xef\xbb\xbf{}",
    ],
)
def test_a_body_that_is_not_json_is_invalid_json(body: bytes) -> None:
    error = refusal(body)
    assert (error.code, error.status) == ("invalid_json", 400)


@pytest.mark.parametrize("depth", [10_000, 100_000])
def test_nesting_deeper_than_the_stack_is_invalid_json(depth: int) -> None:
    body = b'{"object": "instagram", "entry": [{"id": "1", "messaging": [' + b"[" * depth
    assert refusal(body + b"]" * depth + b"]}]}").code == "invalid_json"


@pytest.mark.parametrize("depth", [100, 500, 900, 980, 990, 1000, 1500])
def test_nesting_near_the_stack_limit_parses_or_is_invalid_json(depth: int) -> None:
    junk = "[" * depth + "]" * depth
    body = '{"object":"instagram","entry":[{"id":"1","time":1,"messaging":[{"x":' + junk + "}]}]}"
    try:
        batch = parse_webhook(body)
    except WebhookError as exc:
        assert exc.code == "invalid_json"
    else:
        assert isinstance(batch.events[0], UnknownEvent)


def test_a_decoded_payload_nested_deeper_than_the_stack_is_invalid_json() -> None:
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    payload = {"object": "instagram", "entry": [{"id": "1", "messaging": [{"x": deep}]}]}
    with pytest.raises(WebhookError) as caught:
        parse_webhook_payload(payload)
    assert caught.value.code == "invalid_json"


@pytest.mark.parametrize("payload", [[], [{"object": "instagram"}], "instagram", 1, None, True])
def test_json_that_is_not_an_object_is_malformed(payload: Any) -> None:
    assert refusal(json.dumps(payload)).code == "malformed"


@pytest.mark.parametrize(
    "payload",
    [{"entry": []}, {"object": "page", "entry": []}, {"object": "Instagram", "entry": []}],
)
def test_another_object_is_not_instagram(payload: dict[str, Any]) -> None:
    error = refusal(meta_body(payload))
    assert (error.code, error.status) == ("not_instagram", 400)


@pytest.mark.parametrize("entry", ["missing", None, {}, "x", [1], [{}, []], [{"id": "1"}, None]])
def test_an_entry_that_is_not_a_list_of_objects_is_malformed(entry: Any) -> None:
    payload: dict[str, Any] = {"object": "instagram"}
    if entry != "missing":
        payload["entry"] = entry
    error = refusal(meta_body(payload))
    assert (error.code, error.status) == ("malformed", 400)


def test_an_empty_entry_list_is_an_empty_batch() -> None:
    batch = parse_webhook(b'{"object": "instagram", "entry": []}')
    assert batch.entries == [] and batch.events == []


def test_text_and_a_decoded_dict_parse_like_the_bytes() -> None:
    payload = load("batched")
    body = meta_body(payload)
    assert parse_webhook(body.decode()) == parse_webhook(body) == parse_webhook_payload(payload)


def test_a_decoded_dict_holding_what_json_cannot_is_malformed() -> None:
    payload = {"object": "instagram", "entry": [{"id": "1", "messaging": [{"x": object()}]}]}
    with pytest.raises(WebhookError) as caught:
        parse_webhook_payload(payload)
    assert caught.value.code == "malformed"


def test_unknown_fields_and_an_unknown_event_type_are_kept() -> None:
    payload = load("unknown_fields_and_event")
    batch = receive("unknown_fields_and_event")
    message, handover, mention = batch.events
    assert isinstance(message, MessageEvent) and message.text == "new fields"
    assert message.raw["priority"] == "high"
    assert message.raw["message"]["shiny_new"] == {"a": 1}
    assert isinstance(handover, UnknownEvent)
    assert (handover.field, handover.reason) == ("pass_thread_control", None)
    assert (handover.account_id, handover.user_id, handover.timestamp_ms) == (IG_ID, USER, TS)
    assert handover.raw == payload["entry"][0]["messaging"][1]
    assert handover.event_id.startswith("sha256:") and len(handover.event_id) == 7 + 64
    assert isinstance(mention, UnknownEvent)
    assert (mention.field, mention.user_id, mention.timestamp_ms) == ("mentions", None, ENTRY_TIME)
    assert batch.entries[0].raw["uid"] == "extra-entry-field"
    assert batch.raw["delivery_id"] == "d-1"


def test_standby_items_are_kept_untyped() -> None:
    standby = inbound(message={"mid": "m.standby", "text": "not ours to answer"})
    body = {"object": "instagram", "entry": [{"id": IG_ID, "time": 1, "standby": [standby]}]}
    [event] = parse_webhook(meta_body(body)).events
    assert isinstance(event, UnknownEvent) and event.field == "standby"
    assert event.raw == standby


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        (inbound(message={"text": "no mid"}), "message does not fit: event_id"),
        (inbound(message="hello"), "message is not an object"),
        (inbound(message={"mid": 7}), "message does not fit"),
        (inbound(reaction={"mid": "m", "action": "explode"}), "reaction does not fit: action"),
        (inbound(message={"mid": "m", "attachments": "x"}), "message does not fit: attachments"),
        ({"recipient": {"id": IG_ID}, "timestamp": TS, "read": {"mid": "m"}}, "no sender"),
        ({"sender": {"id": True}, "timestamp": TS, "read": {"mid": "m"}}, "no sender"),
    ],
)
def test_a_known_type_that_does_not_fit_is_unknown_with_a_reason(
    item: dict[str, Any], reason: str
) -> None:
    [event] = one_item(item)
    assert isinstance(event, UnknownEvent)
    assert event.reason is not None and event.reason.startswith(reason)
    assert event.field is not None and event.field in item


def test_an_entry_without_id_keeps_its_items_as_unknown() -> None:
    body = {"object": "instagram", "entry": [{"messaging": [inbound(read={"mid": "m"})]}]}
    [event] = parse_webhook(meta_body(body)).events
    assert isinstance(event, UnknownEvent) and event.account_id is None
    assert event.reason == "the entry has no id"


def test_an_item_without_any_time_is_unknown() -> None:
    item = {"sender": {"id": USER}, "recipient": {"id": IG_ID}, "read": {"mid": "m"}}
    [event] = one_item(item, time=None)
    assert isinstance(event, UnknownEvent) and event.reason == "no timestamp"


def test_an_item_without_its_own_timestamp_takes_the_entry_time() -> None:
    [event] = one_item({"sender": {"id": USER}, "recipient": {"id": IG_ID}, "read": {"mid": "m"}})
    assert isinstance(event, SeenEvent) and event.timestamp_ms == ENTRY_TIME


@pytest.mark.parametrize(
    ("messaging", "reason"),
    [({"not": "a list"}, "messaging is not a list"), (["x"], "a messaging item is not an object")],
)
def test_a_broken_messaging_list_is_kept_as_unknown(messaging: Any, reason: str) -> None:
    body = {"object": "instagram", "entry": [{"id": IG_ID, "time": 1, "messaging": messaging}]}
    [event] = parse_webhook(meta_body(body)).events
    assert isinstance(event, UnknownEvent) and event.reason == reason


def test_numeric_ids_are_read_as_their_digits() -> None:
    item = {"sender": {"id": int(USER)}, "recipient": {"id": int(IG_ID)}, "timestamp": TS}
    [event] = one_item({**item, "read": {"mid": "m"}}, id=int(IG_ID))
    assert isinstance(event, SeenEvent) and (event.account_id, event.user_id) == (IG_ID, USER)


def test_a_reaction_by_the_business_is_a_reaction_keyed_by_the_user() -> None:
    item = {"sender": {"id": IG_ID}, "recipient": {"id": USER}, "timestamp": TS}
    [event] = one_item({**item, "reaction": {"mid": "m", "action": "react", "reaction": "love"}})
    assert isinstance(event, ReactionEvent)
    assert event.from_business and event.user_id == USER
    assert event.event_id == f"reaction:m:{IG_ID}:react:love:{TS}"


def test_a_read_by_the_business_is_seen_keyed_by_the_user() -> None:
    item = {"sender": {"id": IG_ID}, "recipient": {"id": USER}, "timestamp": TS}
    [event] = one_item({**item, "read": {"mid": "m"}})
    assert isinstance(event, SeenEvent) and event.from_business and event.user_id == USER


def test_a_message_sent_by_the_account_without_is_echo_is_an_echo() -> None:
    item = {"sender": {"id": IG_ID}, "recipient": {"id": USER}, "timestamp": TS}
    [event] = one_item({**item, "message": {"mid": "m.app", "text": "sent in the app"}})
    assert isinstance(event, EchoEvent) and event.user_id == USER


def test_a_messenger_style_watermark_is_accepted() -> None:
    [event] = one_item(inbound(read={"watermark": 1458668856253}))
    assert isinstance(event, SeenEvent)
    assert (event.mid, event.watermark) == (None, 1458668856253)
    assert event.event_id == f"seen:1458668856253:{USER}"


def test_a_react_after_an_unreact_of_the_same_emoji_is_a_new_event() -> None:
    react = {"mid": "m", "action": "react", "reaction": "love"}
    ids = [
        one_item(inbound(reaction=react, timestamp=TS))[0].event_id,
        one_item(inbound(reaction={"mid": "m", "action": "unreact"}, timestamp=TS + 1))[0].event_id,
        one_item(inbound(reaction=react, timestamp=TS + 2))[0].event_id,
    ]
    assert len(set(ids)) == 3


def test_the_same_unknown_item_under_two_accounts_has_two_ids() -> None:
    item = inbound(pass_thread_control={"new_owner_app_id": "1"})
    first = one_item(item)[0].event_id
    second = one_item(item, id="17841400000000002")[0].event_id
    assert first != second
