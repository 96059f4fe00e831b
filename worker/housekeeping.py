"""Work every worker does in the background, besides sending.

* **Republish** (every worker, every `republish_interval_s`): the account ids this worker
  holds tokens for and the rate spacing, which the enqueue script reads. A Redis restart
  without persistence (or a FLUSHALL) would otherwise refuse every enqueue until the
  workers were restarted.
* **Sweep** (one worker of the fleet at a time, by a lease in Redis, every
  `sweep_interval_s`): move on conversations whose head can no longer end by itself
  (`producers/lua/sweep.lua`): a head whose job key expired, was evicted or dropped gets an
  outcome (`failed`/`job_lost`, or `expired` past its deadline), which queues the next
  intent; a head whose job fell out of the queue is queued again.

* **Tokens** (every worker, every `accounts.poll_s`): the tokens file and the account
  registry re-read when they change (worker/tokens.py); SIGHUP does it at once.
* **Token refresh** (every worker looks, one refreshes each account: a lease; every
  `accounts.refresh_check_s`): worker/refresher.py.
* **Heartbeat** (every worker, every `worker.heartbeat_interval_s`): the heartbeat file
  (`ig-outbound health live` reads it; no Redis involved, so a Redis blip never fails
  liveness) and the worker's entry in `<prefix>:workers` (live workers, `top`).
* **Fleet metrics** (one worker at a time, by a lease, every
  `worker.fleet_metrics_interval_s`): worker/fleet_metrics.py.

None ever raises: an error is logged and the loop goes on (Redis may be away for a while).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from ig_outbound.producers.outcome import OutcomeStatus
from ig_outbound.producers.redis_util import resolve
from ig_outbound.producers.scripts import SWEEP
from ig_outbound.worker import metrics
from ig_outbound.worker.fleet import Fleet, ReclaimGate
from ig_outbound.worker.fleet_metrics import FleetMetrics
from ig_outbound.worker.heartbeat_file import touch
from ig_outbound.worker.lease import hold_lease
from ig_outbound.worker.outcomes import make_outcome, observe
from ig_outbound.worker.refresher import Refresher
from ig_outbound.worker.services import Services

log = structlog.get_logger("ig_outbound.housekeeping")

# Conversations looked at per script call (one call holds Redis for well under a
# millisecond per hundred), and per sweep in all (the cursor carries on next time).
SWEEP_BATCH = 200
SWEEP_MAX_PER_RUN = 20_000
# A head still pending this long after its deadline is queued again (the worker expires it).
DEADLINE_GRACE_MS = 60_000


@dataclass(frozen=True)
class SweepReport:
    """What one sweep did."""

    looked_at: int
    lost: int
    dropped: int
    requeued: int
    emptied: int


class Sweeper:
    """Finds and ends or re-queues conversation heads that cannot end by themselves."""

    def __init__(self, services: Services) -> None:
        self.s = services
        self._sweep = services.redis.register_script(SWEEP.source)
        self.owner = services.worker_id

    async def acquire_lease(self, seconds: float) -> bool:
        """True if this worker runs the sweep now (the lease is the fleet's one lock)."""
        return await hold_lease(self.s.redis, self.s.keys.sweep_lease, self.owner, seconds)

    async def sweep(self) -> SweepReport:
        """One pass over (up to SWEEP_MAX_PER_RUN of) the registry."""
        keys = self.s.keys
        raw = await resolve(self.s.redis.get(keys.sweep_cursor))
        rank = int(raw) if raw is not None and raw.isdigit() else 0
        looked, dropped, requeued, emptied = 0, 0, 0, 0
        lost_heads: list[str] = []
        while looked < SWEEP_MAX_PER_RUN:
            reply = await self._sweep(
                keys=[keys.conversations, keys.queue],
                args=[keys.prefix, rank, SWEEP_BATCH, DEADLINE_GRACE_MS],
            )
            cursor, lost, (n, d, r, e) = _parse(reply)
            lost_heads += lost
            looked += n
            dropped, requeued, emptied = dropped + d, requeued + r, emptied + e
            if not cursor:
                rank = 0
                break
            rank = int(cursor)
        await resolve(self.s.redis.set(keys.sweep_cursor, rank))
        # Ended after the pass: an ended conversation leaves the registry and would shift
        # the ranks the pass walks.
        for key in lost_heads:
            await self._end_lost(key)
        await self.prune_replays()
        report = SweepReport(looked, len(lost_heads), dropped, requeued, emptied)
        if report.lost or report.dropped or report.requeued:
            log.warning("sweep_moved_conversations_on", **report.__dict__)
        return report

    async def prune_replays(self) -> int:
        """Forget the replay bookkeeping of dead letters the stream no longer holds (its
        MAXLEN trimmed them), so the map stays as small as the stream; returns how many."""
        redis, keys = self.s.redis, self.s.keys
        if await resolve(redis.hlen(keys.dead_letter_replays)) <= await resolve(
            redis.xlen(keys.dead_letters)
        ):
            return 0
        oldest = await resolve(redis.xrange(keys.dead_letters, count=1))
        floor = _entry_id(oldest[0][0]) if oldest else (2**64, 0)
        stale: list[Any] = []
        async for field, _ in redis.hscan_iter(keys.dead_letter_replays, count=500):
            if _entry_id(field) < floor:
                stale.append(field)
        for start in range(0, len(stale), 500):
            await resolve(redis.hdel(keys.dead_letter_replays, *stale[start : start + 500]))
        return len(stale)

    async def _end_lost(self, key: str) -> None:
        """A head whose job is gone: its outcome (which also queues the next intent)."""
        record = await self.s.journal.read(key)
        now_ms = self.s.clock.now_ms()
        past_deadline = record.deadline_ms is not None and now_ms >= record.deadline_ms
        status = OutcomeStatus.EXPIRED if past_deadline else OutcomeStatus.FAILED
        outcome = make_outcome(
            key=key,
            status=status,
            reason="deadline_passed" if past_deadline else "job_lost",
            attempts=record.attempts,
            enqueued_ms=record.enqueued_ms,
            now_ms=now_ms,
        )
        observe(outcome, await self.s.journal.finish(outcome, '{"lost": "the job was gone"}'))
        metrics.SWEPT.labels(action="job_lost").inc()


def _entry_id(raw: bytes | str) -> tuple[int, int]:
    """A stream entry id as numbers (junk sorts first, so it is pruned too)."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    ms, _, seq = text.partition("-")
    return (int(ms), int(seq or 0)) if ms.isdigit() and seq.isdigit() else (-1, -1)


def _parse(reply: list[bytes]) -> tuple[str, list[str], list[int]]:
    items = [x.decode() if isinstance(x, bytes) else str(x) for x in reply]
    bar = items.index("|")
    counts = [int(n) for n in items[bar + 1].split(",")]
    return items[0], items[1:bar], counts


async def _every(interval_s: float, step: Callable[[], Awaitable[None]], name: str) -> None:
    while True:
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # Redis away, a bug: log, and try again next time
            log.warning("housekeeping_failed", task=name, error_type=type(exc).__name__)
        await asyncio.sleep(interval_s)


class Housekeeping:
    """The background tasks of one worker process (started and stopped with ARQ's hooks)."""

    def __init__(
        self,
        services: Services,
        republish: Callable[[], Awaitable[None]],
        refresher: Refresher,
    ) -> None:
        self.s = services
        self.sweeper = Sweeper(services)
        self.refresher = refresher
        self._republish = republish
        self._tasks: list[asyncio.Task[None]] = []
        self.worker_id = services.worker_id
        self._fleet = Fleet(services.redis, services.keys)
        tuning = services.settings.worker
        self._reclaim_gate = ReclaimGate(tuning.heartbeat_stale_s, tuning.heartbeat_interval_s)
        self.fleet_metrics = FleetMetrics(
            services.redis,
            services.keys,
            self._fleet,
            refresher.account_states,
            self.worker_id,
            services.settings.worker,
            shard=services.settings.shard_label,
        )

    def start(self) -> None:
        tuning, accounts = self.s.settings.worker, self.s.settings.accounts
        self._tasks = [
            asyncio.create_task(_every(tuning.republish_interval_s, self._republish, "publish")),
            asyncio.create_task(_every(tuning.sweep_interval_s, self._sweep_if_leader, "sweep")),
            asyncio.create_task(_every(accounts.poll_s, self.s.tokens.poll, "tokens")),
            asyncio.create_task(
                _every(accounts.refresh_check_s, self._refresh_tokens, "token_refresh")
            ),
            asyncio.create_task(_every(tuning.heartbeat_interval_s, self._heartbeat, "heartbeat")),
            asyncio.create_task(
                _every(tuning.heartbeat_interval_s, self._touch_heartbeat_file, "heartbeat_file")
            ),
            asyncio.create_task(
                _every(tuning.fleet_metrics_interval_s, self._fleet_metrics, "fleet_metrics")
            ),
        ]

    async def _touch_heartbeat_file(self) -> None:
        # Its own task, never waiting on Redis (a beat can hang while the client retries
        # through an outage) nor on the thread pool (DNS lookups of media probes can fill
        # it): a touch is one quick syscall, done on the loop itself.
        path = self.s.settings.worker.heartbeat_file
        if path is not None:
            touch(path)

    async def _heartbeat(self) -> None:
        tuning = self.s.settings.worker
        try:
            fleet_transit_ms = await self._fleet.heartbeat(
                self.worker_id, self.s.transit.allowance_ms(), tuning.heartbeat_stale_s
            )
        except Exception:
            self._reclaim_gate.beat(False, time.monotonic())
            raise
        self._reclaim_gate.beat(True, time.monotonic())
        if fleet_transit_ms is None:  # nobody has measured one: the maximum
            fleet_transit_ms = self.s.settings.rate.transit_max_ms
        if self.s.limiter.set_transit_ms(fleet_transit_ms):
            metrics.TRANSIT_ALLOWANCE_SECONDS.set(self.s.limiter.transit_ms / 1000)
            await self.s.limiter.publish()  # the enqueue script's slot spacing follows
        # Every live worker looks for dead ones each beat (the script is idempotent), so a
        # killed worker's sends run again within seconds, whoever is alive; but not right
        # after Redis was away (see ReclaimGate).
        if not self._reclaim_gate.open(time.monotonic()):
            return
        workers, jobs = await self._fleet.reclaim(self.s.settings.worker.heartbeat_stale_s)
        if workers:
            metrics.RECLAIMED_JOBS.inc(jobs)
            log.warning("dead_workers_reclaimed", workers=workers, jobs=jobs)

    async def _fleet_metrics(self) -> None:
        await self.fleet_metrics.step()

    async def _refresh_tokens(self) -> None:
        await self.refresher.run_once()

    def reload_tokens(self) -> None:
        """SIGHUP: re-read the tokens file and the registry now (in a task of its own)."""
        task = asyncio.get_running_loop().create_task(self._guarded_reload())
        self._tasks.append(task)

    async def _guarded_reload(self) -> None:
        try:
            await self.s.tokens.on_sighup()
        except Exception as exc:
            log.warning("housekeeping_failed", task="sighup", error_type=type(exc).__name__)

    async def _sweep_if_leader(self) -> None:
        # The lease outlives the interval a little: the same worker keeps sweeping while it
        # lives; another takes over within one interval after it dies.
        if await self.sweeper.acquire_lease(self.s.settings.worker.sweep_interval_s * 1.5):
            await self.sweeper.sweep()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        try:  # hand the fleet's metrics on at once; say this worker is gone
            await self.fleet_metrics.stop()
            await self._fleet.leave(self.worker_id)
        except Exception as exc:  # Redis away: the lease and the heartbeat lapse by themselves
            log.warning("housekeeping_failed", task="stop", error_type=type(exc).__name__)
