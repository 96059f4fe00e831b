"""`SyncOutboundClient` is the blocking twin of `OutboundClient`: the same methods, with the
same parameters (docs/producers.md calls them the same API)."""

from __future__ import annotations

import inspect
from typing import Any

from ig_outbound.producers.enqueue import OutboundClient, SyncOutboundClient

# Lifecycle methods differ by nature (async context manager vs plain one).
_LIFECYCLE = {"aclose", "close", "__aenter__", "__aexit__", "__enter__", "__exit__"}


def _public(cls: Any) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_") and name not in _LIFECYCLE
    } | {"connect": inspect.signature(cls.connect)}


def test_the_sync_client_has_every_method_of_the_async_one_with_the_same_parameters() -> None:
    sync, aio = _public(SyncOutboundClient), _public(OutboundClient)
    assert sorted(sync) == sorted(aio)
    for name, signature in aio.items():
        assert list(sync[name].parameters) == list(signature.parameters), name
        defaults = [p.default for p in signature.parameters.values()]
        assert [p.default for p in sync[name].parameters.values()] == defaults, name


def test_the_async_methods_are_coroutines_and_the_sync_ones_are_not() -> None:
    for name in _public(OutboundClient):
        if name != "connect":
            assert inspect.iscoroutinefunction(getattr(OutboundClient, name)), name
            assert not inspect.iscoroutinefunction(getattr(SyncOutboundClient, name)), name
