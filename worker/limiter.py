"""The fleet-wide rate limiter: one budget per (account, rate class), in Redis.

Two parts, both atomic Lua on Redis time, so every worker on every machine shares them:

* **Reservation (GCRA, virtual scheduling).** `<p>:tat:<account>:<class>` holds the
  theoretical arrival time. Reserving a slot returns the earliest time >= `earliest` that keeps
  the class at `interval` spacing (with `burst` tolerance) and advances it. The enqueue script
  reserves a slot for every conversation head and queues its job at that time, so a backlog of
  one account sits in the future of the ARQ queue and never hides another account's intents.
* **Enforcement (sliding window).** `<p>:win:<account>:<class>` logs the sends of the last
  window (Meta's window + the fleet's transit allowance, worker/transit.py); a send goes only
  if fewer than `limit x utilization` are in it, else the job
  reserves a slot and waits for it (once, almost always). This is the hard guarantee: never
  more than the limit in any window, whatever pauses, retries or restarts did to the schedule.
  The send job takes its place in the journal's begin script (`RateLimiter.slot`), after the
  record's checks and with the send's lease, in one round trip.

A pause (`<p>:pause:<account>`) makes every reservation start after it; `<p>:slow:<account>`
(set when Meta's usage header nears 100 %) scales the account's limits down for a while.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from ig_outbound.producers.intent import Priority
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.rate_class import RateClass
from ig_outbound.producers.redis_util import resolve
from ig_outbound.producers.scripts import RATE_ACQUIRE
from ig_outbound.worker.settings import RateSettings

# How much the transit allowance may narrow per heartbeat (it widens at once).
TRANSIT_NARROWING_MS = 10


@dataclass(frozen=True)
class Budget:
    """One class's limit as enforced: `limit` sends per `window_ms`, slots `interval_ms` apart,
    `burst` of them at once."""

    limit: int
    window_ms: int
    interval_ms: float
    burst: int
    transit_ms: int = 0  # the part of `window_ms` that is the transit allowance


@dataclass(frozen=True)
class Slot:
    """A request for one send's place in its account's window, taken by the journal's begin
    script (`producers/lua/rate_window.lua`) in the same call as the send's lease."""

    account_id: str
    rate_class: RateClass
    budget: Budget
    member: str
    slowdown_factor: float
    reserve: bool = False
    priority: Priority = Priority.INTERACTIVE

    def args(self) -> list[str | int | float]:
        """The script's arguments: account, class, limit, window ms, interval ms, burst,
        member, slowdown factor, reserve, lane, transit allowance ms."""
        b = self.budget
        return [
            self.account_id, self.rate_class.value, b.limit, b.window_ms,
            f"{b.interval_ms:.3f}", b.burst, self.member, self.slowdown_factor,
            "1" if self.reserve else "0", self.priority.value, b.transit_ms,
        ]  # fmt: skip


def budgets(rate: RateSettings, transit_ms: int | None = None) -> dict[RateClass, Budget]:
    """Each class's budget with a transit allowance of `transit_ms` (default: the maximum,
    what a worker uses before the fleet has measured one)."""
    margin_ms = rate.transit_max_ms if transit_ms is None else transit_ms

    def budget(per_window: float, meta_window_ms: int, burst: int | None = None) -> Budget:
        limit = max(1, int(per_window * rate.utilization))
        window_ms = meta_window_ms + margin_ms
        return Budget(
            limit=limit,
            window_ms=window_ms,
            interval_ms=window_ms / limit,
            burst=min(burst or rate.burst, limit),
            transit_ms=margin_ms,
        )

    return {
        RateClass.LIGHT: budget(rate.light_per_s, 1000),
        RateClass.MEDIA: budget(rate.media_per_s, 1000),
        # Meta counts these per hour: the hour's budget may go at once (spacing them over
        # the hour would hold a handful of replies back for minutes).
        RateClass.PRIVATE_REPLY: budget(
            rate.private_replies_per_h, 3_600_000, burst=int(rate.private_replies_per_h)
        ),
    }


