"""The ig-outbound ARQ worker. `arq ig_outbound.worker.WorkerSettings` starts it."""

from __future__ import annotations

from typing import Any

__all__ = ["WorkerSettings"]


def __getattr__(name: str) -> Any:
    # Lazy, so importing a submodule (payloads, graph, ...) does not read the environment.
    if name == "WorkerSettings":
        from ig_outbound.worker.worker_settings import WorkerSettings

        return WorkerSettings
    raise AttributeError(name)
