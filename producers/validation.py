"""Turning untrusted input into a `MessageIntent`, or every problem with it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from producers.errors import IntentError, Problem, problems_from
from producers.intent import MessageIntent

_ADAPTER: TypeAdapter[MessageIntent] = TypeAdapter(MessageIntent)


def readable_key(data: object) -> str | None:
    """The idempotency key of raw input if one can be read safely, else None."""
    if isinstance(data, Mapping):
        key = data.get("idempotency_key")
        if isinstance(key, str) and 0 < len(key) <= 200 and key.isprintable() and " " not in key:
            return key
    return None


def parse_intent(data: MessageIntent | Mapping[str, Any] | str | bytes) -> MessageIntent:
    """Validate a dict, JSON text or model; raise `IntentError` naming every problem."""
    if isinstance(data, MessageIntent):
        return data
    try:
        if isinstance(data, str | bytes):
            return MessageIntent.model_validate_json(data)
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        raw: object = data
        raise IntentError(problems_from(exc), key=readable_key(raw)) from None
    except (TypeError, ValueError) as exc:  # e.g. not a mapping at all
        raise IntentError([Problem("intent", "type_error", str(exc))]) from None
