"""ARQ job deserializer that never raises.

ARQ drops a job it cannot deserialize, or whose function it does not know, with no trace but
a failed result (arq-notes A.3). Here every such payload is turned into a call of our send job
carrying a `__bad_job__` marker, so it ends as a `rejected` outcome (when its idempotency key
can be read) or a dead letter (when not): never lost silently, never a crash, never a loop.
"""

from __future__ import annotations

import json
import time
from typing import Any

from ig_outbound.producers.validation import readable_key
from ig_outbound.producers.wire import BAD_JOB_MARKER, SEND_JOB_NAME

_RAW_LIMIT = 10_000


def _quarantine(reason: str, raw: Any, key: str | None) -> dict[str, Any]:
    payload: dict[str, Any] = {BAD_JOB_MARKER: reason, "raw": raw}
    if key is not None:
        payload["idempotency_key"] = key
    return {"t": None, "f": SEND_JOB_NAME, "a": [payload], "k": {}, "et": int(time.time() * 1000)}


def _first_arg_key(args: Any) -> str | None:
    if isinstance(args, list) and len(args) == 1:
        return readable_key(args[0])
    return None


def load_job(data: bytes | str) -> dict[str, Any]:
    """Decode an ARQ job; anything malformed becomes a quarantined send job."""
    try:
        job = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        return _quarantine("job payload is not valid JSON", text[:_RAW_LIMIT], None)
    if not isinstance(job, dict):
        return _quarantine("job payload is not a JSON object", job, None)
    args = job.get("a")
    key = _first_arg_key(args)
    if job.get("f") != SEND_JOB_NAME:
        return _quarantine(f"unknown job name {str(job.get('f'))[:100]!r}", job, key)
    try_ = job.get("t")
    shape_ok = (
        isinstance(args, list)
        and isinstance(job.get("k"), dict)
        and (try_ is None or (isinstance(try_, int) and not isinstance(try_, bool)))
        and isinstance(job.get("et"), int | float)
    )
    if not shape_ok:
        return _quarantine("job has the wrong shape (needs t, f, a, k, et)", job, key)
    return job
