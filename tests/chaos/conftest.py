"""Chaos tests: real processes (redis-server with AOF, the Graph emulator, `ig-outbound
worker` processes) that get SIGKILLed, SIGTERMed and cut off from Redis on purpose.

The harness (`ig_outbound.harness.chaos`: `ChaosStack`, `run_chaos`, `Ledger`) is shared with
`bench/soak.py`, the long version of the same proof, so the suite and the soak check exactly
the same books.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ig_outbound.harness.chaos import ChaosStack, fast_settings


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[ChaosStack]:
    """A fresh stack per test (own Redis, own emulator, own counters); no worker started.

    Workers run `fast_settings` (job timeout 4 s: ARQ re-runs a killed worker's job 14 s
    later). Their logs stay in `tmp_path` for a post-mortem."""
    with ChaosStack(tmp_path, tune=fast_settings) as s:
        yield s
