"""The books of a chaos run, per idempotency key: what the proof that nothing is lost and
nothing doubled checks (records, the outcomes stream, the fleet counter, Graph's deliveries).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Ledger:
    """Everything the proof checks, per idempotency key."""

    accepted: list[str]
    statuses: dict[str, str | None]  # the record's outcome status (None: no outcome)
    ambiguous: dict[str, int]  # the record's `ambiguous` count
    stream: Counter[str]  # entries on the outcomes stream per key
    deliveries: Counter[str]  # emulator deliveries per key
    unmapped_calls: int  # emulator calls whose text names no intent of this run
    ambiguous_counter: int  # `<prefix>:counters` field `ambiguous_sends`
    reasons: Counter[str] = field(default_factory=Counter)  # outcomes per reason
    # Per key, the fault the emulator injected into each delivery's answer ("": none).
    delivery_faults: dict[str, list[str]] = field(default_factory=dict)

    def without_outcome(self) -> list[str]:
        return [k for k in self.accepted if self.statuses.get(k) is None]

    def not_once_on_stream(self) -> dict[str, int]:
        return {k: self.stream[k] for k in self.accepted if self.stream[k] != 1}

    def stream_strangers(self) -> list[str]:
        known = set(self.accepted)
        return [k for k in self.stream if k not in known]

    def over_delivered(self) -> dict[str, tuple[int, int]]:
        """Keys delivered more often than 1 + their ambiguous count: (deliveries, ambiguous)."""
        return {
            k: (self.deliveries[k], self.ambiguous.get(k, 0))
            for k in self.accepted
            if self.deliveries[k] > 1 + self.ambiguous.get(k, 0)
        }

    def sent_undelivered(self) -> list[str]:
        return [
            k for k in self.accepted if self.statuses.get(k) == "sent" and not self.deliveries[k]
        ]

    def delivered_strangers(self) -> list[str]:
        known = set(self.accepted)
        return [k for k in self.deliveries if k not in known]

    @property
    def extra_deliveries(self) -> int:
        return sum(max(self.deliveries[k] - 1, 0) for k in self.accepted)

    @property
    def doubled(self) -> int:
        """Intents the emulator received more than once (each needs an ambiguous send)."""
        return len(self.doubled_keys())

    def doubled_keys(self) -> list[str]:
        return [k for k in self.accepted if self.deliveries[k] > 1]

    def doubled_causes(self) -> Counter[str]:
        """Doubled intents by the answer their first delivery got (the emulator's fault:
        `timeout`, `error_5xx_after_send`, ...; `none`: a plain success, so the resend came
        from a run that did not see it, e.g. a worker killed mid-send)."""
        return Counter(
            (self.delivery_faults.get(k) or ["?"])[0] or "none" for k in self.doubled_keys()
        )

    @property
    def ambiguous_sum(self) -> int:
        return sum(self.ambiguous.values())

    @property
    def lost(self) -> int:
        """Accepted intents with no outcome, or `sent` but never received by the emulator."""
        return len(set(self.without_outcome()) | set(self.sent_undelivered()))

    def status_counts(self) -> dict[str, int]:
        return dict(Counter(str(s) for s in self.statuses.values()))

    def violations(self) -> list[str]:
        """Every broken promise, described (empty when the books balance)."""
        out: list[str] = []
        checks: list[tuple[str, Any]] = [
            ("accepted intents without an outcome", self.without_outcome()),
            ("intents not exactly once on the outcomes stream", self.not_once_on_stream()),
            ("outcome stream entries for unknown keys", self.stream_strangers()),
            ("delivered more than 1 + ambiguous times", self.over_delivered()),
            ("`sent` but never delivered", self.sent_undelivered()),
            ("deliveries of unknown keys", self.delivered_strangers()),
        ]
        for label, found in checks:
            if found:
                sample = list(found.items())[:10] if isinstance(found, dict) else found[:10]
                out.append(f"{len(found)} {label}, e.g. {sample}")
        if self.unmapped_calls:
            out.append(f"{self.unmapped_calls} emulator calls carry no intent text")
        if self.extra_deliveries > self.ambiguous_counter:
            out.append(
                f"{self.extra_deliveries} extra deliveries but only "
                f"{self.ambiguous_counter} ambiguous sends counted"
            )
        if self.ambiguous_counter != self.ambiguous_sum:
            out.append(
                f"ambiguous_sends counter {self.ambiguous_counter} != "
                f"sum of per-record counts {self.ambiguous_sum}"
            )
        return out
