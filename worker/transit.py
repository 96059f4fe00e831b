"""The transit allowance: how much later than its rate slot a send may reach Graph.

Meta counts calls at their arrival; the limiter counts them when it admits them (Redis's
clock, `producers/lua/rate_window.lua`). Between the two lie the trip back from Redis, this
process's event loop, the connection and the network. If that delay were constant it would
not matter (every send shifts alike); what matters is its *spread*: two sends admitted d ms
apart can arrive d - spread ms apart. So a window of Meta's length + spread that admits at
most Meta's limit keeps every one of Meta's windows at or under the limit at arrival.

One-way delays cannot be seen, round trips can: a send's round trip (from its admission, on
Redis's clock, to Graph's answer) contains its admission -> arrival delay, and the round trips'
spread bounds the forward delays' spread (Graph's own processing time only widens it, which
errs on the safe side). The allowance is the spread of recent round trips (the slowest kept
over the fastest one, x1.1) plus a floor for clock rounding, never above `transit_max_ms`: the
measured value only ever narrows the fixed margin the fleet would otherwise use. A worker
with too few samples yet measures nothing: the fleet takes the largest allowance among the
workers that have one (`producers/lua/heartbeat.lua`), and the maximum while none has.
"""

from __future__ import annotations

import math
from collections import deque

from ig_outbound.worker.settings import RateSettings

# Round trips kept (a few seconds of one busy account) and needed before measuring at all.
SAMPLES = 512
MIN_SAMPLES = 32
# A new process's first round trips open connections (TCP, the pool) and warm caches: not
# what its sends will take, so they are not kept.
SKIP_FIRST = 16
# The quantile taken as "slowest": the slowest of the kept round trips. (A 99.5th percentile
# let 3-4 of 21,000 sends arrive over the limit in a long saturated run: at full pace every
# window is full, so a single send later than the allowance meets one.)
QUANTILE = 1.0
# The spread is widened by this much: a violation costs a throttle (Meta pauses the account
# for minutes), a few milliseconds of window cost a percent of pace.
SAFETY = 1.1
# The allowance moves in steps of this much, so the fleet's windows do not churn.
STEP_MS = 5


class TransitMeter:
    """Round trips of this worker's sends, and the allowance they imply."""

    def __init__(self, rate: RateSettings) -> None:
        self._floor_ms = rate.transit_min_ms
        self._max_ms = rate.transit_max_ms
        self._measured = rate.transit_measured
        self._samples: deque[float] = deque(maxlen=SAMPLES)
        self._seen = 0

    def observe(self, round_trip_ms: float) -> None:
        """One send's round trip: from its slot's admission to Graph's answer."""
        if round_trip_ms >= 0 and math.isfinite(round_trip_ms):
            self._seen += 1
            if self._seen > SKIP_FIRST:
                self._samples.append(round_trip_ms)

    def allowance_ms(self) -> int | None:
        """This worker's allowance: spread of recent round trips + floor, within [floor, max];
        None before enough round trips were seen (the maximum when measuring is off)."""
        if not self._measured:
            return self._max_ms
        if len(self._samples) < MIN_SAMPLES:
            return None
        ordered = sorted(self._samples)
        slow = ordered[min(len(ordered) - 1, int(QUANTILE * len(ordered)))]
        spread = (slow - ordered[0]) * SAFETY
        stepped = math.ceil((spread + self._floor_ms) / STEP_MS) * STEP_MS
        return max(self._floor_ms, min(self._max_ms, stepped))
