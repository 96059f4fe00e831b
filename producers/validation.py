"""Turning untrusted input into a `MessageIntent`, or every problem with it."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from ig_outbound.producers.errors import IntentError, Problem, problems_from
from ig_outbound.producers.intent import (
    MAX_IDEMPOTENCY_KEY,
    MAX_INTENT_DEPTH,
    MessageIntent,
    cross_field_problems,
)

_ADAPTER: TypeAdapter[MessageIntent] = TypeAdapter(MessageIntent)


_KEY = re.compile(rf"^[\x21-\x7e]{{1,{MAX_IDEMPOTENCY_KEY}}}$")


def readable_key(data: object) -> str | None:
    """The idempotency key of raw input if it is a valid key, else None."""
    if isinstance(data, Mapping):
        key = data.get("idempotency_key")
        if isinstance(key, str) and _KEY.match(key):
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
        problems = problems_from(exc)
        raw = _as_mapping(data)
        if raw is not None and not any(p.loc == "intent" for p in problems):
            problems += [Problem("intent", "value_error", m) for m in cross_field_problems(raw)]
        raise IntentError(problems, key=readable_key(raw)) from None
    except RecursionError:  # nested deeper than Python's stack: never a real intent
        problem = Problem("intent", "too_deep", f"nested deeper than {MAX_INTENT_DEPTH} levels")
        raise IntentError([problem]) from None
    except (TypeError, ValueError) as exc:  # e.g. not a mapping at all
        raise IntentError([Problem("intent", "type_error", str(exc))]) from None


def _as_mapping(data: object) -> Mapping[str, Any] | None:
    if isinstance(data, Mapping):
        return data
    if isinstance(data, str | bytes):
        try:
            loaded = json.loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return None
        return loaded if isinstance(loaded, Mapping) else None
    return None
