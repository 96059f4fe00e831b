"""The fleet's state, read from Redis in one script call (`producers/lua/fleet.lua`): what
the fleet's metrics serve (worker/fleet_metrics.py) and `ig-outbound top` shows."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from ig_outbound.producers.keys import Keys
from ig_outbound.producers.redis_util import resolve
from ig_outbound.producers.scripts import FLEET, HEARTBEAT, RECLAIM

ENQUEUED = "enqueued"
REFUSED_PREFIX = "refused:"


@dataclass(frozen=True)
class FleetSnapshot:
    now_ms: int  # Redis's clock
    ready: int  # intents due now
    scheduled: int  # intents due later
    oldest_ready_ms: int | None  # when the oldest ready intent became due
    dead_letters: int
    workers: int  # live workers (fresh heartbeat)
    paused: dict[str, int] = field(default_factory=dict)  # cause -> accounts
    slowed: int = 0
    counters: dict[str, int] = field(default_factory=dict)  # <prefix>:counters

    @property
    def oldest_ready_age_s(self) -> float:
        if self.oldest_ready_ms is None:
            return 0.0
        return max(self.now_ms - self.oldest_ready_ms, 0) / 1000

    @property
    def enqueued(self) -> int:
        return self.counters.get(ENQUEUED, 0)

    @property
    def refused(self) -> dict[str, int]:
        """Intents refused at enqueue, by reason."""
        return {
            name.removeprefix(REFUSED_PREFIX): n
            for name, n in self.counters.items()
            if name.startswith(REFUSED_PREFIX)
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "now_ms": self.now_ms,
            "ready": self.ready,
            "scheduled": self.scheduled,
            "oldest_ready_age_s": round(self.oldest_ready_age_s, 3),
            "dead_letters": self.dead_letters,
            "workers": self.workers,
            "paused": dict(self.paused),
            "slowed": self.slowed,
            "enqueued": self.enqueued,
            "refused": self.refused,
        }


def _mapping(value: object) -> dict[str, int]:
    # cjson encodes an empty table as [], a filled one as an object.
    if not isinstance(value, dict):
        return {}
    return {str(k): int(v) for k, v in value.items() if isinstance(v, int | float)}


class Fleet:
    """Reads the fleet's state and records this worker's heartbeat (scripts loaded once)."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._read = redis.register_script(FLEET.source)
        self._beat = redis.register_script(HEARTBEAT.source)
        self._reclaim = redis.register_script(RECLAIM.source)

    async def read(self, heartbeat_stale_s: float) -> FleetSnapshot:
        """The fleet's state now; workers whose heartbeat is older than `heartbeat_stale_s`
        are not counted as live (`reclaim` forgets them)."""
        raw = await self._read(args=[self._keys.prefix, int(heartbeat_stale_s * 1000)])
        data = json.loads(raw)
        oldest = data.get("oldest_ready_ms")
        return FleetSnapshot(
            now_ms=int(data["now_ms"]),
            ready=int(data["ready"]),
            scheduled=int(data["scheduled"]),
            oldest_ready_ms=int(oldest) if isinstance(oldest, int | float) else None,
            dead_letters=int(data["dead_letters"]),
            workers=int(data["workers"]),
            paused=_mapping(data.get("paused")),
            slowed=int(data.get("slowed", 0)),
            counters=_mapping(data.get("counters")),
        )

    async def heartbeat(
        self, worker_id: str, transit_ms: int | None = None, heartbeat_stale_s: float = 3.0
    ) -> int | None:
        """This worker is alive (on Redis's clock) and measured a transit allowance of
        `transit_ms` (None: not yet); answers the fleet's (the largest among live workers;
        None while none has measured one)."""
        reply = await self._beat(
            keys=[self._keys.workers, self._keys.transit, self._keys.transit_fleet],
            args=[
                worker_id,
                "" if transit_ms is None else int(transit_ms),
                int(heartbeat_stale_s * 1000),
            ],
        )
        fleet = int(reply)
        return None if fleet < 0 else fleet

    async def reclaim(self, heartbeat_stale_s: float) -> tuple[int, int]:
        """Take back the jobs of workers whose heartbeat is older than `heartbeat_stale_s`
        (`producers/lua/reclaim.lua`): (workers, jobs) reclaimed."""
        reply = await self._reclaim(args=[self._keys.prefix, int(heartbeat_stale_s * 1000)])
        return int(reply[0]), int(reply[1])

    async def leave(self, worker_id: str) -> None:
        """This worker stops (a clean exit is not a dead worker for a while). Should its
        running list still name a job (an entry whose removal failed), it stays listed and
        is reclaimed like a dead worker's."""
        if not await resolve(self._redis.hlen(self._keys.running(worker_id))):
            await self._redis.zrem(self._keys.workers, worker_id)
        await resolve(self._redis.hdel(self._keys.transit, worker_id))


class ReclaimGate:
    """Whether this worker may judge others dead now.

    Another worker's stale heartbeat proves it dead only if this one could have seen it beat:
    after a Redis outage every worker's last beat is old, and the first to reconnect would
    otherwise take back the jobs of workers that are alive and sending (doubles). So a worker
    reclaims only once its own beats have gone through, without a failure or a gap (a beat
    that hung while the Redis client retried), for longer than the staleness: long enough
    for every live worker to have beaten again too."""

    def __init__(self, stale_s: float, interval_s: float) -> None:
        self._stale_s = stale_s
        self._max_gap_s = 2 * interval_s
        self._beating_since: float | None = None
        self._last_ok: float | None = None

    def beat(self, ok: bool, now: float) -> None:
        """A beat of this worker went through (`ok`) or failed, at monotonic time `now`."""
        if not ok:
            self._beating_since = self._last_ok = None
            return
        if self._last_ok is None or now - self._last_ok > self._max_gap_s:
            self._beating_since = now  # the first beat, or the first after a gap
        self._last_ok = now

    def open(self, now: float) -> bool:
        return self._beating_since is not None and now - self._beating_since > self._stale_s
