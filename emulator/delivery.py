"""Background delivery of webhooks to the configured URL, as Meta does it.

``submit`` (synchronous, called under the state lock by the send pipeline and the control
routes) queues an entry; while a webhook waits for its first attempt, later entries join it
up to ``batch_max`` (Meta batches what has piled up). One asyncio task per emulator takes
webhooks off the queue and POSTs them, at most ``concurrency`` at a time; a non-2xx answer
(429 included), a connection error or a timeout is retried after a backoff, up to ``retries``
more times, then the webhook is given up. Retries wait in a heap by due time, so a failing
receiver never holds up the webhooks behind it.

The task starts with the app's lifespan, or lazily on the first ``submit`` made inside a
running loop (an app driven through ``httpx.ASGITransport`` has no lifespan). Its own lock
guards everything here; it never takes the state lock, so the order is state -> dispatcher.
"""

from __future__ import annotations

import asyncio
import heapq
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from ig_outbound.emulator.config import WebhookConfig
from ig_outbound.emulator.tasks import cancel_and_wait, wait_event
from ig_outbound.emulator.webhooks import SIGNATURE_HEADER, JsonDict, render, sign

WebhookState = Literal["queued", "sending", "retrying", "delivered", "given_up"]
RETRY_AFTER_MAX_S = 3600.0


@dataclass
class Attempt:
    at: float  # real epoch seconds when the attempt ended
    status: int | None  # HTTP status, None when no answer came
    error: str | None  # exception class of a connection error or timeout

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at, "status": self.status, "error": self.error}


@dataclass
class Webhook:
    """One POST to the receiver: a body of one or more entries and its delivery history."""

    index: int
    generation: int
    created_at: float
    entries: list[JsonDict] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    body: bytes | None = None  # fixed when the first attempt starts
    signature: str | None = None
    state: WebhookState = "queued"
    attempts: list[Attempt] = field(default_factory=list)

    def to_json(self, app_secret: str) -> dict[str, Any]:
        body = self.body if self.body is not None else render(self.entries)
        return {
            "index": self.index,
            "created_at": self.created_at,
            "kinds": list(self.kinds),
            "state": self.state,
            "body": body.decode("ascii"),
            "signature": self.signature or sign(app_secret, body),
            "attempts": [a.to_json() for a in self.attempts],
        }


