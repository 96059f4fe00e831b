"""Every example of the fact sheet's §6 (and the common variants) parses, after its signature
is checked, to the right typed event with the right ids and times."""

from __future__ import annotations

from typing import Any, TypeVar

import pytest
from pydantic import TypeAdapter

from ig_outbound.producers.webhooks import (
    CommentEvent,
    EchoEvent,
    InboundEvent,
    MessageEditEvent,
    MessageEvent,
    OptinEvent,
    PostbackEvent,
    ReactionEvent,
    ReferralEvent,
    SeenEvent,
    UnknownEvent,
    WebhookBatch,
)
from tests.webhooks.payloads import (
    ENTRY_TIME,
    FIXTURE_NAMES,
    IG_ID,
    IG_ID_2,
    TS,
    USER,
    USER_2,
    load,
    receive,
)

E = TypeVar("E")


def only_event(name: str, cls: type[E]) -> E:
    batch = receive(name)
    assert len(batch.events) == 1
    event = batch.events[0]
    assert isinstance(event, cls), event
    return event


def test_a_text_message_with_quick_reply_and_inline_reply() -> None:
    event = only_event("message_text_quick_reply", MessageEvent)
    assert event.type == "message"
    assert (event.account_id, event.user_id) == (IG_ID, USER)
    assert event.timestamp_ms == TS
    assert event.event_id == event.mid == "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQx"
    assert event.text == "Live chat now"
    assert event.quick_reply_payload == "LIVE_CHAT"
    assert event.reply_to_mid == "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjAAA"
    assert not (event.from_business or event.is_deleted or event.is_unsupported)
    assert not (event.is_story_mention or event.is_story_reply or event.is_share)


def test_unicode_text_arrives_decoded() -> None:
    event = only_event("message_unicode_text", MessageEvent)
    assert event.text == "Grüße äöå \u2764\ufe0f 👋"


def test_an_echo_is_keyed_by_the_user_it_was_sent_to() -> None:
    event = only_event("message_echo", EchoEvent)
    assert (event.account_id, event.user_id) == (IG_ID, USER)
    assert event.from_business and not event.is_self
    assert event.event_id == event.mid == "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQy"
    assert event.text == "Thanks!"


def test_an_image_attachment_keeps_its_cdn_url() -> None:
    event = only_event("message_attachments", MessageEvent)
    assert event.text is None
    [attachment] = event.attachments
    assert attachment.type == "image"
    assert attachment.url is not None and attachment.url.startswith("https://lookaside.fbsbx.com/")


def test_a_reaction_and_its_removal_are_two_events() -> None:
    react = only_event("reaction_react", ReactionEvent)
    unreact = only_event("reaction_unreact", ReactionEvent)
    assert (react.action, react.reaction, react.emoji) == ("react", "love", "\u2764\ufe0f")
    assert (unreact.action, unreact.reaction, unreact.emoji) == ("unreact", None, None)
    assert react.mid == unreact.mid and react.user_id == unreact.user_id == USER
    assert react.event_id != unreact.event_id
    assert react.event_id == f"reaction:{react.mid}:{USER}:react:love:{TS}"


def test_a_postback_with_mid_is_identified_by_it() -> None:
    event = only_event("postback", PostbackEvent)
    assert (event.title, event.payload) == ("Start Chatting", "DEVELOPER_DEFINED_PAYLOAD")
    assert event.event_id == event.mid == "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQ0"
    assert event.timestamp_ms == 1502905976377


def test_a_postback_without_mid_is_identified_by_user_and_time() -> None:
    event = only_event("postback_without_mid", PostbackEvent)
    assert event.mid is None
    assert event.event_id == f"postback:{USER}:1502905976377"


def test_a_referral_from_an_ig_me_link() -> None:
    event = only_event("referral", ReferralEvent)
    assert (event.ref, event.source, event.referral_type) == (
        "summer_sale",
        "IGME_SOURCE_LINK",
        "OPEN_THREAD",
    )
    assert event.referral == load("referral")["entry"][0]["messaging"][0]["referral"]
    assert event.event_id == f"referral:{USER}:1502905976377"


def test_seen_reads_the_message_id_not_a_watermark() -> None:
    event = only_event("seen", SeenEvent)
    assert (event.mid, event.watermark) == ("aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQy", None)
    assert event.event_id == f"seen:{event.mid}:{USER}"


def test_a_message_edit_differs_from_the_message_it_edits() -> None:
    edit = only_event("message_edit", MessageEditEvent)
    original = only_event("message_text_quick_reply", MessageEvent)
    assert (edit.mid, edit.text, edit.num_edit) == (original.mid, "edited text", 1)
    assert edit.event_id == f"edit:{original.mid}:1" != original.event_id


def test_an_optin_keeps_its_whole_payload() -> None:
    event = only_event("optin", OptinEvent)
    assert (event.optin_type, event.payload) == ("notification_messages", "WEEKLY_DEALS")
    assert event.optin["notification_messages_token"] == "7343000000000000000"
    assert event.event_id == f"optin:{USER}:{TS}"


