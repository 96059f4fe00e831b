"""The job wire format shared by every producer and the worker: JSON, never pickle.

An ARQ job is the JSON object ``{"t": null, "f": JOB_NAME, "a": [<intent>], "k": {}, "et": <ms>}``
(arq-notes A.2). The enqueue Lua script builds it from the intent JSON, so producers in other
languages never assemble it by hand.
"""

from __future__ import annotations

import json
from typing import Any

# Explicit job name: ARQ would otherwise use the function's __qualname__ (arq-notes A.2).
SEND_JOB_NAME = "ig_outbound.send"
# A job the worker could not read is re-run as a send job whose one argument carries this
# field (the reason); it ends `rejected` or as a dead letter, and the DLQ refuses to replay it.
BAD_JOB_MARKER = "__bad_job__"
# The ARQ job key outlives the intent's deadline by this much, so the worker can still end
# a late job `expired`.
JOB_TTL_MARGIN_MS = 3_600_000
# Echo webhooks are kept this long, the newest this many per conversation: reconciling an
# ambiguous send looks back seconds, and a chatty conversation must not grow without bound.
ECHO_RETENTION_S = 2 * 24 * 3600
ECHOES_PER_CONVERSATION = 500
# Epoch milliseconds above this (year 2286) are not times but junk.
MAX_EPOCH_MS = 10_000_000_000_000
# The widest transit allowance a rate window takes (worker setting `rate.transit_max_ms` at
# most; the scripts ignore a larger fleet value found in Redis).
MAX_TRANSIT_MS = 10_000


def dumps(obj: Any) -> bytes:
    """ARQ job serializer: compact JSON; `default=str` so exceptions in results still encode."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def loads(data: bytes | str) -> Any:
    """ARQ job deserializer."""
    return json.loads(data)


def canonical_json(obj: Any) -> str:
    """The canonical text of an intent: sorted keys, compact. Its SHA-1 is the content digest.
    NaN and infinities raise ValueError: they are not JSON (the worker could not read them)."""
    return json.dumps(
        obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False, allow_nan=False
    )
