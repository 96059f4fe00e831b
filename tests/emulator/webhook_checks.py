"""What a webhook must look like (fact sheet §6), and signature checks, for the webhook tests."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

MESSAGING_EVENTS = frozenset({"message", "reaction", "postback", "read"})
REACTIONS = frozenset({"angry", "sad", "wow", "love", "like", "laugh", "other"})


def expected_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def assert_signed(secret: str, body: bytes, header: str) -> None:
    """The header is sha256=<lowercase hex HMAC> of exactly these bytes, which are ASCII."""
    assert header == expected_signature(secret, body)
    assert header[7:] == header[7:].lower()
    body.decode("ascii")  # non-ASCII is escaped (\u00e4), as Meta signs it


def _is_digits(value: Any) -> bool:
    return isinstance(value, str) and value.isdigit()


def _is_ms(value: Any) -> bool:
    return isinstance(value, int) and len(str(value)) == 13


def assert_well_formed(body: bytes) -> list[dict[str, Any]]:
    """Check a webhook body against §6; return its entries."""
    payload = json.loads(body)
    assert set(payload) == {"object", "entry"}
    assert payload["object"] == "instagram"
    entries: list[dict[str, Any]] = payload["entry"]
    assert entries
    for entry in entries:
        assert _is_digits(entry["id"]) and _is_ms(entry["time"]), entry
        if "messaging" in entry:
            assert set(entry) == {"id", "time", "messaging"}
            assert len(entry["messaging"]) == 1
            _assert_messaging(entry["id"], entry["messaging"][0])
        else:
            assert set(entry) == {"id", "time", "field", "value"}
            _assert_comment(entry)
    return entries


def _assert_messaging(ig_id: str, item: dict[str, Any]) -> None:
    events = set(item) - {"sender", "recipient", "timestamp"}
    assert len(events) == 1 and events <= MESSAGING_EVENTS, item
    assert set(item["sender"]) == {"id"} and set(item["recipient"]) == {"id"}
    sender, recipient = item["sender"]["id"], item["recipient"]["id"]
    assert _is_digits(sender) and _is_digits(recipient) and _is_ms(item["timestamp"])
    [kind] = events
    event = item[kind]
    assert isinstance(event["mid"], str) and event["mid"].startswith("aWdf")
    if kind == "message" and event.get("is_echo"):
        assert sender == ig_id != recipient  # business -> user
    else:
        assert recipient == ig_id != sender  # user -> business
    if kind == "message":
        assert set(event) <= {"mid", "text", "attachments", "quick_reply", "reply_to", "is_echo"}
        assert "text" in event or "attachments" in event
        for attachment in event.get("attachments", []):
            assert set(attachment) == {"type", "payload"}
    elif kind == "reaction":
        if event["action"] == "react":
            assert set(event) == {"mid", "action", "reaction", "emoji"}
            assert event["reaction"] in REACTIONS
        else:
            assert event == {"mid": event["mid"], "action": "unreact"}
    elif kind == "postback":
        assert set(event) == {"mid", "title", "payload"}
    else:
        assert set(event) == {"mid"}  # read.mid, not Messenger's watermark


def _assert_comment(entry: dict[str, Any]) -> None:
    assert entry["field"] == "comments"
    value = entry["value"]
    assert set(value) == {"id", "from", "text", "media"}
    assert _is_digits(value["id"])
    assert set(value["from"]) == {"id", "username"} and _is_digits(value["from"]["id"])
    assert value["media"]["media_product_type"] == "FEED" and _is_digits(value["media"]["id"])