def test_a_flat_ig_login_comment_with_seconds_time_is_read_in_ms() -> None:
    event = only_event("comment_flat", CommentEvent)
    assert (event.account_id, event.user_id, event.username) == (IG_ID, USER, "jane.doe")
    assert event.timestamp_ms == 1569262486 * 1000
    assert event.event_id == event.comment_id == "17865799348089039"
    assert (event.media_id, event.media_product_type) == ("17887498072083520", "FEED")
    assert event.text == "How much is this? 😍"
    assert event.parent_id is None and not event.is_live and not event.from_business
    assert event.raw == load("comment_flat")["entry"][0]


def test_a_comment_in_the_changes_form_is_a_reply_to_another() -> None:
    event = only_event("comment_changes", CommentEvent)
    assert (event.user_id, event.timestamp_ms) == (USER_2, ENTRY_TIME)
    assert event.parent_id == "17865799348089039"
    assert event.media_product_type == "REELS"
    assert event.raw == load("comment_changes")["entry"][0]["changes"][0]


def test_a_live_comment_is_a_comment_flagged_live() -> None:
    event = only_event("live_comment_changes", CommentEvent)
    assert event.is_live and event.comment_id == "17865799348089041"


def test_a_story_mention() -> None:
    event = only_event("story_mention", MessageEvent)
    assert event.is_story_mention and not event.is_story_reply and not event.is_share
    assert event.attachments[0].url is not None


def test_a_story_reply_names_the_story() -> None:
    event = only_event("story_reply", MessageEvent)
    assert event.is_story_reply and not event.is_story_mention
    assert event.reply_to_story is not None
    assert event.reply_to_story.id == "3300000000000000003"
    assert event.reply_to_mid is None and event.text == "love this story"


@pytest.mark.parametrize("name", ["share", "share_legacy"])
def test_a_shared_post_or_reel_is_a_share(name: str) -> None:
    event = only_event(name, MessageEvent)
    assert event.is_share and not event.is_story_mention


def test_attachment_payload_fields_not_named_are_kept() -> None:
    [attachment] = only_event("share", MessageEvent).attachments
    assert attachment.type == "ig_reel"
    assert attachment.payload is not None
    assert attachment.payload.model_extra == {
        "reel_video_id": "18000000000000001",
        "title": "A reel",
    }


def test_a_deletion_is_not_mistaken_for_a_redelivery_of_the_message() -> None:
    deleted = only_event("message_deleted", MessageEvent)
    original = only_event("message_text_quick_reply", MessageEvent)
    assert deleted.is_deleted and deleted.mid == original.mid
    assert deleted.event_id == f"deleted:{original.mid}"


def test_an_unsupported_message() -> None:
    event = only_event("message_unsupported", MessageEvent)
    assert event.is_unsupported and event.text is None and event.attachments == []


def test_a_batched_body_flattens_entries_and_items_in_order() -> None:
    batch = receive("batched")
    assert [(e.id, e.time_ms) for e in batch.entries] == [
        (IG_ID, ENTRY_TIME),
        (IG_ID_2, ENTRY_TIME + 10),
    ]
    assert [type(e) for e in batch.events] == [
        MessageEvent,
        MessageEvent,
        EchoEvent,
        SeenEvent,
        ReactionEvent,
    ]
    assert [e.account_id for e in batch.events] == [IG_ID] * 3 + [IG_ID_2] * 2
    assert [e.user_id for e in batch.events] == [USER] * 3 + [USER_2] * 2
    assert [e.timestamp_ms for e in batch.events] == [TS + n for n in range(5)]
    assert len({e.event_id for e in batch.events}) == 5


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_each_event_keeps_its_item_verbatim(name: str) -> None:
    payload = load(name)
    batch = receive(name)
    items = [i for e in payload["entry"] for i in e.get("messaging", []) + e.get("changes", [])]
    items += [e for e in payload["entry"] if "field" in e]
    assert [e.raw for e in batch.events] == items
    assert batch.raw == payload and [e.raw for e in batch.entries] == payload["entry"]


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_a_redelivered_body_gives_the_same_event_ids(name: str) -> None:
    first, again = receive(name), receive(name)
    assert [e.event_id for e in first.events] == [e.event_id for e in again.events]


_EVENTS: TypeAdapter[list[InboundEvent]] = TypeAdapter(list[InboundEvent])


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_events_survive_a_json_round_trip_through_the_union(name: str) -> None:
    """A gateway can queue events as JSON and a consumer read them back as the same models."""
    batch = receive(name)
    dumped: list[dict[str, Any]] = [e.model_dump(mode="json") for e in batch.events]
    assert _EVENTS.validate_python(dumped) == batch.events
    assert WebhookBatch.model_validate_json(batch.model_dump_json()) == batch


def test_no_fixture_of_a_known_type_falls_back_to_unknown() -> None:
    for name in FIXTURE_NAMES:
        if name != "unknown_fields_and_event":
            assert not any(isinstance(e, UnknownEvent) for e in receive(name).events), name
