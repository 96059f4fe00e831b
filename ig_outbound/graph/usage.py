"""Rate-limit usage headers of Graph answers [G-RL, fact sheet §3].

``X-Business-Use-Case-Usage`` (BUC, what governs graph.instagram.com)::

    {"<business-object-id>": [{"type": "instagram", "call_count": 28, "total_cputime": 25,
      "total_time": 25, "estimated_time_to_regain_access": 0}]}

``X-App-Usage`` (platform limits, rarely present next to BUC)::

    {"call_count": 28, "total_time": 25, "total_cputime": 25}

Values are percentages of the limit (throttling at 100) and minutes. These headers are
advisory: a malformed one must never fail a send, so parsers log and return nothing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import structlog

__all__ = [
    "AppUsage",
    "BucUsage",
    "max_usage_pct",
    "parse_app_usage",
    "parse_buc_usage",
    "regain_access_s",
]

log = structlog.get_logger(__name__)

# Up to 32 business objects of ~150 bytes each; anything far bigger is not a real header.
_MAX_HEADER_LEN: Final = 64 * 1024
_LOGGED_LEN: Final = 200


@dataclass(frozen=True)
class BucUsage:
    """One business object's usage: percentages, and minutes until unthrottled."""

    type: str
    call_count: float
    total_cputime: float
    total_time: float
    estimated_time_to_regain_access_min: float

    @property
    def max_pct(self) -> float:
        return max(self.call_count, self.total_cputime, self.total_time)


@dataclass(frozen=True)
class AppUsage:
    """``X-App-Usage``: percentages over a rolling hour."""

    call_count: float
    total_cputime: float
    total_time: float

    @property
    def max_pct(self) -> float:
        return max(self.call_count, self.total_cputime, self.total_time)


class _Invalid(ValueError):
    """Raised internally for a malformed header; never leaves this module."""


def parse_buc_usage(header_value: str | None) -> dict[str, BucUsage]:
    """Parse ``X-Business-Use-Case-Usage``; ``{}`` when absent or malformed (logged).

    An object may list several entries (one per use-case type); the most constrained one is
    kept, since that is the one that throttles.
    """
    if header_value is None or not header_value.strip():
        return {}
    try:
        data = _load_object(header_value)
        result: dict[str, BucUsage] = {}
        for object_id, entries in data.items():
            if not isinstance(entries, list) or not entries:
                raise _Invalid(f"entries of {object_id[:40]!r} are not a non-empty list")
            usages = [_buc_entry(entry) for entry in entries]
            result[object_id] = max(
                usages, key=lambda u: (u.max_pct, u.estimated_time_to_regain_access_min)
            )
        return result
    except _Invalid as exc:
        _warn("x-business-use-case-usage", header_value, str(exc))
        return {}


def parse_app_usage(header_value: str | None) -> AppUsage | None:
    """Parse ``X-App-Usage``; ``None`` when absent or malformed (logged)."""
    if header_value is None or not header_value.strip():
        return None
    try:
        data = _load_object(header_value)
        return AppUsage(
            call_count=_pct(data, "call_count"),
            total_cputime=_pct(data, "total_cputime"),
            total_time=_pct(data, "total_time"),
        )
    except _Invalid as exc:
        _warn("x-app-usage", header_value, str(exc))
        return None


def max_usage_pct(usage: Mapping[str, BucUsage]) -> float:
    """The highest percentage over all objects and counters; 0.0 for no usage."""
    return max((u.max_pct for u in usage.values()), default=0.0)


def regain_access_s(usage: Mapping[str, BucUsage]) -> float:
    """Longest ``estimated_time_to_regain_access`` over all objects, in seconds (0.0 if none)."""
    return 60.0 * max((u.estimated_time_to_regain_access_min for u in usage.values()), default=0.0)


def _load_object(header_value: str) -> dict[str, object]:
    if len(header_value) > _MAX_HEADER_LEN:
        raise _Invalid(f"header too long ({len(header_value)} chars)")
    try:
        data = json.loads(header_value)
    except (ValueError, RecursionError) as exc:
        raise _Invalid("not JSON") from exc
    if not isinstance(data, dict):
        raise _Invalid("not a JSON object")
    return data


def _buc_entry(entry: object) -> BucUsage:
    if not isinstance(entry, dict):
        raise _Invalid("entry is not an object")
    use_case = entry.get("type", "")
    if not isinstance(use_case, str):
        raise _Invalid("type is not a string")
    return BucUsage(
        type=use_case[:40],
        call_count=_pct(entry, "call_count"),
        total_cputime=_pct(entry, "total_cputime"),
        total_time=_pct(entry, "total_time"),
        estimated_time_to_regain_access_min=_pct(entry, "estimated_time_to_regain_access"),
    )


def _pct(data: Mapping[str, object], key: str) -> float:
    """A non-negative finite number; a missing key counts as 0 (the header is advisory)."""
    value = data.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid(f"{key} is not a number")
    try:
        number = float(value)
    except OverflowError as exc:  # JSON ints are unbounded
        raise _Invalid(f"{key} out of range") from exc
    if not math.isfinite(number) or number < 0:
        raise _Invalid(f"{key} out of range")
    return number


def _warn(header: str, value: str, problem: str) -> None:
    log.warning(
        "graph.usage_header_invalid",
        header=header,
        problem=problem,
        value=value[:_LOGGED_LEN],
        value_len=len(value),
    )
