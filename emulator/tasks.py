"""Waiting and stopping for the emulator's background tasks.

Python 3.11's ``asyncio.wait_for`` can swallow a cancellation that arrives as the inner wait
ends (fixed in 3.12); a background loop then runs on after ``cancel()`` and whoever awaits it
hangs. These helpers use ``asyncio.timeout`` instead, and stopping cancels until done.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress

STOP_ROUND_S = 1.0


async def wait_event(event: asyncio.Event, timeout_s: float | None) -> bool:
    """Wait until ``event`` is set or ``timeout_s`` passes (None: no limit); whether it was set."""
    with suppress(TimeoutError):
        async with asyncio.timeout(timeout_s):
            await event.wait()
        return True
    return False


async def cancel_and_wait(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` and wait for its end, cancelling again should it swallow one."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=STOP_ROUND_S)
    with suppress(asyncio.CancelledError):
        task.result()
