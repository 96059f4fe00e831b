"""What a worker process needs around ARQ: its settings, read without ever echoing a value,
and an ARQ `Worker` that no job can kill.

ARQ awaits each job's `run_job` task in its poll loop (`t.result()`), so an exception raised
while ARQ prepares a job (reads it, turns `et` into a datetime, counts its tries) ends the
whole worker, and the job, still queued, kills the next worker that picks it up. `load_job`
(worker/job_guard.py) keeps every field ARQ reads in range; `GuardedWorker` catches what
is left (a job key of the wrong Redis type, a corrupt try counter, whatever ARQ may trip on
next), ends the job's intent `rejected` (or dead-letters the junk) and removes the job from
ARQ. `ig-outbound worker` runs it (worker/supervisor.py); ARQ's own CLI cannot (it builds a
plain `Worker`) and relies on the guard alone.
"""

from __future__ import annotations

import re
from typing import Any

import structlog
from arq.constants import abort_jobs_ss, in_progress_key_prefix, job_key_prefix, retry_key_prefix
from arq.worker import Worker, get_kwargs
from pydantic import ValidationError
from pydantic_settings import SettingsError
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ig_outbound.producers.errors import Problem
from ig_outbound.producers.scripts import ARQ_CLAIM
from ig_outbound.producers.wire import BAD_JOB_MARKER
from ig_outbound.worker.errors import WorkerConfigError
from ig_outbound.worker.job import reject_job
from ig_outbound.worker.prefetch import RETRY_KEY_TTL_S, PrefetchingArqRedis
from ig_outbound.worker.services import Services
from ig_outbound.worker.settings import Settings, get_settings

log = structlog.get_logger("ig_outbound.worker")

# Redis itself failing is no fault of the job: the worker dies of it and the supervisor
# starts it again (the job stays queued). Everything else raised around a job is the job's.
REDIS_DOWN: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    ConnectionError,
    TimeoutError,
)
_RAW_LIMIT = 10_000


class InvalidSettingsError(WorkerConfigError):
    """The environment does not make valid settings. `problems` names each setting and
    what is wrong with it, never the value (it may be a token)."""

    def __init__(self, problems: list[dict[str, str]]) -> None:
        self.problems = problems
        listed = "; ".join(f"{p['setting']}: {p['msg']}" for p in problems)
        super().__init__(f"invalid settings: {listed}")

    def as_dict(self) -> dict[str, Any]:
        return {"error": self.code, "problems": self.problems}


def settings_problems(exc: ValidationError | SettingsError) -> list[dict[str, str]]:
    """Each problem as `{"setting", "msg"}`, without the input that caused it."""
    if isinstance(exc, SettingsError):
        # pydantic-settings names the field and the source, never the value.
        field = re.search(r'field "([^"]+)"', str(exc))
        return [{"setting": field.group(1) if field else "", "msg": str(exc)}]
    return [
        {"setting": ".".join(str(part) for part in e["loc"]), "msg": e["msg"]}
        for e in exc.errors(include_input=False, include_url=False)
    ]


def load_settings() -> Settings:
    """The process's worker settings (`get_settings`); `InvalidSettingsError` instead of
    pydantic's errors, whose text shows the input (a malformed IG_OUTBOUND_TOKENS would
    print tokens where ARQ's CLI shows the import error)."""
    try:
        settings = get_settings()
    except (ValidationError, SettingsError) as exc:
        raise InvalidSettingsError(settings_problems(exc)) from None
    if len(settings.served_shards()) > 1:  # one ARQ worker reads one Redis's queue
        message = "an ARQ worker serves one shard: set it to [i] (`ig-outbound worker` runs one "
        message += "process per shard)"
        raise InvalidSettingsError([{"setting": "worker.shards", "msg": message}])
    return settings


