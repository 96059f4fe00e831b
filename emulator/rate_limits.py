"""Meta's per-account Send API rate limits (fact sheet §3) over sliding windows.

Each account (IG_ID) has three separate budgets, its *classes*: ``light`` (100/s), ``media``
(audio/video, 10/s) and ``private_reply`` (750/h). A window is any span of ``window_s``
seconds (``private_replies_window_s`` for private replies); a call is admitted only if, with
it, no such span holds more than ``limit`` accepted calls. Times are the calls' arrival times
(``time.time()``, the clock of the recorded calls), so ``max_calls_in_any_window`` measured
afterwards on the recorded calls never exceeds the limit while enforcement is on.

Arrival times can reach the state lock slightly out of order (the body is read, and injected
latency slept, before the lock is taken), so each window is a sorted list and the admission
check also looks at spans reaching past the call. Windows are kept (and counted) even while
enforcement is off, so switching it on mid-run starts from the real recent traffic.

Not thread-safe by itself: ``EmulatorState`` calls it under its lock.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Literal

from ig_outbound.emulator.config import RateLimitConfig
from ig_outbound.emulator.graph_errors import buc_usage_header

RateClass = Literal["light", "media", "private_reply"]
RATE_CLASSES: tuple[RateClass, ...] = ("light", "media", "private_reply")
MEDIA_KINDS = frozenset({"audio", "video"})
# Accepted times are kept this long past their window, for calls that reach the lock late.
LATE_ARRIVAL_S = 5.0
_PRUNE_MIN = 64


def rate_class_of(comment_id: str | None, message_kind: str | None) -> RateClass:
    """The budget a send draws from: private reply, audio/video, or everything else."""
    if comment_id is not None:
        return "private_reply"
    if message_kind in MEDIA_KINDS:
        return "media"
    return "light"


def max_in_any_window(times: Iterable[float], window_s: float) -> int:
    """The most calls in any span of ``window_s`` seconds (two-pointer pass over sorted times)."""
    ordered = sorted(times)
    best = lo = 0
    for hi, end in enumerate(ordered):
        start = end - window_s  # spans are (end - window_s, end]
        while ordered[lo] <= start:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


class RateLimiter:
    """Sliding windows and violation counters for all accounts and classes."""

    def __init__(self, config: RateLimitConfig) -> None:
        self.config = config
        self._windows: defaultdict[tuple[str, RateClass], list[float]] = defaultdict(list)
        self._violations: Counter[tuple[str, RateClass]] = Counter()

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    def limit(self, rate_class: RateClass) -> int:
        c = self.config
        if rate_class == "light":
            return c.light_per_s
        if rate_class == "media":
            return c.media_per_s
        return c.private_replies_per_h

    def window_s(self, rate_class: RateClass) -> float:
        c = self.config
        return c.private_replies_window_s if rate_class == "private_reply" else c.window_s

    # --- enforcement -------------------------------------------------------------------------

    def admit(self, ig_id: str, rate_class: RateClass, at: float) -> bool:
        """Whether a call arriving ``at`` fits its window; a refusal counts as a violation.

        Admitting does not count the call: ``record`` does, once it is delivered.
        """
        times = self._windows.get((ig_id, rate_class), [])
        limit, window = self.limit(rate_class), self.window_s(rate_class)
        # Spans (end - window, end] holding ``at``: their ends run from ``at`` to just before
        # ``at + window``; the fullest ends at ``at`` or at an accepted call after it.
        ends = [at]
        i = bisect_right(times, at)
        while i < len(times) and times[i] - window < at:
            ends.append(times[i])
            i += 1
        for end in ends:
            if bisect_right(times, end) - bisect_right(times, end - window) >= limit:
                self._violations[(ig_id, rate_class)] += 1
                return False
        return True

    def record(self, ig_id: str, rate_class: RateClass, at: float) -> None:
        """Count a delivered call in its window; drop times no window can reach any more."""
        times = self._windows[(ig_id, rate_class)]
        insort(times, at)
        cutoff = times[-1] - self.window_s(rate_class) - LATE_ARRIVAL_S
        stale = bisect_right(times, cutoff)
        if stale >= _PRUNE_MIN and stale * 2 >= len(times):  # amortized: keeps memory bounded
            del times[:stale]

    # --- reporting ----------------------------------------------------------------------------

    def usage_percent(self, ig_id: str, at: float) -> int:
        """How full the account's busiest window is at ``at``, in percent (0-100)."""
        busiest = 0
        for rate_class in RATE_CLASSES:
            times = self._windows.get((ig_id, rate_class))
            if not times:
                continue
            in_window = len(times) - bisect_right(times, at - self.window_s(rate_class))
            busiest = max(busiest, in_window * 100 // self.limit(rate_class))
        return min(busiest, 100)

    def usage_header(self, ig_id: str, at: float, *, throttled: bool = False) -> str:
        """``X-Business-Use-Case-Usage`` for the account; regain time only when at 100 %."""
        percent = 100 if throttled else self.usage_percent(ig_id, at)
        # Another app (or a person) spending the same account's budget shows up as usage.
        percent = max(percent, self.config.usage_floor_pct)
        regain = self.config.regain_minutes if percent >= 100 else 0
        return buc_usage_header(
            ig_id,
            percent=percent,
            regain_minutes=regain,
            total_cputime=percent,
            total_time=percent,
        )

    def violations(self) -> int:
        return sum(self._violations.values())

    def violations_by_account_class(self) -> dict[str, dict[str, int]]:
        result: dict[str, dict[str, int]] = {}
        for (ig_id, rate_class), count in sorted(self._violations.items()):
            result.setdefault(ig_id, {})[rate_class] = count
        return result
