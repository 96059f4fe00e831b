"""Waiting for a positive signal: one poll loop for the demo, the tests and the benchmarks.

Every wait is bounded and names what it waited for, so a timeout says what never happened.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

from ig_outbound.harness.errors import LocalStackError
from ig_outbound.producers.connection import connect_sync
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.settings import ClientSettings


def wait_until(
    condition: Callable[[], bool], timeout_s: float, what: str, poll_s: float = 0.05
) -> float:
    """Poll `condition` until true; return the seconds it took, raise `TimeoutError` after
    `timeout_s` naming `what`."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout_s:
            raise TimeoutError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(poll_s)
    return time.monotonic() - start


async def wait_until_async(
    condition: Callable[[], bool | Awaitable[bool]],
    timeout_s: float,
    what: str,
    poll_s: float = 0.05,
) -> float:
    """`wait_until` for async code: `condition` may be a plain or an async function, and the
    event loop runs between polls."""
    start = time.monotonic()
    while not await _holds(condition):
        if time.monotonic() - start > timeout_s:
            raise TimeoutError(f"timed out after {timeout_s:g} s waiting for {what}")
        await asyncio.sleep(poll_s)
    return time.monotonic() - start


async def _holds(condition: Callable[[], bool | Awaitable[bool]]) -> bool:
    result = condition()
    if inspect.isawaitable(result):
        return bool(await result)
    return bool(result)


def wait_registered(settings: ClientSettings, accounts: int, timeout_s: float = 30.0) -> float:
    """Wait until the workers of `settings`' Redis and key prefix have registered `accounts`
    account ids: producers refuse an account before (so a stack is ready only then)."""
    keys = Keys(settings.key_prefix)
    r = connect_sync(settings)  # TLS, ACL users and Sentinel as the stack's settings say
    try:
        return wait_until(
            lambda: int(r.scard(keys.accounts)) >= accounts,  # type: ignore[arg-type]
            timeout_s,
            f"workers to register {accounts} accounts under {settings.key_prefix!r}",
        )
    except TimeoutError as exc:
        raise LocalStackError(f"the workers did not start: {exc}") from None
    finally:
        r.close()
