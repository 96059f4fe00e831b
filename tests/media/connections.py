"""Every connection attempt the test process makes, seen through Python's audit events
(PEP 578: `socket.connect` fires for each `connect()`, asyncio's included), so a test can
show that a refused URL was refused before any connection."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

_log: list[object] | None = None
_installed = False


def _hook(event: str, args: tuple[object, ...]) -> None:
    if event == "socket.connect" and _log is not None:
        _log.append(args[1])  # the address


@contextmanager
def connection_attempts() -> Iterator[list[object]]:
    """The addresses connected to (or tried) inside the block, in order."""
    global _log, _installed
    if not _installed:  # an audit hook stays for the life of the process: add it once
        sys.addaudithook(_hook)
        _installed = True
    attempts: list[object] = []
    _log = attempts
    try:
        yield attempts
    finally:
        _log = None
