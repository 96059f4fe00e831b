"""Errors of the local harness (demo, tests, benchmarks), under one root.

HarnessError          a local stack could not run as planned (the message says why)
 ├── LocalStackError  a process (redis-server, a worker, the emulator) would not start
 └── ChaosError       a chaos run could not go as planned (refused intents, ...)
"""

from __future__ import annotations


class HarnessError(RuntimeError):
    """Base class of harness errors."""


class LocalStackError(HarnessError):
    """A local process could not be started (the message says why)."""


class ChaosError(HarnessError):
    """The chaos stack could not be run as planned (the message says why)."""
