"""The producer client: atomic, idempotent enqueue of intents, and outcome lookup.

`OutboundClient` (async) and `SyncOutboundClient` share every rule; only I/O differs. Each
intent is one call of the enqueue Lua script (producers/lua/enqueue.lua); a batch is one
pipelined round trip.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import redis
import redis.asyncio as aioredis

from ig_outbound.producers.connection import connect_async, connect_sync
from ig_outbound.producers.errors import (
    IdempotencyConflictError,
    IntentError,
    OutboundError,
    Problem,
    UnknownAccountError,
)
from ig_outbound.producers.intent import MessageIntent
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.outcome import Outcome
from ig_outbound.producers.redis_util import resolve
from ig_outbound.producers.scripts import ENQUEUE
from ig_outbound.producers.settings import ClientSettings, get_client_settings
from ig_outbound.producers.validation import parse_intent
from ig_outbound.producers.wire import SEND_JOB_NAME, canonical_json

# The script producers in any language load (`ig-outbound enqueue-script` prints it).
ENQUEUE_LUA = ENQUEUE.source
# The ARQ job key outlives the deadline by this much, so the worker can still report `expired`.
JOB_TTL_MARGIN_MS = 3_600_000

WAIT_MANY_POLL_S = 0.2

IntentInput = MessageIntent | Mapping[str, Any] | str | bytes


@dataclass(frozen=True)
class EnqueueResult:
    """What happened to one intent at enqueue.

    `queued`: accepted now. `duplicate`: the key was accepted before with the same content;
    nothing new was queued (`state` tells where the first one is). `refused`: see `error`.
    """

    key: str | None
    status: Literal["queued", "duplicate", "refused"]
    job_id: str | None = None
    state: str | None = None
    error: OutboundError | None = None

    @property
    def accepted(self) -> bool:
        return self.status != "refused"


@dataclass(frozen=True)
class _Call:
    key: str
    keys: list[str]
    args: list[str | int]


def _prepare(intent: MessageIntent, keys: Keys, settings: ClientSettings) -> _Call:
    now_ms = int(time.time() * 1000)
    run_at_ms = int(intent.not_before.timestamp() * 1000) if intent.not_before else 0
    deadline = intent.deadline(settings.default_deadline_s, datetime.now(UTC))
    job_ttl_ms = max(int(deadline.timestamp() * 1000) - now_ms, 0) + JOB_TTL_MARGIN_MS
    key = intent.idempotency_key
    return _Call(
        key=key,
        keys=[keys.record(key), keys.arq_job(key), keys.queue, keys.accounts],
        args=[
            canonical_json(intent.model_dump(mode="json")),
            key,
            intent.account_id,
            run_at_ms,
            settings.idempotency_retention_s * 1000,
            job_ttl_ms,
            keys.job_id(key),
            SEND_JOB_NAME,
            keys.prefix,
            int(deadline.timestamp() * 1000),
        ],
    )


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _interpret(key: str, reply: Sequence[object]) -> EnqueueResult:
    status, detail = _text(reply[0]), _text(reply[1])
    if status == "queued":
        return EnqueueResult(key=key, status="queued", job_id=detail)
    if status == "duplicate":
        return EnqueueResult(key=key, status="duplicate", state=detail)
    error: OutboundError
    if status == "conflict":
        error = IdempotencyConflictError(
            f"idempotency key {key!r} was used before with different content"
        )
    elif status == "unknown_account":
        error = UnknownAccountError(f"no worker holds a token for account {detail!r}")
    else:
        error = IntentError([Problem("intent", "invalid", detail)], key=key)
    return EnqueueResult(key=key, status="refused", error=error)


def _validate_all(items: Iterable[IntentInput]) -> list[MessageIntent | IntentError]:
    out: list[MessageIntent | IntentError] = []
    for item in items:
        try:
            out.append(parse_intent(item))
        except IntentError as exc:
            out.append(exc)
    return out


def _raise_if_refused(result: EnqueueResult) -> EnqueueResult:
    if result.error is not None:
        raise result.error
    return result


def _merge(
    parsed: list[MessageIntent | IntentError], replies: list[EnqueueResult]
) -> list[EnqueueResult]:
    it = iter(replies)
    return [
        EnqueueResult(key=p.key, status="refused", error=p)
        if isinstance(p, IntentError)
        else next(it)
        for p in parsed
    ]


def _decode_outcome(raw: object) -> Outcome | None:
    if raw is None:
        return None
    return Outcome.model_validate_json(raw if isinstance(raw, bytes | str) else str(raw))


class OutboundClient:
    """Async producer client. `await OutboundClient.connect()` or pass a redis client."""

    def __init__(self, client: aioredis.Redis, settings: ClientSettings | None = None) -> None:
        self.settings = settings or get_client_settings()
        self.keys = Keys(self.settings.key_prefix)
        self._redis = client
        self._script = client.register_script(ENQUEUE_LUA)

    @classmethod
    def connect(
        cls, url: str | None = None, settings: ClientSettings | None = None
    ) -> OutboundClient:
        settings = settings or get_client_settings()
        return cls(connect_async(settings, url), settings)

    async def aclose(self) -> None:
        await self._redis.aclose()

    async def __aenter__(self) -> OutboundClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def enqueue(self, intent: IntentInput) -> EnqueueResult:
        """Enqueue one intent; raise an `OutboundError` if it is refused."""
        call = _prepare(parse_intent(intent), self.keys, self.settings)
        reply = await self._script(keys=call.keys, args=call.args)
        return _raise_if_refused(_interpret(call.key, reply))

    async def enqueue_many(self, intents: Iterable[IntentInput]) -> list[EnqueueResult]:
        """Enqueue a batch in one round trip; one result per input, in order, never raising
        for a single bad intent (its result is `refused` with the error)."""
        parsed = _validate_all(intents)
        calls = [
            _prepare(p, self.keys, self.settings) for p in parsed if isinstance(p, MessageIntent)
        ]
        replies: list[EnqueueResult] = []
        if calls:
            async with self._redis.pipeline(transaction=False) as pipe:
                for call in calls:
                    await self._script(keys=call.keys, args=call.args, client=pipe)
                raw = await pipe.execute()
            replies = [_interpret(c.key, r) for c, r in zip(calls, raw, strict=True)]
        return _merge(parsed, replies)

    async def outcome(self, key: str) -> Outcome | None:
        """The terminal outcome of the intent with this key, if it has one yet."""
        return _decode_outcome(await resolve(self._redis.hget(self.keys.record(key), "outcome")))

    async def state(self, key: str) -> str | None:
        """The journal state of an intent (queued, sending, sent, ...), or None if unknown."""
        raw = await resolve(self._redis.hget(self.keys.record(key), "state"))
        return None if raw is None else _text(raw)

    async def wait(self, key: str, timeout: float = 30.0) -> Outcome:  # noqa: ASYNC109
        """Wait for the outcome of `key`; raise TimeoutError after `timeout` seconds.

        A plain timeout argument (not asyncio.timeout) keeps the sync and async twins alike."""
        deadline = time.monotonic() + timeout
        delay = 0.01
        while True:
            found = await self.outcome(key)
            if found is not None:
                return found
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no outcome for {key!r} within {timeout} s")
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.25)

    async def wait_many(self, keys: Sequence[str], timeout: float = 60.0) -> dict[str, Outcome]:  # noqa: ASYNC109
        """Wait for the outcomes of many keys with one pipelined poll per interval (not one
        poller per key); raise TimeoutError naming how many are missing."""
        pending = list(dict.fromkeys(keys))
        found: dict[str, Outcome] = {}
        deadline = time.monotonic() + timeout
        while True:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in pending:
                    pipe.hget(self.keys.record(key), "outcome")
                raw = await pipe.execute()
            for key, value in zip(pending, raw, strict=True):
                outcome = _decode_outcome(value)
                if outcome is not None:
                    found[key] = outcome
            pending = [k for k in pending if k not in found]
            if not pending:
                return found
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{len(pending)} of {len(keys)} keys have no outcome yet")
            await asyncio.sleep(WAIT_MANY_POLL_S)

    async def register_accounts(self, account_ids: Iterable[str]) -> None:
        """Mark accounts as served (the worker does this for the accounts it has tokens for)."""
        ids = list(account_ids)
        if ids:
            await resolve(self._redis.sadd(self.keys.accounts, *ids))


class SyncOutboundClient:
    """Blocking twin of `OutboundClient`, for producers without an event loop."""

    def __init__(self, client: redis.Redis, settings: ClientSettings | None = None) -> None:
        self.settings = settings or get_client_settings()
        self.keys = Keys(self.settings.key_prefix)
        self._redis = client
        self._script = client.register_script(ENQUEUE_LUA)

    @classmethod
    def connect(
        cls, url: str | None = None, settings: ClientSettings | None = None
    ) -> SyncOutboundClient:
        settings = settings or get_client_settings()
        return cls(connect_sync(settings, url), settings)

    def close(self) -> None:
        self._redis.close()

    def __enter__(self) -> SyncOutboundClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def enqueue(self, intent: IntentInput) -> EnqueueResult:
        call = _prepare(parse_intent(intent), self.keys, self.settings)
        reply = self._script(keys=call.keys, args=call.args)
        return _raise_if_refused(_interpret(call.key, reply))

    def enqueue_many(self, intents: Iterable[IntentInput]) -> list[EnqueueResult]:
        parsed = _validate_all(intents)
        calls = [
            _prepare(p, self.keys, self.settings) for p in parsed if isinstance(p, MessageIntent)
        ]
        replies: list[EnqueueResult] = []
        if calls:
            with self._redis.pipeline(transaction=False) as pipe:
                for call in calls:
                    self._script(keys=call.keys, args=call.args, client=pipe)
                raw = pipe.execute()
            replies = [_interpret(c.key, r) for c, r in zip(calls, raw, strict=True)]
        return _merge(parsed, replies)

    def outcome(self, key: str) -> Outcome | None:
        raw: object = self._redis.hget(self.keys.record(key), "outcome")
        return _decode_outcome(raw)

    def state(self, key: str) -> str | None:
        raw: object = self._redis.hget(self.keys.record(key), "state")
        return None if raw is None else _text(raw)

    def wait(self, key: str, timeout: float = 30.0) -> Outcome:
        deadline = time.monotonic() + timeout
        delay = 0.01
        while True:
            found = self.outcome(key)
            if found is not None:
                return found
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no outcome for {key!r} within {timeout} s")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)
