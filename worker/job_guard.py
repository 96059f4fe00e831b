"""ARQ job deserializer that never raises, and which intent a job may end.

ARQ trusts a stored job: it drops one it cannot deserialize, or whose function it does not
know, with no trace but a failed result, and a field out of range (`et: 1e300`, `t: 10**30`,
kwargs our job does not take) either raises inside `Worker.run_job`, which kills the worker,
or drops the job silently (arq-notes A.3). So `load_job` lets through only jobs whose every
ARQ field is one our send job can run with; anything else is turned into a call of our send
job carrying a `__bad_job__` marker. That run ends it as `rejected` (reason `bad_job`) or a
dead letter: never lost silently, never a crash, never a loop.

Which intent a junk job ends is decided by its ARQ job id, never by its payload (which may
not parse, or may carry another intent's key): only the intent whose record names this job
id (`owning_key`).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Any

from redis.exceptions import ResponseError

from ig_outbound.producers.redis_util import resolve
from ig_outbound.producers.wire import BAD_JOB_MARKER, MAX_EPOCH_MS, SEND_JOB_NAME
from ig_outbound.worker.services import Services

# How much of a junk job a dead letter keeps.
_RAW_LIMIT = 10_000
# ARQ compares `t` (the try an enqueue asks for) with `max_tries` (ARQ_MAX_TRIES, a
# million): a larger `t` would make ARQ drop the job as "max retries exceeded". Our jobs
# carry null; a producer that sets it has no reason to go past a handful.
_MAX_TRY = 1000
# Intents are nested a few levels deep (MAX_INTENT_DEPTH is 32, plus the job's own two);
# deeper JSON is junk, and the recursive code that reads it (pydantic, json.dumps, repr)
# could run out of stack on it.
_MAX_DEPTH = 64


def _quarantine(reason: str, raw: Any) -> dict[str, Any]:
    payload = {BAD_JOB_MARKER: reason, "raw": raw}
    return {"t": None, "f": SEND_JOB_NAME, "a": [payload], "k": {}, "et": int(time.time() * 1000)}


def _text(data: bytes | str) -> str:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    return text[:_RAW_LIMIT]


def _too_deep(value: Any) -> bool:
    """True if `value` nests lists/objects deeper than `_MAX_DEPTH` (iterative: no stack)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if not isinstance(item, list):
            continue
        if depth > _MAX_DEPTH:
            return True
        stack.extend((child, depth + 1) for child in item)
    return False


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _plausible_try(value: Any) -> bool:
    return value is None or (_is_int(value) and 0 <= value <= _MAX_TRY)


def _plausible_ms(value: Any) -> bool:
    """`et`, epoch ms: ARQ turns it into a datetime (which fails past year 9999) and does
    arithmetic with it. 0 is what hand-written jobs carry (the job then counts its deadline
    from now); above MAX_EPOCH_MS (year 2286) it is junk, not a time."""
    number = _is_int(value) or (isinstance(value, float) and math.isfinite(value))
    return number and 0 <= value <= MAX_EPOCH_MS


def _one_argument(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 1


def _no_kwargs(value: Any) -> bool:
    return isinstance(value, dict) and not value


# Every field ARQ reads from a job (arq.jobs.deserialize_job_raw), with what it must hold.
_FIELDS: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    ("a", _one_argument, "a list of exactly one argument"),
    ("k", _no_kwargs, "an empty object (the send job takes no keyword arguments)"),
    ("t", _plausible_try, f"null or a whole number of tries from 0 to {_MAX_TRY}"),
    ("et", _plausible_ms, f"the enqueue time in epoch ms, 0 to {MAX_EPOCH_MS}"),
)


def _field_problem(job: dict[str, Any]) -> str | None:
    """What is wrong with a decoded job's ARQ fields, or None if ARQ can run it."""
    name = job.get("f")
    if name != SEND_JOB_NAME:
        return f"unknown job name {str(name)[:100]!r}"
    for field, check, wanted in _FIELDS:
        if field not in job:
            return f"job has no {field!r} field"
        if not check(job[field]):
            return f"job field {field!r} must be {wanted}"
    return None


def load_job(data: bytes | str) -> dict[str, Any]:
    """Decode an ARQ job; anything ARQ or our job could not run becomes a quarantined send
    job (its reason and the raw job, as an object when small and readable, else as text)."""
    try:
        job = json.loads(data)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return _quarantine("job payload is not valid JSON", _text(data))
    if not isinstance(job, dict):
        return _quarantine("job payload is not a JSON object", _text(data))
    # Nesting needs a bracket per level: a job with few brackets is shallow (no walk).
    brackets = data.count(b"[") + data.count(b"{") if isinstance(data, bytes) else None
    if (brackets is None or brackets > _MAX_DEPTH) and _too_deep(job):
        return _quarantine(f"job is nested deeper than {_MAX_DEPTH} levels", _text(data))
    problem = _field_problem(job)
    if problem is not None:
        return _quarantine(problem, job if len(data) <= _RAW_LIMIT else _text(data))
    return job


async def owning_key(services: Services, job_id: str) -> str | None:
    """The idempotency key of the intent whose job `job_id` is (its record's `job_id` field
    says so), or None: a job id of no intent (junk written straight into Redis) ends none."""
    prefix = services.keys.job_id("")
    if not job_id.startswith(prefix):
        return None
    key = job_id[len(prefix) :]
    if not key or services.keys.job_id(key) != job_id:
        return None
    try:
        stored = await resolve(services.redis.hget(services.keys.record(key), "job_id"))
    except ResponseError:  # a key of another type is no record of ours
        return None
    if isinstance(stored, bytes):
        stored = stored.decode("utf-8", "replace")
    return key if stored == job_id else None
