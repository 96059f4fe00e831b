"""The emulator's clock: the real one plus an offset tests move forward.

Every rule about the age of something in Instagram's world reads it: the messaging window,
the 7 days of a private reply, the dates of comments and the timestamps of webhooks. Rate-limit
windows and recorded calls stay on the real clock (``time.time()``): they measure the traffic
the emulator really receives, and jumping the clock must not empty a window a burst is in.
"""

from __future__ import annotations

import time


class EmulatorClock:
    def __init__(self, offset_s: float = 0.0) -> None:
        self.offset_s = offset_s

    def now(self) -> float:
        """Epoch seconds in Instagram's world."""
        return time.time() + self.offset_s

    def at(self, real_time: float) -> float:
        """A real ``time.time()`` reading (e.g. a request's arrival) on the emulator's clock."""
        return real_time + self.offset_s

    def advance(self, seconds: float) -> None:
        self.offset_s += seconds
