"""`load_job`, the worker's ARQ deserializer: whatever bytes sit at `arq:job:<id>`, what it
hands ARQ is a job ARQ can prepare and call, or a quarantined send job naming the problem.
No Redis: the deserializer alone, against what ARQ's `Worker.run_job` does with its result."""

from __future__ import annotations

import inspect
import json
from typing import Any

import pytest
from arq.utils import args_to_string, ms_to_datetime, timestamp_ms
from hypothesis import HealthCheck, example, given, settings

from ig_outbound.harness.intents import text_intent
from ig_outbound.producers.wire import BAD_JOB_MARKER, SEND_JOB_NAME
from ig_outbound.worker.job import send_intent
from ig_outbound.worker.job_guard import load_job
from ig_outbound.worker.worker_settings import ARQ_MAX_TRIES
from tests.worker.junk import NOW_MS, stored_jobs

VICTIM = text_intent("victim", "17841400000000301", "1254477777700301", "hi")


def _good(**fields: Any) -> dict[str, Any]:
    return {"t": None, "f": SEND_JOB_NAME, "a": [VICTIM], "k": {}, "et": NOW_MS, **fields}


def _arq_prepares(job: dict[str, Any]) -> None:
    """What `arq.worker.Worker.run_job` does with a deserialized job before our code runs;
    raises where ARQ would (killing the worker) or asserts where ARQ would drop the job."""
    name, args, kwargs, job_try, enqueue_ms = job["f"], job["a"], job["k"], job["t"], job["et"]
    assert name == SEND_JOB_NAME, "ARQ drops a job of an unknown function"
    if job_try:
        assert job_try <= ARQ_MAX_TRIES, "ARQ drops a job past max_tries"
    ms_to_datetime(enqueue_ms)
    _ = (timestamp_ms() - enqueue_ms) / 1000
    args_to_string(args, kwargs)
    # ARQ calls send_intent(ctx, *args, **kwargs): a TypeError there drops the job.
    inspect.signature(send_intent).bind({}, *args, **kwargs)


@settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@example(data=json.dumps(_good(et=1e300)).encode())
@example(data=json.dumps(_good(t=10**30)).encode())
@example(data=b"[" * 100_000 + b"]" * 100_000)
@given(data=stored_jobs(VICTIM))
def test_whatever_is_stored_arq_can_prepare_what_load_job_returns(data: bytes) -> None:
    _arq_prepares(load_job(data))


def test_a_well_formed_job_passes_unchanged() -> None:
    for job in (_good(), _good(t=3, et=0), _good(et=NOW_MS + 0.25)):
        assert load_job(json.dumps(job).encode()) == job


BAD_FIELDS: dict[str, dict[str, Any]] = {
    "enqueue time past year 9999": {"et": 1e300},
    "enqueue time not finite": {"et": float("inf")},
    "enqueue time not a number": {"et": "1750000000000"},
    "enqueue time negative": {"et": -1},
    "enqueue time a boolean": {"et": True},
    "try count huge": {"t": 10**30},
    "try count negative": {"t": -1},
    "try count a float": {"t": 1.0},
    "kwargs our job does not take": {"k": {"ctx": 1}},
    "kwargs not an object": {"k": []},
    "args not a list": {"a": {"idempotency_key": "victim"}},
    "two args": {"a": [VICTIM, VICTIM]},
    "no args": {"a": []},
    "another function": {"f": "nope"},
}


@pytest.mark.parametrize("fields", BAD_FIELDS.values(), ids=BAD_FIELDS.keys())
def test_a_field_arq_cannot_run_with_quarantines_the_job(fields: dict[str, Any]) -> None:
    data = json.dumps(_good(**fields), allow_nan=True).encode()
    job = load_job(data)
    (payload,) = job["a"]
    assert BAD_JOB_MARKER in payload
    assert payload["raw"] == json.loads(data)  # the whole job, for the dead letter
    _arq_prepares(job)


@pytest.mark.parametrize("missing", ["a", "k", "t", "et"])
def test_a_missing_field_quarantines_the_job(missing: str) -> None:
    job = _good()
    del job[missing]
    (payload,) = load_job(json.dumps(job).encode())["a"]
    assert payload[BAD_JOB_MARKER] == f"job has no {missing!r} field"


NOT_JSON: dict[str, bytes] = {
    "hex number": b'{"t":null,"f":"ig_outbound.send","a":[{}],"k":{},"et":0x10}',
    "lower-case nan": b'{"t":null,"f":"ig_outbound.send","a":[{}],"k":{},"et":nan}',
    "invalid utf-8": b'{"a":["caf\xe9"]}',
    "nesting past the recursion limit": b"[" * 100_000 + b"]" * 100_000,
}


@pytest.mark.parametrize("data", NOT_JSON.values(), ids=NOT_JSON.keys())
def test_a_payload_pythons_json_refuses_is_quarantined_as_text(data: bytes) -> None:
    (payload,) = load_job(data)["a"]
    assert payload[BAD_JOB_MARKER] == "job payload is not valid JSON"
    assert isinstance(payload["raw"], str) and len(payload["raw"]) <= 10_000


def test_deep_nesting_python_can_read_is_quarantined_too() -> None:
    nested = json.dumps(_good(a=[json.loads("[" * 200 + "]" * 200)])).encode()
    (payload,) = load_job(nested)["a"]
    assert "nested deeper than" in payload[BAD_JOB_MARKER]
