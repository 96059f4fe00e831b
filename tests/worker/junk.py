"""Hypothesis strategies for stored ARQ jobs that no producer of ours writes: every ARQ field
with values out of range or of the wrong type, extra kwargs, nested junk, JSON only
lenient parsers read, bytes that are not JSON at all. Shared by the deserializer's property
test and the live-worker fuzz test."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from ig_outbound.producers.wire import SEND_JOB_NAME

# A plausible enqueue time (ms) to mix in: most junk is wrong in one field, not all.
NOW_MS = 1_750_000_000_000

NUMBERS = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40),
    st.sampled_from([0, -1, 1, 1000, 1001, 10**13, 10**13 + 1, 2**63, 10**30, NOW_MS]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e300, -1e300, float("nan"), float("inf"), float("-inf"), NOW_MS + 0.5]),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    NUMBERS,
    st.text(max_size=12),
    st.sampled_from(["1", "1e300", "NaN", "Infinity", "0x10", "", SEND_JOB_NAME]),
)
JUNK = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def payloads(victim: dict[str, Any]) -> st.SearchStrategy[Any]:
    """The job's argument: junk, or an intent (valid or not) carrying `victim`'s key."""
    return st.one_of(
        JUNK,
        st.just(victim),
        st.builds(lambda extra: {**victim, "content": extra}, JUNK),
        st.builds(lambda extra: {"idempotency_key": victim["idempotency_key"], "x": extra}, JUNK),
    )


_FIELDS = ("t", "f", "a", "k", "et")


def job_dicts(victim: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A job object: each ARQ field plausible or junk, some fields missing, extras added."""
    payload = payloads(victim)
    fields = st.fixed_dictionaries(
        {
            "t": st.one_of(st.none(), NUMBERS, JUNK),
            "f": st.one_of(st.just(SEND_JOB_NAME), st.sampled_from(["nope", ""]), JUNK),
            "a": st.one_of(st.lists(payload, min_size=1, max_size=1), st.lists(payload), JUNK),
            "k": st.one_of(
                st.just({}),
                st.dictionaries(st.sampled_from(["ctx", "x", "job_id"]), JUNK, min_size=1),
                JUNK,
            ),
            "et": st.one_of(st.just(NOW_MS), st.just(0), NUMBERS, JUNK),
        }
    )
    dropped = st.sets(st.sampled_from(_FIELDS), max_size=2)
    extra = st.dictionaries(st.sampled_from(["r", "x", "s"]), JUNK, max_size=1)
    return st.builds(
        lambda job, drop, more: {**{k: v for k, v in job.items() if k not in drop}, **more},
        fields,
        dropped,
        extra,
    )


def _deep(depth: int) -> bytes:
    nested = "[" * depth + "]" * depth
    return f'{{"t":null,"f":"{SEND_JOB_NAME}","a":[{nested}],"k":{{}},"et":0}}'.encode()


# JSON that Python's json refuses (hex, lower-case nan, single quotes, trailing commas),
# encodings that are not UTF-8, and nesting past Python's recursion limit.
NOT_JSON = st.sampled_from(
    [
        b'{"t":null,"f":"ig_outbound.send","a":[{}],"k":{},"et":0x10}',
        b'{"t":null,"f":"ig_outbound.send","a":[{}],"k":{},"et":nan}',
        b"{'t': None}",
        b'{"f":"ig_outbound.send",}',
        b"\xff\xfe{\x00}\x00",
        b'{"a":["caf\xe9"]}',
        b"",
        b"[" * 100_000 + b"]" * 100_000,
    ]
)


def stored_jobs(victim: dict[str, Any]) -> st.SearchStrategy[bytes]:
    """What may sit at `arq:job:<id>`: mostly junk job objects, some not JSON at all."""
    encoded = job_dicts(victim).map(lambda job: json.dumps(job, allow_nan=True).encode())
    return st.one_of(
        encoded,
        encoded,
        encoded,
        NOT_JSON,
        st.binary(max_size=40),
        st.integers(min_value=50, max_value=5_000).map(_deep),
        JUNK.map(lambda value: json.dumps(value, allow_nan=True).encode()),
    )