class WebhookDispatcher:
    def __init__(
        self, settings: WebhookConfig, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._lock = threading.Lock()
        # Tests deliver in-process through an ASGI transport; None is real HTTP.
        self._transport = transport
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._attempts: set[asyncio.Task[None]] = set()
        self._wake: asyncio.Event | None = None
        self._settled: asyncio.Event | None = None
        self._client: httpx.AsyncClient | None = None
        self._generation = 0
        self.reset(settings)

    def reset(self, settings: WebhookConfig) -> None:
        """Forget every webhook and counter and take ``settings``; in-flight ones end unseen."""
        with self._lock:
            self.settings = settings
            self._generation += 1
            self._log: deque[Webhook] = deque(maxlen=settings.log_max)
            self._next_index = 0
            self._open: Webhook | None = None  # the newest queued webhook, still taking entries
            self._ready: deque[Webhook] = deque()
            self._retry: list[tuple[float, int, Webhook]] = []  # (due monotonic, index, webhook)
            self._in_flight = 0
            self._counts: Counter[str] = Counter()

    def configure(self, patch: Mapping[str, Any]) -> WebhookConfig:
        with self._lock:
            merged = {**self.settings.model_dump(), **patch}
            settings = WebhookConfig.model_validate(merged)
            if settings.log_max != self.settings.log_max:
                self._log = deque(self._log, maxlen=settings.log_max)
            self.settings = settings
        self._kick()
        return settings

    @property
    def enabled(self) -> bool:
        return self.settings.url is not None

    # --- queueing (any thread) -------------------------------------------------------------

    def submit(self, entry: JsonDict, kind: str) -> int | None:
        """Queue one entry; its webhook's index, or None (no URL, or the queue is full)."""
        with self._lock:
            if self.settings.url is None:
                return None
            webhook = self._open
            if webhook is None or webhook.state != "queued":
                webhook = self._new_webhook()
                if webhook is None:
                    return None
            webhook.entries.append(entry)
            webhook.kinds.append(kind)
            if len(webhook.entries) >= self.settings.batch_max:
                self._open = None
        self._kick()
        return webhook.index

    def _new_webhook(self) -> Webhook | None:
        if len(self._ready) + len(self._retry) + self._in_flight >= self.settings.queue_max:
            self._counts["dropped"] += 1
            return None
        webhook = Webhook(self._next_index, self._generation, time.time())
        self._next_index += 1
        self._log.append(webhook)
        self._ready.append(webhook)
        self._open = webhook
        self._counts["queued"] += 1
        return webhook

    # --- reading ------------------------------------------------------------------------------

    def snapshot(self, since: int = 0) -> dict[str, Any]:
        with self._lock:
            secret = self.settings.app_secret.get_secret_value()
            return {
                "webhooks": [w.to_json(secret) for w in self._log if w.index >= since],
                "next_since": self._next_index,
            }

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "queued": self._counts["queued"],
                "delivered": self._counts["delivered"],
                "retried": self._counts["retried"],
                "given_up": self._counts["given_up"],
                "dropped": self._counts["dropped"],
                "pending": self._pending(),
            }

    def _pending(self) -> int:
        return len(self._ready) + len(self._retry) + self._in_flight

    async def idle(self) -> None:
        """Wait until no webhook is queued, retrying or in flight (in-process tests)."""
        while True:
            with self._lock:
                if self._pending() == 0:
                    return
            self._kick()
            settled = self._settled
            assert settled is not None, "the dispatcher runs once something was submitted"
            settled.clear()
            with self._lock:
                if self._pending() == 0:
                    return
            await settled.wait()

    # --- the task -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the delivery task on the running loop (again, if it ran on another loop)."""
        loop = asyncio.get_running_loop()
        if self._task is not None and not self._task.done() and self._loop is loop:
            return
        self._loop = loop
        self._wake, self._settled = asyncio.Event(), asyncio.Event()
        limits = httpx.Limits(max_connections=256, max_keepalive_connections=32)
        self._client = httpx.AsyncClient(transport=self._transport, limits=limits)
        self._task = loop.create_task(self._run(), name="emulator-webhooks")

    async def stop(self) -> None:
        for task in [t for t in (self._task, *self._attempts) if t is not None]:
            await cancel_and_wait(task)
        self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _kick(self) -> None:
        with suppress(RuntimeError):  # no running loop in this thread: the task's loop wakes
            running = asyncio.get_running_loop()
            if self._loop is not running or self._task is None or self._task.done():
                self.start()
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or loop.is_closed():
            return
        with suppress(RuntimeError):
            loop.call_soon_threadsafe(wake.set)

    async def _run(self) -> None:
        assert self._wake is not None and self._loop is not None
        while True:
            self._wake.clear()
            webhook, delay = self._take()
            if webhook is None:
                await wait_event(self._wake, delay)
                continue
            task = self._loop.create_task(self._attempt(webhook))
            self._attempts.add(task)
            task.add_done_callback(self._attempts.discard)

    def _take(self) -> tuple[Webhook | None, float | None]:
        """The next webhook due, marked sending; else how long until a retry is due."""
        with self._lock:
            if self._in_flight >= self.settings.concurrency:
                return None, None  # an attempt ending wakes the task
            now = time.monotonic()
            if self._retry and self._retry[0][0] <= now:
                webhook = heapq.heappop(self._retry)[2]
            elif self._ready:
                webhook = self._ready.popleft()
            else:
                return None, (self._retry[0][0] - now) if self._retry else None
            if webhook is self._open:
                self._open = None
            if webhook.body is None:
                # Fixed from now on: retries send the same bytes, as Meta does.
                webhook.body = render(webhook.entries)
                webhook.signature = sign(self.settings.app_secret.get_secret_value(), webhook.body)
                webhook.entries = []  # the body holds them; the log stays small
            webhook.state = "sending"
            self._in_flight += 1
            return webhook, None

    async def _attempt(self, webhook: Webhook) -> None:
        settings = self.settings
        status: int | None = None
        error: str | None = None
        retry_after: float | None = None
        assert self._client is not None and webhook.body is not None
        try:
            if settings.url is None:
                raise httpx.InvalidURL("no webhook URL configured")  # unset while queued
            response = await self._client.post(
                settings.url,
                content=webhook.body,
                headers={
                    "Content-Type": "application/json",
                    SIGNATURE_HEADER: webhook.signature or "",
                },
                timeout=settings.timeout_s,
            )
            status, retry_after = response.status_code, _retry_after(response)
        except Exception as exc:
            # Transport errors and timeouts above all; anything else too, so the webhook is
            # retried or given up instead of staying in flight for ever.
            error = type(exc).__name__
        self._settle(webhook, Attempt(time.time(), status, error), retry_after)
        if self._wake is not None and self._settled is not None:
            self._wake.set()
            self._settled.set()

    def _settle(self, webhook: Webhook, attempt: Attempt, retry_after: float | None) -> None:
        with self._lock:
            if webhook.generation != self._generation:
                return  # sent before a reset: no longer counted or shown
            self._in_flight -= 1
            webhook.attempts.append(attempt)
            settings = self.settings
            if attempt.status is not None and 200 <= attempt.status < 300:
                webhook.state = "delivered"
                self._counts["delivered"] += 1
            elif len(webhook.attempts) <= settings.retries:
                webhook.state = "retrying"
                self._counts["retried"] += 1
                delay = _backoff(settings, len(webhook.attempts), retry_after)
                heapq.heappush(self._retry, (time.monotonic() + delay, webhook.index, webhook))
            else:
                webhook.state = "given_up"
                self._counts["given_up"] += 1


def _backoff(settings: WebhookConfig, failures: int, retry_after: float | None) -> float:
    doubled: float = settings.retry_backoff_s * 2.0 ** (failures - 1)
    delay = min(doubled, settings.retry_backoff_max_s)
    # A receiver that says when to come back (429/503 Retry-After) is not called sooner.
    return max(delay, min(retry_after, RETRY_AFTER_MAX_S)) if retry_after else delay


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None  # an HTTP date: the backoff applies
