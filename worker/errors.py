"""Errors of the worker side, under one root (the producer side's root is `OutboundError`).

    WorkerError               anything the worker refuses or cannot do; `code` + `as_dict()`
     ├── WorkerConfigError    settings the worker cannot start with (never shows a secret)
     │    ├── TokenConfigError       the tokens variable or file is malformed
     │    └── InvalidSettingsError   the environment does not validate (worker/arq_worker.py)
     ├── RedisUnusableError   Redis refuses our credentials or TLS, or never answered
     │                        (worker/supervisor.py: no restart can fix it)
     └── MediaProbeError      a media URL could not be probed (worker/media/errors.py:
                              forbidden address, unreachable, not https, ...)

Graph's own answers are values, not exceptions (`ig_outbound/graph/errors.py`: `GraphError`,
`Classification`), so a send never raises for what Meta said; misusing the client (a closed
one) raises `ig_outbound.graph.GraphClientError`.
"""

from __future__ import annotations

from typing import Any


class WorkerError(Exception):
    """Base class of worker-side errors."""

    code: str = "worker_error"

    def as_dict(self) -> dict[str, Any]:
        return {"error": self.code, "message": str(self)}


class WorkerConfigError(WorkerError, ValueError):
    """The worker's settings are unusable; the message names the setting, never a secret."""

    code = "invalid_settings"


class TokenConfigError(WorkerConfigError):
    """The tokens file is unreadable or malformed (the message never contains a token)."""

    code = "invalid_tokens"
