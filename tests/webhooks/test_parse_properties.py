"""Properties over generated bodies: any JSON parses or is a `WebhookError`, never another
exception; an item's `event_id` does not depend on how its JSON was written."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ig_outbound.producers.webhooks import WebhookBatch, WebhookError, parse_webhook
from tests.webhooks.payloads import FIXTURE_NAMES, IG_ID, USER, load

# Text without lone surrogates, for the raw UTF-8 serialisation (which cannot encode them).
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=8)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
    st.sampled_from([IG_ID, USER, "react", "unreact", "comments", "live_comments", "", "m"]),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=10,
)
# Mostly plausible values, so that typed events come out too, not only `unknown` ones.
IDS = st.one_of(st.sampled_from([IG_ID, USER]), st.sampled_from([IG_ID, USER, int(USER)]), JSON)
TIMES = st.one_of(st.sampled_from([1569262485349, 1569262486, 0, -1, 1.5]), st.integers(), JSON)
VALUES = st.one_of(st.sampled_from(["m1", "react", "unreact", "love", "1", True]), SCALARS, JSON)
KINDS = st.sampled_from(
    ["message", "message_edit", "reaction", "postback", "referral", "optin", "read", "x"]
)
BODY_KEYS = st.sampled_from(
    ["mid", "text", "attachments", "is_echo", "reply_to", "quick_reply", "action", "reaction",
     "num_edit", "watermark", "is_deleted", "type", "payload", "story", "url"]
)  # fmt: skip
EVENT_BODIES = st.one_of(st.dictionaries(BODY_KEYS, VALUES, max_size=5), JSON)


@st.composite
def messaging_items(draw: st.DrawFn) -> Any:
    item: dict[str, Any] = {draw(KINDS): draw(EVENT_BODIES)}
    for key in draw(st.sets(st.sampled_from(["sender", "recipient"]))):
        item[key] = {"id": draw(IDS)}
    if draw(st.booleans()):
        item["timestamp"] = draw(TIMES)
    return draw(st.one_of(st.just(item), JSON))


@st.composite
def changes(draw: st.DrawFn) -> Any:
    value = {
        "id": draw(IDS),
        "from": {"id": draw(IDS), "username": draw(VALUES)},
        "media": draw(st.one_of(st.fixed_dictionaries({"id": IDS}), JSON)),
        "text": draw(VALUES),
    }
    return {
        "field": draw(st.sampled_from(["comments", "live_comments", "mentions"])),
        "value": value,
    }


@st.composite
def entries(draw: st.DrawFn) -> Any:
    entry: dict[str, Any] = {"id": draw(IDS), "time": draw(TIMES)}
    if draw(st.booleans()):
        entry["messaging"] = draw(st.one_of(st.lists(messaging_items(), max_size=3), JSON))
    if draw(st.booleans()):
        entry["changes"] = draw(st.one_of(st.lists(changes(), max_size=2), JSON))
    if draw(st.booleans()):
        entry.update(draw(changes()))
    return entry


@st.composite
def mutated_fixtures(draw: st.DrawFn) -> Any:
    """A fixture with one value somewhere inside it replaced by any JSON: near misses."""
    payload = load(draw(st.sampled_from(FIXTURE_NAMES)))
    node: Any = payload
    while isinstance(node, dict | list) and node:
        key = draw(st.sampled_from(sorted(node) if isinstance(node, dict) else range(len(node))))
        if draw(st.integers(0, 3)) == 0 or not isinstance(node[key], dict | list):
            node[key] = draw(JSON)
            break
        node = node[key]
    return payload


WEBHOOKISH = st.one_of(
    JSON,
    st.fixed_dictionaries(
        {"object": st.just("instagram"), "entry": st.lists(entries(), max_size=3)}
    ),
    st.fixed_dictionaries({"object": st.just("instagram"), "entry": JSON}),
    st.sampled_from(FIXTURE_NAMES).map(load),
    mutated_fixtures(),
)


def _parse(body: bytes) -> WebhookBatch | WebhookError:
    try:
        return parse_webhook(body)
    except WebhookError as exc:
        return exc


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(WEBHOOKISH)
def test_any_json_parses_or_is_a_webhook_error(payload: Any) -> None:
    result = _parse(json.dumps(payload).encode())
    if isinstance(result, WebhookError):
        assert result.status == 400
        assert result.code in {"malformed", "not_instagram", "invalid_json"}
    else:
        assert all(isinstance(e.event_id, str) and e.event_id for e in result.events)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=64))
def test_any_bytes_parse_or_are_a_webhook_error(body: bytes) -> None:
    _parse(body)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(WEBHOOKISH)
def test_event_ids_do_not_depend_on_how_the_json_was_written(payload: Any) -> None:
    as_meta = _parse(json.dumps(payload).encode())
    rewritten = json.dumps(payload, ensure_ascii=False, sort_keys=True, indent=1)
    as_utf8 = _parse(rewritten.encode("utf-8"))
    if isinstance(as_meta, WebhookError) or isinstance(as_utf8, WebhookError):
        assert isinstance(as_meta, WebhookError) and isinstance(as_utf8, WebhookError)
        assert as_meta.code == as_utf8.code
        return
    assert [e.event_id for e in as_meta.events] == [e.event_id for e in as_utf8.events]
    assert [e.type for e in as_meta.events] == [e.type for e in as_utf8.events]
