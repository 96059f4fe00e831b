"""The example auto-responder (`producers/examples/auto_responder.py`) inside a local stack:
a thread of this process with its own event loop, so a synchronous driver (the demo) can run
it next to its own work, read its counts and stop it (`processes.ResponderProcess` runs it
as its own process instead).

It is one consumer of the group, exactly as the example runs on its own; `caught_up` says
when it has answered everything the gateway has put on the inbound stream so far.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from types import TracebackType
from typing import Any

from ig_outbound.harness.errors import LocalStackError
from ig_outbound.harness.processes import group_caught_up
from ig_outbound.producers.connection import connect_async, connect_sync
from ig_outbound.producers.examples.auto_responder import GROUP, AutoResponder
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.settings import ClientSettings


class ResponderThread:
    """Runs `AutoResponder` until `stop()`; `counts` are its enqueue results (`queued`,
    `duplicate`, `refused:<reason>`). A failure ends the thread and is raised by `stop()`.

    `from_id` is where the group starts: "0" answers everything already on the stream (a
    stack whose prefix is fresh), "$" only what comes after `start()`."""

    def __init__(
        self,
        settings: ClientSettings,
        *,
        consumer: str = "harness",
        batch: int = 500,
        block_ms: int = 100,
        from_id: str = "0",
    ) -> None:
        self.settings = settings
        self.keys = Keys(settings.key_prefix)
        self.consumer, self.batch, self.block_ms, self.from_id = consumer, batch, block_ms, from_id
        self._counts: Counter[str] = Counter()
        self._stop = threading.Event()
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="auto-responder", daemon=True)
        self._probe: Any = None  # the driver's own connection, for `caught_up`

    @property
    def counts(self) -> Counter[str]:
        """A copy of what its enqueues came back with so far."""
        return Counter(self._counts)

    def start(self, timeout_s: float = 10.0) -> ResponderThread:
        """Start it; returns once its consumer group exists (events from then on are read)."""
        self._thread.start()
        if not self._started.wait(timeout_s):
            raise LocalStackError("the auto-responder did not start")
        self._raise_failure()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Finish the current batch, stop, and raise what ended it early, if anything."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        if self._probe is not None:
            self._probe.close()
            self._probe = None
        if self._thread.is_alive():
            raise LocalStackError("the auto-responder did not stop")
        self._raise_failure()

    def alive(self) -> bool:
        return self._thread.is_alive()

    def caught_up(self) -> bool:
        """Every entry on the inbound stream was read and acknowledged (answered)."""
        self._raise_failure()
        if self._probe is None:
            self._probe = connect_sync(self.settings)
        return group_caught_up(self._probe, self.keys.inbound, GROUP)

    def _raise_failure(self) -> None:
        if self._error is not None:
            raise LocalStackError(f"the auto-responder failed: {self._error!r}") from self._error

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by stop() / caught_up(), never lost
            self._error = exc
        finally:
            self._started.set()

    async def _main(self) -> None:
        redis = connect_async(self.settings)
        try:
            responder = AutoResponder(redis, self.settings, consumer=self.consumer)
            responder.counts = self._counts  # shared: the driver reads it while it runs
            await responder.start(self.from_id)
            self._started.set()
            while not self._stop.is_set():
                await responder.step(count=self.batch, block_ms=self.block_ms)
        finally:
            await redis.aclose()

    def __enter__(self) -> ResponderThread:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
