"""One bounded poll loop: it returns once the condition holds and names what never did."""

from __future__ import annotations

import itertools

import pytest

from ig_outbound.harness.wait import wait_until, wait_until_async


def test_wait_until_returns_once_the_condition_holds() -> None:
    polls = itertools.count()
    assert wait_until(lambda: next(polls) >= 3, 5, "three polls", poll_s=0.001) < 5


def test_wait_until_names_what_never_happened() -> None:
    with pytest.raises(TimeoutError, match="waiting for the impossible"):
        wait_until(lambda: False, 0.05, "the impossible", poll_s=0.01)


async def test_the_async_wait_takes_plain_and_async_conditions() -> None:
    polls = itertools.count()

    async def later() -> bool:
        return next(polls) >= 2

    assert await wait_until_async(later, 5, "two polls", poll_s=0.001) < 5
    assert await wait_until_async(lambda: True, 5, "at once") < 5
    with pytest.raises(TimeoutError, match="waiting for nothing"):
        await wait_until_async(lambda: False, 0.05, "nothing", poll_s=0.01)
