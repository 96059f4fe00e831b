"""Which webhook fields each account subscribed to (``/{IG_ID}/subscribed_apps``).

The field names are the union of both spellings Meta's pages use (``config.WEBHOOK_FIELDS``).
With ``webhooks.require_subscription`` on, an event is sent only for an account subscribed to
one of the fields in ``KIND_FIELDS`` for the event's kind:

====================  ==============================================================
kind (webhooks log)   fields that carry it
====================  ==============================================================
message (user DM)     messages
echo                  messages, message_echoes (Meta sends echoes on ``messages``;
                      IGL-WH lists ``message_echoes`` too, so either is taken)
reaction              message_reactions, messaging_reactions (both spellings)
postback              messaging_postbacks
seen                  messaging_seen
comment               comments
====================  ==============================================================

A kind not in the table is never held back. Every method runs under the state lock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ig_outbound.emulator import graph_errors as ge
from ig_outbound.emulator.config import WEBHOOK_FIELDS

PARAM = "subscribed_fields"
KIND_FIELDS: dict[str, frozenset[str]] = {
    "message": frozenset({"messages"}),
    "echo": frozenset({"messages", "message_echoes"}),
    "reaction": frozenset({"message_reactions", "messaging_reactions"}),
    "postback": frozenset({"messaging_postbacks"}),
    "seen": frozenset({"messaging_seen"}),
    "comment": frozenset({"comments"}),
}


def parse_fields(value: Any) -> list[str]:
    """``subscribed_fields`` as Graph reads it: a comma-separated string (query or form) or a
    JSON list; each name must be known (100 naming the first bad one). Order kept, no
    duplicates."""
    if isinstance(value, str):
        names = [part.strip() for part in value.split(",")]
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        names = [item.strip() for item in value]
    else:
        names = []
    if not any(names):
        raise ge.missing_parameter(PARAM)
    for index, name in enumerate(names):
        if name not in WEBHOOK_FIELDS:
            raise ge.param_not_one_of(f"{PARAM}[{index}]", WEBHOOK_FIELDS, name)
    return list(dict.fromkeys(names))


class Subscriptions:
    """Per account, the fields it subscribed to; an account absent is not subscribed."""

    def __init__(self) -> None:
        self._fields: dict[str, list[str]] = {}

    def restart(self, configured: Mapping[str, list[str]]) -> None:
        self._fields = {ig_id: list(fields) for ig_id, fields in configured.items() if fields}

    def subscribe(self, ig_id: str, fields: Iterable[str]) -> None:
        """Replace the account's field set, as a POST to Graph does."""
        self._fields[ig_id] = list(fields)

    def unsubscribe(self, ig_id: str) -> None:
        self._fields.pop(ig_id, None)

    def fields(self, ig_id: str) -> list[str]:
        return list(self._fields.get(ig_id, ()))

    def covers(self, ig_id: str, kind: str) -> bool:
        """Whether the account would get a webhook of this kind."""
        needed = KIND_FIELDS.get(kind)
        return needed is None or not needed.isdisjoint(self._fields.get(ig_id, ()))
