"""ARQ's job fetch answered by the claim: one round trip less per job.

ARQ starts every job with a transaction of its own (`Worker.run_job`: GET the job, INCR its
try counter, EXPIRE the counter). The worker's claim script (producers/lua/arq_claim.lua,
run by `GuardedWorker.start_jobs`) does the same three steps for each job it claims, in the
claim's round trip, and leaves the answers here; the pool's pipeline then answers ARQ's
transaction from them instead of sending it. Only that exact transaction, for a job with
answers waiting, is served (each once); every other pipeline, and that one when nothing
waits (a claim whose fetch failed: a job key of the wrong type, a corrupt counter), goes to
Redis as usual, so ARQ meets the same failure it always did.
"""

from __future__ import annotations

from typing import Any

from arq.connections import ArqRedis
from arq.constants import job_key_prefix, retry_key_prefix
from redis.asyncio.client import Pipeline

# ARQ's TTL of a job's try counter (`Worker.run_job`), which the claim sets as ARQ would.
RETRY_KEY_TTL_S = 88_400


class PrefetchingArqRedis(ArqRedis):
    """ARQ's Redis client whose pipelines serve ARQ's job fetch from the claim's answers."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # job id -> (job bytes or None, try number), left by the claim, taken by the fetch
        self.prefetched: dict[str, tuple[bytes | None, int]] = {}

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        return _PrefetchPipeline(self, transaction, shard_hint)


class _PrefetchPipeline(Pipeline):
    def __init__(
        self, owner: PrefetchingArqRedis, transaction: bool, shard_hint: str | None
    ) -> None:
        super().__init__(owner.connection_pool, owner.response_callbacks, transaction, shard_hint)
        self._prefetched = owner.prefetched

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        served = self._serve()
        if served is None:
            return await super().execute(raise_on_error)
        await self.reset()  # type: ignore[no-untyped-call]
        return served

    def _serve(self) -> list[Any] | None:
        """The answers of ARQ's fetch transaction [job, try, expire's True], if this is it
        and the claim left them."""
        if not self.is_transaction or len(self.command_stack) != 3:
            return None
        stack: list[tuple[tuple[Any, ...], Any]] = self.command_stack
        (get, _), (incr, _), (expire, _) = stack
        if len(get) != 2 or get[0] != "GET" or not isinstance(get[1], str):
            return None
        if not get[1].startswith(job_key_prefix):
            return None
        job_id = get[1][len(job_key_prefix) :]
        retry_key = retry_key_prefix + job_id
        if incr != ("INCRBY", retry_key, 1) or expire != ("EXPIRE", retry_key, RETRY_KEY_TTL_S):
            return None
        answer = self._prefetched.pop(job_id, None)
        if answer is None:
            return None
        job, job_try = answer
        return [job, job_try, True]
