"""Small helpers around redis-py's asyncio typing."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def resolve(value: Awaitable[T] | T) -> T:
    """Await redis-py's `Awaitable[T] | T` results (its stubs type both clients at once)."""
    if inspect.isawaitable(value):
        return await value
    return value