class GuardedWorker(Worker):
    """An ARQ worker that outlives any job (see the module docstring)."""

    _claim: AsyncScript | None = None

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        """ARQ's `start_jobs`, with the claim of the whole batch in one script
        (producers/lua/arq_claim.lua) instead of four round trips per job; the claim is the
        same (not held, still queued, due) and as atomic."""
        # ARQ decodes every id as strict UTF-8 in its poll loop: one foreign queue member
        # would kill every worker. Such members are no job of ours: they leave the queue.
        readable: list[bytes] = []
        for job_id in job_ids:
            try:
                job_id.decode()
                readable.append(job_id)
            except UnicodeDecodeError:
                await self.pool.zrem(self.queue_name, job_id)
                log.error("unreadable_job_id_dropped", job_id=repr(job_id[:100]))
        room = self.max_jobs - self.job_counter
        if not readable or room <= 0:
            return
        if self._claim is None:
            self._claim = self.pool.register_script(ARQ_CLAIM.source)
        ttl_ms = int(self.in_progress_timeout_s * 1000)
        # A pool that serves ARQ's job fetch from the claim's answers (worker/prefetch.py)
        # has the claim read each job too; any other pool leaves the fetch to ARQ.
        prefetched = self.pool.prefetched if isinstance(self.pool, PrefetchingArqRedis) else None
        fetch: list[str | int] = ["", "", 0]
        if prefetched is not None:
            fetch = [job_key_prefix, retry_key_prefix, RETRY_KEY_TTL_S]
        args: list[bytes | str | int] = [in_progress_key_prefix, ttl_ms, room, *fetch, *readable]
        requeued, *claimed = await self._claim(keys=[self.queue_name], args=args)
        if requeued:
            log.error("infinite_job_score_requeued", jobs=requeued)
        for i in range(0, len(claimed), 4):
            raw_id, score, job, job_try = claimed[i : i + 4]
            await self.sem.acquire()
            self.job_counter += 1
            claimed_id = raw_id.decode()
            if prefetched is not None and job_try is not None:
                prefetched[claimed_id] = (job, int(job_try))
            task = self.loop.create_task(self.run_job(claimed_id, int(float(score))))
            task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
            self.tasks[claimed_id] = task

    async def run_job(self, job_id: str, score: int) -> None:
        try:
            await super().run_job(job_id, score)
        except REDIS_DOWN:
            raise
        except Exception as exc:  # CancelledError (shutdown) is no Exception: it passes
            await self._end(job_id, f"{type(exc).__name__}: {str(exc)[:200]}")
            await self._forget(job_id)

    async def finish_job(
        self,
        job_id: str,
        finish: bool,
        result_data: bytes | None,
        result_timeout_s: float | None,
        keep_result_forever: bool,
        incr_score: int | None,
        keep_in_progress: float | None,
    ) -> None:
        # A job whose finish script already removed its keys and queue entry (job.py,
        # journal_finish.lua) has nothing left for ARQ to do: skip its round trip.
        services = self.ctx.get("igo")
        if isinstance(services, Services) and job_id in services.retired:
            services.retired.discard(job_id)
            if finish:
                return
        await super().finish_job(
            job_id,
            finish,
            result_data,
            result_timeout_s,
            keep_result_forever,
            incr_score,
            keep_in_progress,
        )

    async def finish_failed_job(self, job_id: str, result_data: bytes | None) -> None:
        """ARQ drops a job here without running our code: "expired" (an empty job key reads
        as one), max tries exceeded, unknown function. A job key that still holds something
        is junk ARQ would lose silently: it is ended like one ARQ cannot prepare. (A job key
        that is gone is an expired job: the sweeper ends its intent.)"""
        if await self.pool.exists(job_key_prefix + job_id):
            await self._end(job_id, "ARQ dropped the job without running it")
        await super().finish_failed_job(job_id, result_data)

    async def _end(self, job_id: str, problem: str) -> None:
        """End the job's intent `rejected` (or dead-letter the junk); one log line says so.
        Failing to record it must not keep the job: the caller removes it regardless."""
        ended: str | None = None
        failure: str | None = None
        try:
            ended = await self._dead_letter(job_id, problem)
        except REDIS_DOWN:
            raise
        except Exception as inner:
            failure = type(inner).__name__
        log.error(
            "bad_job_dropped",
            job_id=job_id[:200],
            problem=problem,
            ended_key=ended,
            dead_letter_failed=failure,
        )

    async def _dead_letter(self, job_id: str, problem: str) -> str | None:
        services = self.ctx.get("igo")
        if not isinstance(services, Services):
            return None  # on_startup did not run: nothing to record with
        message = f"ARQ could not run the job: {problem}"
        raw = {BAD_JOB_MARKER: message, "raw": await self._raw_job(job_id)}
        return await reject_job(services, job_id, [Problem("job", "bad_job", message)], raw)

    async def _raw_job(self, job_id: str) -> str | None:
        try:
            data: Any = await self.pool.get(job_key_prefix + job_id)
        except ResponseError:  # not a string: there is no job text to keep
            return None
        if isinstance(data, bytes):
            return data[:_RAW_LIMIT].decode("utf-8", "replace")
        return None if data is None else str(data)[:_RAW_LIMIT]

    async def _forget(self, job_id: str) -> None:
        async with self.pool.pipeline(transaction=True) as tr:
            tr.delete(
                job_key_prefix + job_id,
                in_progress_key_prefix + job_id,
                retry_key_prefix + job_id,
            )
            tr.zrem(self.queue_name, job_id)
            tr.zrem(abort_jobs_ss, job_id)
            await tr.execute()


def create_guarded_worker(settings_cls: type[Any], **kwargs: Any) -> GuardedWorker:
    """`arq.worker.create_worker` for `GuardedWorker`."""
    return GuardedWorker(**{**get_kwargs(settings_cls), **kwargs})
