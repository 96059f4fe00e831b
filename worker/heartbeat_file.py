"""The worker's heartbeat file: touched by its event loop, read by `ig-outbound health live`
(a Kubernetes exec liveness probe). Only the event loop's own progress counts, so a Redis
outage never makes every pod look dead; a wedged loop does."""

from __future__ import annotations

import os
import time
from pathlib import Path


def touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    now = time.time()
    os.utime(path, (now, now))


def age_s(path: Path) -> float | None:
    """Seconds since the file was last touched, or None when there is none."""
    try:
        return max(time.time() - path.stat().st_mtime, 0.0)
    except FileNotFoundError:
        return None
