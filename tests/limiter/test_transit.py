"""The transit allowance: measured from round trips, shared as the fleet's largest, bounded."""

from __future__ import annotations

import math

import pytest
import redis.asyncio as aioredis

from ig_outbound.producers.keys import Keys
from ig_outbound.producers.redis_util import resolve
from ig_outbound.worker.fleet import Fleet
from ig_outbound.worker.settings import RateSettings
from ig_outbound.worker.transit import MIN_SAMPLES, SAMPLES, SKIP_FIRST, TransitMeter

KEYS = Keys("tt")


def _meter(**rate: object) -> TransitMeter:
    """A meter past its first round trips (connections opening), which it does not keep."""
    meter = TransitMeter(RateSettings.model_validate(rate))
    for _ in range(SKIP_FIRST):
        meter.observe(10_000.0)
    return meter


def test_a_new_process_s_first_round_trips_are_not_kept() -> None:
    meter = TransitMeter(RateSettings())
    for _ in range(SKIP_FIRST):
        meter.observe(500.0)  # connections opening
    for _ in range(MIN_SAMPLES):
        meter.observe(10.0)
    assert meter.allowance_ms() == 5


def test_until_enough_round_trips_are_seen_a_worker_measures_nothing() -> None:
    meter = _meter(transit_max_ms=100)
    for _ in range(MIN_SAMPLES - 1):
        meter.observe(3.0)
    assert meter.allowance_ms() is None
    meter.observe(3.0)
    assert meter.allowance_ms() == 5  # no spread at all: the floor


def test_the_allowance_is_the_round_trips_spread_plus_the_floor_in_steps() -> None:
    meter = _meter(transit_min_ms=5, transit_max_ms=100)
    for i in range(200):
        meter.observe(10.0 + (i % 21))  # round trips of 10..30 ms: a spread of 20 ms
    assert meter.allowance_ms() == 30  # 20 x 1.1 + 5, in 5-ms steps
    # A constant extra delay (a farther Graph) does not widen it: only the spread counts.
    slower = _meter(transit_min_ms=5, transit_max_ms=100)
    for i in range(200):
        slower.observe(110.0 + (i % 21))
    assert slower.allowance_ms() == 30


def test_a_stall_widens_the_allowance_until_it_leaves_the_kept_round_trips() -> None:
    meter = _meter(transit_min_ms=5, transit_max_ms=200)
    for _ in range(SAMPLES - 1):
        meter.observe(10.0)
    assert meter.allowance_ms() == 5
    meter.observe(70.0)  # one send 60 ms slower: a window of full pace could meet it
    assert meter.allowance_ms() == 75  # 60 x 1.1 + 5, in 5-ms steps
    for _ in range(SAMPLES):
        meter.observe(10.0)
    assert meter.allowance_ms() == 5


def test_the_allowance_never_exceeds_the_maximum_and_ignores_nonsense() -> None:
    meter = _meter(transit_min_ms=5, transit_max_ms=100)
    for value in (-1.0, math.nan, math.inf):
        meter.observe(value)
    for i in range(100):
        meter.observe(float(i * 50))
    assert meter.allowance_ms() == 100


def test_measuring_can_be_switched_off() -> None:
    meter = _meter(transit_measured=False, transit_max_ms=80)
    for _ in range(100):
        meter.observe(1.0)
    assert meter.allowance_ms() == 80


def test_settings_refuse_a_floor_above_the_maximum() -> None:
    with pytest.raises(ValueError, match="transit_min_ms"):
        RateSettings(transit_min_ms=50, transit_max_ms=20)


async def test_the_fleet_uses_the_largest_allowance_of_its_live_workers(
    aredis: aioredis.Redis,
) -> None:
    fleet = Fleet(aredis, KEYS)
    assert await fleet.heartbeat("w1", 15, 3.0) == 15
    assert await fleet.heartbeat("w2", 40, 3.0) == 40
    assert await fleet.heartbeat("w1", 15, 3.0) == 40  # w2's slower path covers w1's sends
    assert await resolve(aredis.get(KEYS.transit_fleet)) == b"40"  # what admissions read
    # A worker whose heartbeat went stale no longer widens the fleet's windows.
    now_ms = int((await aredis.time())[0]) * 1000
    await aredis.zadd(KEYS.workers, {"w2": now_ms - 10_000})
    assert await fleet.heartbeat("w1", 15, 3.0) == 15
    assert await resolve(aredis.hkeys(KEYS.transit)) == [b"w1"]
    # A worker that has not measured yet counts for nothing; with nobody measured: None.
    assert await fleet.heartbeat("w3", None, 3.0) == 15
    assert await fleet.heartbeat("w1", None, 3.0) is None
    assert await resolve(aredis.hlen(KEYS.transit)) == 0
    # A worker that leaves takes its measurement along.
    assert await fleet.heartbeat("w1", 15, 3.0) == 15
    await fleet.leave("w1")
    assert await resolve(aredis.hlen(KEYS.transit)) == 0


async def test_a_hostile_heartbeat_is_refused_without_writing(aredis: aioredis.Redis) -> None:
    fleet = Fleet(aredis, KEYS)
    for bad in (-5, 2.5):
        with pytest.raises(aioredis.ResponseError, match="heartbeat"):
            await fleet._beat(
                keys=[KEYS.workers, KEYS.transit, KEYS.transit_fleet], args=["w9", bad, 3000]
            )
    assert await resolve(aredis.exists(KEYS.workers, KEYS.transit, KEYS.transit_fleet)) == 0
