"""The rate limiter's Lua against a real Redis: enforcement, reservations, pauses, slowdowns."""

from __future__ import annotations

import redis.asyncio as aioredis

from ig_outbound.producers.intent import Priority
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.rate_class import RateClass, rate_class
from ig_outbound.producers.redis_util import resolve
from ig_outbound.worker.limiter import TRANSIT_NARROWING_MS, RateLimiter, budgets
from ig_outbound.worker.pauses import Pauses
from ig_outbound.worker.settings import RateSettings

KEYS = Keys("t")
ACCOUNT = "17841400000000001"


def _limiter(r: aioredis.Redis, **rate: float) -> RateLimiter:
    return RateLimiter(r, KEYS, RateSettings(**rate))


def test_rate_classes_follow_meta() -> None:
    assert rate_class("text", is_private_reply=False) is RateClass.LIGHT
    assert rate_class("sticker", is_private_reply=False) is RateClass.LIGHT
    assert rate_class("audio", is_private_reply=False) is RateClass.MEDIA
    assert rate_class("video", is_private_reply=False) is RateClass.MEDIA
    assert rate_class("text", is_private_reply=True) is RateClass.PRIVATE_REPLY


def test_budgets_apply_utilization_and_margin() -> None:
    b = budgets(RateSettings(light_per_s=100, utilization=0.95, transit_max_ms=100))
    assert (b[RateClass.LIGHT].limit, b[RateClass.LIGHT].window_ms) == (95, 1100)
    assert b[RateClass.MEDIA].limit == 9
    assert b[RateClass.PRIVATE_REPLY].limit == 712
    assert b[RateClass.PRIVATE_REPLY].window_ms == 3_600_100


def test_the_default_budget_is_meta_s_limit_over_its_window_plus_the_transit_allowance() -> None:
    measured = budgets(RateSettings(), transit_ms=20)[RateClass.LIGHT]
    assert (measured.limit, measured.window_ms) == (100, 1020)
    assert 1000 * measured.limit / measured.window_ms > 97  # the pace it allows
    # Before anything is measured: the maximum allowance.
    assert budgets(RateSettings())[RateClass.LIGHT].window_ms == 1100


async def test_the_fleet_s_allowance_is_clamped_and_republished(aredis: aioredis.Redis) -> None:
    limiter = _limiter(aredis, light_per_s=100, transit_min_ms=5, transit_max_ms=100)
    assert limiter.transit_ms == 100
    # It narrows step by step (a heartbeat each), and widens at once.
    assert limiter.set_transit_ms(20) is True and limiter.transit_ms == 100 - TRANSIT_NARROWING_MS
    limiter.set_transit_ms(60)
    limiter.set_transit_ms(95)
    assert limiter.transit_ms == 95
    while limiter.set_transit_ms(20):
        pass
    assert limiter.transit_ms == 20
    assert limiter.set_transit_ms(20) is False  # unchanged: nothing to republish
    await limiter.publish()
    rates = await resolve(aredis.hgetall(KEYS.rates))
    assert abs(float(rates[b"light_interval_ms"]) - 10.2) < 0.01
    # A bad value in Redis widens the window at most to the configured maximum.
    limiter.set_transit_ms(10**9)
    assert limiter.transit_ms == 100
    while limiter.set_transit_ms(-7):
        pass
    assert limiter.transit_ms == 5


async def test_a_full_window_makes_a_send_wait_for_room_or_for_a_new_slot(
    aredis: aioredis.Redis,
) -> None:
    limiter = _limiter(
        aredis, light_per_s=10, utilization=1.0, transit_min_ms=0, transit_max_ms=0, burst=1
    )
    waits = [await limiter.acquire(ACCOUNT, RateClass.LIGHT, f"m{i}") for i in range(10)]
    assert waits == [0.0] * 10
    # Keeping its place: wait until the window's oldest send ages out (about 1 s).
    first = await limiter.acquire(ACCOUNT, RateClass.LIGHT, "m10")
    again = await limiter.acquire(ACCOUNT, RateClass.LIGHT, "m11")
    assert 0.3 < first <= 1.01 and abs(again - first) < 0.3
    # Giving it up: a newly reserved slot each, spaced by the interval (100 ms).
    slot1 = await limiter.acquire(ACCOUNT, RateClass.LIGHT, "m12", reserve=True)
    slot2 = await limiter.acquire(ACCOUNT, RateClass.LIGHT, "m13", reserve=True)
    assert slot1 > 0.5 and slot2 - slot1 >= 0.09
    # Waiting counts nothing as sent.
    assert await resolve(aredis.zcard(KEYS.rate_window(ACCOUNT, "light"))) == 10


async def test_classes_and_accounts_have_separate_budgets(aredis: aioredis.Redis) -> None:
    limiter = _limiter(aredis, light_per_s=2, media_per_s=2, utilization=1.0, burst=1)
    assert [await limiter.acquire(ACCOUNT, RateClass.LIGHT, f"x{i}") for i in range(2)] == [0, 0]
    assert await limiter.acquire(ACCOUNT, RateClass.LIGHT, "x2") > 0
    assert await limiter.acquire(ACCOUNT, RateClass.MEDIA, "a") == 0
    assert await limiter.acquire("17841400000000002", RateClass.LIGHT, "b") == 0


