"""`ig-outbound top`: a live view of the fleet in the terminal, refreshed in place.

What it shows (from the Redis and key prefix of the usual `IG_OUTBOUND_*` settings, the
worker's: TLS, ACL users and Sentinel work as for the worker):

* a header: the key prefix, the Redis target (never its password), Redis's time and how
  many workers are alive (a heartbeat fresher than `worker.heartbeat_stale_s`);
* the fleet: the queue (intents ready now, scheduled for later, the age of the oldest ready
  one: a growing age means the workers do not keep up), the dead-letter queue's size,
  accounts paused fleet-wide by cause, accounts slowed, intents enqueued so far and those
  refused at enqueue by reason (counters since the Redis was new);
* the outcomes of the last `--window` seconds by status (sent, failed, rejected, expired,
  unknown) with their rates, the send rate, the latency (enqueue to outcome) p50 and p99,
  and the five commonest failure reasons;
* the busiest accounts over the window: sends per second in each rate class against Meta's
  limit for it (`rate.light_per_s`, `rate.media_per_s`, `rate.private_replies_per_h`) and
  how much of it they use. The fleet may use `rate.utilization` (100 %) of each limit, over
  Meta's window plus the measured transit allowance.

Rates are measured on Redis's clock from the outcomes stream (`<prefix>:outcomes`). At most
50,000 outcomes are read per refresh, newest first: when the window holds more, the rates are
measured over the newest part read and the footer says so. Entries that cannot be read are
skipped and counted, never fatal. The fleet's state is one Lua script call
(`producers/lua/fleet.lua`), so the Redis user needs script rights (EVALSHA) besides reads.

Options: `--interval` seconds between refreshes (2), `--window` seconds the rates are
measured over (10), `--accounts` how many busiest accounts (10), `--once` draws the view once
and exits (for a pipe or a log), `--json` prints the same numbers as one JSON object and
exits (for scripts: stable keys, rounded numbers).

While it runs, a Redis that goes away shows as a red line above the last figures read, and
the view keeps retrying every interval. Ctrl-C quits with exit code 0. At start, bad settings,
a bad argument or a Redis that cannot be used print one JSON line and exit 2, like every
other command.

With shards (IG_OUTBOUND_SHARDS) every shard is read: the figures are totals over them, and
a table shows each shard's queue, dead letters, workers and send rate (`--json`: `shards`).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from ig_outbound.ops.fleet_view import FleetView
    from ig_outbound.worker.settings import Settings

# Beyond these an argument is a typo (and a window of years would be no rate at all).
MAX_INTERVAL_S = 3600.0
MAX_WINDOW_S = 7 * 86400.0
MAX_ACCOUNTS = 1000


def _settings() -> Settings:
    """The worker's settings (rate limits, heartbeat staleness), or one JSON line, exit 2."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from ig_outbound.cli.app import _fail, _settings_problems
    from ig_outbound.worker.settings import get_settings

    try:
        return get_settings()
    except (ValidationError, SettingsError) as exc:
        raise _fail({"error": "invalid_settings", "problems": _settings_problems(exc)}) from None


def _check(interval: float, window: float, accounts: int) -> None:
    from ig_outbound.cli.app import _fail

    problems = []
    # `not 0 < x` also refuses NaN.
    if not 0 < interval <= MAX_INTERVAL_S:
        problems.append(f"--interval must be > 0 and at most {MAX_INTERVAL_S:g} seconds")
    if not 0 < window <= MAX_WINDOW_S:
        problems.append(f"--window must be > 0 and at most {MAX_WINDOW_S:g} seconds")
    if not 0 <= accounts <= MAX_ACCOUNTS:
        problems.append(f"--accounts must be between 0 and {MAX_ACCOUNTS}")
    if problems:
        raise _fail({"error": "invalid_argument", "message": "; ".join(problems)})


def _connect_shards(settings: Settings) -> list[Redis]:
    """A client per shard (the one Redis without shards)."""
    from ig_outbound.producers.connection import connect_async

    return [connect_async(settings, url) for url in settings.shard_urls()]


async def _sample_once(settings: Settings, window: float, accounts: int) -> FleetView:
    from ig_outbound.ops.fleet_view import sample_shards
    from ig_outbound.producers.keys import Keys

    shards = _connect_shards(settings)
    try:
        return await sample_shards(shards, Keys(settings.key_prefix), settings, window, accounts)
    finally:
        for redis in shards:
            await redis.aclose()


async def _watch(
    settings: Settings, target: str, interval: float, window: float, accounts: int
) -> None:
    """Redraw in place every `interval` until Ctrl-C. The first sample's error propagates
    (the caller prints it as one line); later ones show in the view.

    Ctrl-C sets an event the view waits on, instead of asyncio's cancellation of the whole
    task, which a library mid-call may swallow (the view would then need a second Ctrl-C)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    try:
        await _redraw(settings, target, interval, window, accounts, stop)
    finally:
        loop.remove_signal_handler(signal.SIGINT)


async def _redraw(
    settings: Settings,
    target: str,
    interval: float,
    window: float,
    accounts: int,
    stop: asyncio.Event,
) -> None:
    from redis.exceptions import RedisError
    from rich.live import Live

    from ig_outbound.cli.top_render import render
    from ig_outbound.ops.fleet_view import sample_shards
    from ig_outbound.producers.keys import Keys
    from ig_outbound.worker.supervisor import redis_problem

    shards = _connect_shards(settings)
    keys = Keys(settings.key_prefix)
    try:
        view = await sample_shards(shards, keys, settings, window, accounts)
        with Live(render(view, target, interval_s=interval), auto_refresh=False) as live:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), interval)
                if stop.is_set():
                    return
                error = None
                try:
                    view = await sample_shards(shards, keys, settings, window, accounts)
                except (RedisError, OSError) as exc:
                    # The classified message only: redis-py's could name connection details.
                    problem = redis_problem(exc)
                    error = f"{problem.message} ({problem.error_type})"
                live.update(render(view, target, error=error, interval_s=interval), refresh=True)
    finally:
        for redis in shards:
            await redis.aclose()


def top(
    interval: Annotated[float, typer.Option(help="Seconds between refreshes (> 0).")] = 2.0,
    window: Annotated[
        float, typer.Option(help="Seconds over which outcomes and rates are measured.")
    ] = 10.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the numbers as one JSON object and exit.")
    ] = False,
    accounts: Annotated[int, typer.Option(help="How many of the busiest accounts to show.")] = 10,
    once: Annotated[
        bool, typer.Option("--once", help="Draw the view once to stdout and exit (no TTY).")
    ] = False,
) -> None:
    """A live view of the fleet: queue, dead letters, paused and slowed accounts, enqueue
    counts, the last window's outcomes and send rate, latency, and the busiest accounts
    against their rate limits. Ctrl-C quits (exit 0)."""
    from rich.console import Console

    from ig_outbound.cli.app import _print_json, _RedisErrors
    from ig_outbound.cli.top_render import render
    from ig_outbound.producers.connection import redis_params

    _check(interval, window, accounts)
    settings = _settings()
    try:
        with _RedisErrors(settings):
            target = redis_params(settings).display
            if as_json or once:
                view = asyncio.run(_sample_once(settings, window, accounts))
                if as_json:
                    _print_json({"redis": target, **view.as_dict()})
                else:
                    Console().print(render(view, target))
                return
            asyncio.run(_watch(settings, target, interval, window, accounts))
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