class RateLimiter:
    def __init__(self, redis: Redis, keys: Keys, rate: RateSettings) -> None:
        self._redis = redis
        self._keys = keys
        self._rate = rate
        self._transit_ms = rate.transit_max_ms
        self._budgets = budgets(rate)
        self._acquire = redis.register_script(RATE_ACQUIRE.source)

    async def publish(self) -> None:
        """Write the slot spacing per class for the enqueue script (no secrets in it)."""
        mapping: dict[str, str] = {}
        for cls, b in self._budgets.items():
            mapping[f"{cls.value}_interval_ms"] = f"{b.interval_ms:.3f}"
            mapping[f"{cls.value}_burst"] = str(b.burst)
        await resolve(self._redis.hset(self._keys.rates, mapping=mapping))

    @property
    def transit_ms(self) -> int:
        return self._transit_ms

    def set_transit_ms(self, transit_ms: int) -> bool:
        """Use the fleet's transit allowance (from the heartbeat); True if it changed (then
        the slot spacing must be published again). Kept within the settings' bounds, so a
        bad value in Redis can only make the windows as wide as configured. It widens at
        once and narrows by at most `TRANSIT_NARROWING_MS` a call (a heartbeat): a quieter
        minute is no proof the next one is."""
        rate = self._rate
        clamped = max(rate.transit_min_ms, min(rate.transit_max_ms, transit_ms))
        clamped = max(clamped, self._transit_ms - TRANSIT_NARROWING_MS)
        if clamped == self._transit_ms:
            return False
        self._transit_ms = clamped
        self._budgets = budgets(rate, clamped)
        return True

    def slot(
        self,
        account_id: str,
        cls: RateClass,
        member: str,
        *,
        reserve: bool = False,
        priority: Priority = Priority.INTERACTIVE,
    ) -> Slot:
        """A slot request for `Journal.begin` (the same rule as `acquire`, one round trip
        fewer: the send job takes its slot with its lease)."""
        factor = self._rate.slowdown_factor
        return Slot(account_id, cls, self._budgets[cls], member, factor, reserve, priority)

    async def acquire(
        self,
        account_id: str,
        cls: RateClass,
        member: str,
        *,
        reserve: bool = False,
        priority: Priority = Priority.INTERACTIVE,
        replaces: str = "",
    ) -> float:
        """0 if the send may go now (it is counted), else seconds to wait: until the window
        frees up, or with `reserve` (or while paused) until a newly reserved slot.
        `replaces`: a member of the same window whose place is given back on admission (in
        the same call: the send is counted at every moment, once)."""
        b = self._budgets[cls]
        bulk = priority is Priority.BULK
        tat = self._keys.rate_tat_bulk if bulk else self._keys.rate_tat
        reply = await self._acquire(
            keys=[
                self._keys.rate_window(account_id, cls.value),
                tat(account_id, cls.value),
                self._keys.pause(account_id),
                self._keys.slow(account_id),
                self._keys.rate_waiting(account_id, cls.value),
                self._keys.transit_fleet,
            ],
            args=[
                b.limit, b.window_ms, f"{b.interval_ms:.3f}", b.burst, member,
                self._rate.slowdown_factor, "1" if reserve else "0", priority.value,
                b.transit_ms, replaces,
            ],
        )  # fmt: skip
        verdict = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
        return 0.0 if verdict == "go" else max(int(reply[1]), 1) / 1000

    def own_usage_pct(self, cls: RateClass, sends_in_window: int) -> float:
        """The fleet's own sends in a class's window as a share of Meta's limit, in percent
        (to weigh Meta's usage header against: the rest is someone else's)."""
        rate = self._rate
        per_window = {
            RateClass.LIGHT: rate.light_per_s,
            RateClass.MEDIA: rate.media_per_s,
            RateClass.PRIVATE_REPLY: rate.private_replies_per_h,
        }[cls]
        return 100.0 * sends_in_window / per_window

    async def slow_down(self, account_id: str) -> bool:
        """Scale the account down for a while; True if it was not slowed already."""
        ms = int(self._rate.slowdown_s * 1000)
        return bool(
            await resolve(self._redis.set(self._keys.slow(account_id), "1", px=ms, nx=True))
        )