async def test_a_pause_pushes_every_slot_past_its_end(aredis: aioredis.Redis) -> None:
    limiter = _limiter(aredis, light_per_s=100)
    await Pauses(aredis, KEYS).pause(ACCOUNT, 2.0, "throttled")
    wait = await limiter.acquire(ACCOUNT, RateClass.LIGHT, "p")
    assert 1.0 <= wait <= 2.1  # the pause left, however slow this box is
    # Nothing was counted as sent while paused.
    assert await resolve(aredis.zcard(KEYS.rate_window(ACCOUNT, "light"))) == 0


async def test_a_slowdown_scales_the_limit(aredis: aioredis.Redis) -> None:
    limiter = _limiter(aredis, light_per_s=10, utilization=1.0, slowdown_factor=0.5, burst=1)
    assert await limiter.slow_down(ACCOUNT) is True
    assert await limiter.slow_down(ACCOUNT) is False  # already slowed
    waits = [await limiter.acquire(ACCOUNT, RateClass.LIGHT, f"s{i}") for i in range(6)]
    assert waits[:5] == [0.0] * 5
    assert waits[5] > 0


async def test_published_spacing_is_what_the_enqueue_script_reads(aredis: aioredis.Redis) -> None:
    limiter = _limiter(aredis, light_per_s=100, utilization=0.95, transit_max_ms=100, burst=4)
    await limiter.publish()
    rates = await resolve(aredis.hgetall(KEYS.rates))
    assert rates[b"light_burst"] == b"4"
    assert abs(float(rates[b"light_interval_ms"]) - 1100 / 95) < 0.01
    # Private replies are counted per hour: the hour's budget may go at once.
    assert rates[b"private_reply_burst"] == b"712"


async def test_a_waiting_interactive_send_takes_the_next_free_place_before_bulk(
    aredis: aioredis.Redis,
) -> None:
    limiter = _limiter(
        aredis, light_per_s=2, utilization=1.0, transit_min_ms=0, transit_max_ms=0, burst=1
    )
    light, bulk = RateClass.LIGHT, Priority.BULK
    win, waiting = KEYS.rate_window(ACCOUNT, "light"), KEYS.rate_waiting(ACCOUNT, "light")
    assert await limiter.acquire(ACCOUNT, light, "b1", priority=bulk) == 0
    assert await limiter.acquire(ACCOUNT, light, "b2", priority=bulk) == 0
    # The window is full: the interactive send waits, and marks the window for itself.
    assert await limiter.acquire(ACCOUNT, light, "i1") > 0
    assert await resolve(aredis.exists(waiting)) == 1
    await aredis.zremrangebyrank(win, 0, 0)  # the oldest send ages out: one free place
    # A bulk send leaves it to the waiting interactive one (about one interval's wait).
    held = await limiter.acquire(ACCOUNT, light, "b3", priority=bulk)
    assert 0 < held <= 0.51
    assert await limiter.acquire(ACCOUNT, light, "i1") == 0
    assert await resolve(aredis.exists(waiting)) == 0  # taken: the mark is gone
    await aredis.zremrangebyrank(win, 0, 0)
    assert await limiter.acquire(ACCOUNT, light, "b3", priority=bulk) == 0
    # Without a waiting interactive send, bulk and interactive share the window alike.
    assert set(await resolve(aredis.zrange(win, 0, -1))) == {b"i1", b"b3"}


async def test_each_lane_renews_its_reservation_on_its_own_schedule(
    aredis: aioredis.Redis,
) -> None:
    limiter = _limiter(
        aredis, light_per_s=2, utilization=1.0, transit_min_ms=0, transit_max_ms=0, burst=1
    )
    light, bulk = RateClass.LIGHT, Priority.BULK
    await aredis.set(KEYS.rate_tat_bulk(ACCOUNT, "light"), str(10**13))  # a long bulk backlog
    for member in ("x1", "x2"):
        assert await limiter.acquire(ACCOUNT, light, member) == 0
    # A renewing interactive send reserves right after the window frees, not behind the bulk.
    assert await limiter.acquire(ACCOUNT, light, "i", reserve=True) < 2
    assert await limiter.acquire(ACCOUNT, light, "b", reserve=True, priority=bulk) > 10**6


async def test_the_fleet_s_wider_allowance_widens_every_window_at_once(
    aredis: aioredis.Redis,
) -> None:
    """A worker that has not yet heard of the fleet's wider transit allowance (its heartbeat
    comes later) still counts over the wider window: the admission reads it from Redis."""
    limiter = _limiter(
        aredis, light_per_s=2, utilization=1.0, transit_min_ms=0, transit_max_ms=0, burst=1
    )
    win = KEYS.rate_window(ACCOUNT, "light")
    seconds, micros = await aredis.time()
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    # Two sends 1.1-1.2 s ago: out of this worker's own 1-s window.
    await aredis.zadd(win, {"old1": now_ms - 1200, "old2": now_ms - 1100})
    await aredis.set(KEYS.transit_fleet, "500", px=10_000)
    assert await limiter.acquire(ACCOUNT, RateClass.LIGHT, "a") > 0  # 1.5 s: still full
    # A value no setting allows (a hostile or broken write) is ignored.
    await aredis.set(KEYS.transit_fleet, str(10**9), px=10_000)
    assert await limiter.acquire(ACCOUNT, RateClass.LIGHT, "b") == 0
