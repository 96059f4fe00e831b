"""Capped exponential backoff with full jitter (AWS architecture blog's "Full Jitter")."""

from __future__ import annotations

import random

MIN_DELAY_S = 0.05


def full_jitter(
    attempt: int, base_s: float, cap_s: float, rng: random.Random | None = None
) -> float:
    """Delay before retry number `attempt` (1-based): uniform in [0, min(cap, base * 2^(n-1))].

    A small floor keeps a retry from spinning on a hot failure."""
    ceiling = min(cap_s, base_s * (2 ** max(attempt - 1, 0)))
    draw = (rng or random).uniform(0.0, ceiling)
    return max(draw, MIN_DELAY_S)
