"""Webhook body -> `WebhookBatch`: refuse only what cannot be a webhook, keep everything else.

Refused (`WebhookError`, 400): not JSON (`invalid_json`, also for nesting deeper than Python's
stack, a byte that is not UTF-8, or `NaN`/`Infinity`), not `"object": "instagram"`
(`not_instagram`), not an object or `entry` not a list of objects (`malformed`).

Read [IGL-WHX]: each entry's `messaging[]` items (`message`, `message_edit`, `reaction`,
`postback`, `referral`, `optin`, `read`), `changes[]` items and the IG-Login flat
`field`/`value` pair (`comments`, `live_comments`; other fields are `unknown` events),
`standby[]` items (the handover protocol's channel for an app that does not own the thread:
kept as `unknown` events with `field="standby"`, since they must not be acted on). Other entry
keys stay in `Entry.raw`.

Times: `messaging[].timestamp` and `entry.time` are ms in Meta's examples; comment events take
`entry.time`, whose unit is UNCONFIRMED (fact sheet §6, §10.8), so any time value below 10^11
is read as seconds and multiplied by 1000 (10^11 ms is 1973; 10^11 s is the year 5138).

`event_id`, to drop redelivered webhooks (same item, same id) without merging distinct events:

- message, echo, postback with a `mid`: the `mid`;
- a deletion (`is_deleted`): `deleted:<mid>` (its `mid` is the deleted message's);
- message_edit: `edit:<mid>:<num_edit>` (`edit:<mid>@<timestamp_ms>` without `num_edit`),
  since an edit carries the edited message's `mid` and a message is edited more than once;
- reaction: `reaction:<mid>:<actor>:<action>:<reaction>:<timestamp_ms>`, the actor being
  `sender.id`: the time keeps a react after an unreact of the same emoji a new event;
- seen: `seen:<mid or watermark>:<actor>`;
- referral, optin, postback without `mid`: `<type>:<user_id>:<timestamp_ms>`;
- comment: the comment id;
- unknown: `sha256:` + SHA-256 hex of the canonical JSON (sorted keys, no spaces, ASCII) of
  `{"account": account_id, "item": raw}`, so the same item under two accounts differs.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ig_outbound.producers.webhooks.errors import WebhookError
from ig_outbound.producers.webhooks.events import (
    COMMENT_FIELDS,
    CommentEvent,
    EchoEvent,
    Entry,
    MessageEditEvent,
    MessageEvent,
    OptinEvent,
    PostbackEvent,
    ReactionEvent,
    ReferralEvent,
    SeenEvent,
    TypedEvent,
    UnknownEvent,
    WebhookBatch,
)

_SECONDS_BELOW = 10**11
_ENVELOPE_KEYS = frozenset({"sender", "recipient", "timestamp"})

Event = TypedEvent | UnknownEvent
Fields = dict[str, Any]


def parse_webhook(body: bytes | str) -> WebhookBatch:
    """Parse a webhook POST body (verify its signature first, over these same bytes)."""
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        data = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise WebhookError("invalid_json", "the body is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, NaN/Infinity
        raise WebhookError("invalid_json", f"the body is not JSON: {exc}") from None
    return parse_webhook_payload(data)


def parse_webhook_payload(data: object) -> WebhookBatch:
    """Parse an already decoded webhook body (a dict from `json.loads`)."""
    body, entries = _checked(data)
    try:
        parsed = [_entry(e) for e in entries]
    except RecursionError:
        raise WebhookError("invalid_json", "the body is nested too deeply") from None
    events: list[Event] = [ev for _, evs in parsed for ev in evs]
    # Built from validated parts: constructing skips validating them a second time.
    return WebhookBatch.model_construct(
        object="instagram", entries=[e for e, _ in parsed], events=events, raw=body
    )


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _checked(data: object) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if not isinstance(data, dict):
        raise WebhookError("malformed", "the body is not a JSON object")
    if data.get("object") != "instagram":
        raise WebhookError("not_instagram", "the body's object is not 'instagram'")
    entries = data.get("entry")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise WebhookError("malformed", "the body's entry is not a list of objects")
    return data, entries


@dataclass(frozen=True)
class _Ctx:
    """What an entry gives each of its items."""

    account_id: str | None
    time_ms: int | None


def _entry(entry: dict[str, Any]) -> tuple[Entry, list[Event]]:
    ctx = _Ctx(account_id=_id(entry.get("id")), time_ms=_ms(entry.get("time")))
    events: list[Event] = []
    for key, build in _ITEM_LISTS:
        if key in entry:
            events += _items(entry[key], key, ctx, build)
    if "field" in entry or "value" in entry:
        events.append(_change(entry, ctx))
    head = Entry.model_construct(id=ctx.account_id, time_ms=ctx.time_ms, raw=entry)
    return head, events


def _items(
    items: object, key: str, ctx: _Ctx, build: Callable[[dict[str, Any], _Ctx], Event]
) -> list[Event]:
    if not isinstance(items, list):
        return [_unknown({key: items}, ctx, field=key, reason=f"{key} is not a list")]
    return [
        build(item, ctx)
        if isinstance(item, dict)
        else _unknown({key: item}, ctx, field=key, reason=f"a {key} item is not an object")
        for item in items
    ]


# --- messaging[] items ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Party:
    """Who did it: `actor` (sender.id), the other party `user_id`, and whether it was us."""

    actor: str
    user_id: str
    from_business: bool


def _messaging(item: dict[str, Any], ctx: _Ctx) -> Event:
    kind = next((k for k in _MESSAGING_KINDS if k in item), None)
    body = item.get(kind) if kind is not None else None
    ts = _ms(item.get("timestamp"))
    ts = ctx.time_ms if ts is None else ts
    is_echo = isinstance(body, dict) and kind == "message" and body.get("is_echo") is True
    party = _party(item, ctx.account_id, is_echo)
    if kind is None:
        field = next((k for k in item if k not in _ENVELOPE_KEYS), None)
        return _unknown(item, ctx, field=field, party=party, ts=ts)
    if not isinstance(body, dict):
        return _unknown(item, ctx, field=kind, reason=f"{kind} is not an object", party=party)
    problem = _missing(ctx, party, ts)
    if problem is not None or party is None or ts is None or ctx.account_id is None:
        return _unknown(item, ctx, field=kind, reason=problem, party=party, ts=ts)
    cls, fields = _MESSAGING_KINDS[kind](body, party, ts)
    common = {"account_id": ctx.account_id, "user_id": party.user_id, "timestamp_ms": ts}
    common["from_business"] = party.from_business
    return _typed(cls, {**common, **fields}, item, ctx, kind)


def _party(item: dict[str, Any], account_id: str | None, is_echo: bool) -> _Party | None:
    sender = _id(_get(item, "sender", "id"))
    recipient = _id(_get(item, "recipient", "id"))
    # Our account did it: an echo, or our own id as sender (a reaction or read made in the app).
    ours = is_echo or (sender is not None and sender == account_id)
    user = recipient if ours else sender
    actor = sender or (account_id if ours else user)
    if user is None or actor is None:
        return None
    return _Party(actor=actor, user_id=user, from_business=ours)


def _missing(ctx: _Ctx, party: _Party | None, ts: int | None) -> str | None:
    if ctx.account_id is None:
        return "the entry has no id"
    if party is None:
        return "no sender/recipient id"
    return "no timestamp" if ts is None else None


def _message(body: dict[str, Any], party: _Party, ts: int) -> tuple[type[TypedEvent], Fields]:
    mid = body.get("mid")
    reply_to = body.get("reply_to")
    reply_to = reply_to if isinstance(reply_to, dict) else {}
    fields = _present(
        mid=mid,
        event_id=f"deleted:{mid}" if body.get("is_deleted") is True else mid,
        text=body.get("text"),
        attachments=body.get("attachments"),
        reply_to_mid=reply_to.get("mid"),
        is_deleted=body.get("is_deleted"),
        is_unsupported=body.get("is_unsupported"),
    )
    if party.from_business:
        return EchoEvent, fields | _present(
            is_self=body.get("is_self"), metadata=body.get("metadata")
        )
    return MessageEvent, fields | _present(
        quick_reply_payload=_get(body, "quick_reply", "payload"),
        reply_to_story=reply_to.get("story"),
        referral=body.get("referral"),
    )


def _message_edit(body: dict[str, Any], party: _Party, ts: int) -> tuple[type[TypedEvent], Fields]:
    mid, num_edit = body.get("mid"), body.get("num_edit")
    event_id = f"edit:{mid}:{num_edit}" if num_edit is not None else f"edit:{mid}@{ts}"
    fields = _present(mid=mid, text=body.get("text"), num_edit=num_edit, event_id=event_id)
    return MessageEditEvent, fields


def _postback(body: dict[str, Any], party: _Party, ts: int) -> tuple[type[TypedEvent], Fields]:
    mid = body.get("mid")
    event_id = mid if mid is not None else f"postback:{party.user_id}:{ts}"
    fields = _present(
        mid=mid, title=body.get("title"), payload=body.get("payload"),
        referral=body.get("referral"), event_id=event_id,
    )  # fmt: skip
    return PostbackEvent, fields


def _reaction(body: dict[str, Any], party: _Party, ts: int) -> tuple[type[TypedEvent], Fields]:
    mid, action, reaction = body.get("mid"), body.get("action"), body.get("reaction")
    event_id = f"reaction:{mid}:{party.actor}:{action}:{reaction or ''}:{ts}"
    fields = _present(
        mid=mid, action=action, reaction=reaction, emoji=body.get("emoji"), event_id=event_id
    )
    return ReactionEvent, fields


def _referral(body: dict[str, Any], party: _Party, ts: int) -> tuple[type[TypedEvent], Fields]:
    fields = _present(
        ref=body.get("ref"), source=body.get("source"), referral_type=body.get("type"),
        ad_id=body.get("ad_id"), referral=body, event_id=f"referral:{party.user_id}:{ts}",
    )  # fmt: skip
    return ReferralEvent, fields


def _optin(body: dict[str, Any], party: _Party, ts: int) -> tuple[type[TypedEvent], Fields]:
    # The Instagram payload is UNCONFIRMED: read Messenger's names only when they are strings.
    fields = _present(
        optin_type=_str(body.get("type")), payload=_str(body.get("payload")), optin=body,
        event_id=f"optin:{party.user_id}:{ts}",
    )  # fmt: skip
    return OptinEvent, fields


def _read(body: dict[str, Any], party: _Party, ts: int) -> tuple[type[TypedEvent], Fields]:
    mid, watermark = body.get("mid"), body.get("watermark")
    mark = mid if mid is not None else watermark
    fields = _present(mid=mid, watermark=watermark, event_id=f"seen:{mark}:{party.actor}")
    return SeenEvent, fields


_MESSAGING_KINDS: dict[
    str, Callable[[dict[str, Any], _Party, int], tuple[type[TypedEvent], Fields]]
] = {
    "message": _message,
    "message_edit": _message_edit,
    "reaction": _reaction,
    "postback": _postback,
    "referral": _referral,
    "optin": _optin,
    "read": _read,
}


# --- changes[] items and the flat field/value form -----------------------------------------


def _change(item: dict[str, Any], ctx: _Ctx) -> Event:
    field, value = item.get("field"), item.get("value")
    name = field if isinstance(field, str) else None
    if name not in COMMENT_FIELDS:
        return _unknown(item, ctx, field=name)
    if not isinstance(value, dict):
        return _unknown(item, ctx, field=name, reason="value is not an object")
    user = _id(_get(value, "from", "id"))
    if ctx.account_id is None or user is None or ctx.time_ms is None:
        reason = "no entry id, value.from.id or entry time"
        return _unknown(item, ctx, field=name, reason=reason, user_id=user)
    media = value.get("media")
    media = media if isinstance(media, dict) else {}
    fields = _present(
        account_id=ctx.account_id, user_id=user, timestamp_ms=ctx.time_ms,
        from_business=user == ctx.account_id, event_id=_id(value.get("id")),
        comment_id=_id(value.get("id")), text=value.get("text"),
        username=_get(value, "from", "username"), media_id=media.get("id"),
        media_product_type=media.get("media_product_type"), parent_id=value.get("parent_id"),
        is_live=name == "live_comments",
    )  # fmt: skip
    return _typed(CommentEvent, fields, item, ctx, name)


# --- building ------------------------------------------------------------------------------


def _typed(
    cls: type[TypedEvent], fields: Fields, item: dict[str, Any], ctx: _Ctx, field: str | None
) -> Event:
    try:
        return cls.model_validate({**fields, "raw": item})
    except ValidationError as exc:
        reason = f"{field} does not fit: " + "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])} ({err['msg']})"
            for err in exc.errors(include_url=False, include_input=False)[:3]
        )
        return _unknown(
            item, ctx, field=field, reason=reason, user_id=fields.get("user_id"),
            ts=fields.get("timestamp_ms"),
        )  # fmt: skip


def _unknown(
    item: dict[str, Any],
    ctx: _Ctx,
    *,
    field: str | None,
    reason: str | None = None,
    party: _Party | None = None,
    user_id: str | None = None,
    ts: int | None = None,
) -> UnknownEvent:
    if ts is None:
        ts = _ms(item.get("timestamp"))
    return UnknownEvent.model_construct(
        account_id=ctx.account_id,
        user_id=party.user_id if party is not None else user_id,
        timestamp_ms=ts if ts is not None else ctx.time_ms,
        event_id=_content_id(ctx.account_id, item),
        field=field,
        reason=reason,
        raw=item,
    )


def _content_id(account_id: str | None, item: dict[str, Any]) -> str:
    try:
        canonical = json.dumps(
            {"account": account_id, "item": item},
            sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False,
        )  # fmt: skip
    except (TypeError, ValueError) as exc:  # a decoded dict that JSON never produced
        raise WebhookError("malformed", f"the body is not JSON data: {exc}") from None
    return "sha256:" + hashlib.sha256(canonical.encode("ascii")).hexdigest()


# --- reading values ------------------------------------------------------------------------


def _get(data: Mapping[str, Any], *path: str) -> Any:
    value: Any = data
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _id(value: object) -> str | None:
    """An id as Meta sends it (a string); a JSON number is read as its digits."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _ms(value: object) -> int | None:
    """A time value in ms; a value below 10^11 is seconds (see the module docstring)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return int(value) if abs(value) >= _SECONDS_BELOW else int(value * 1000)


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _present(**fields: Any) -> Fields:
    """The fields that were given (None leaves a model's default)."""
    return {k: v for k, v in fields.items() if v is not None}


_ITEM_LISTS: tuple[tuple[str, Callable[[dict[str, Any], _Ctx], Event]], ...] = (
    ("messaging", _messaging),
    ("changes", _change),
    ("standby", lambda item, ctx: _unknown(item, ctx, field="standby")),
)
