"""The producer client: atomic, idempotent enqueue of intents, and outcome lookup.

`OutboundClient` (async) and `SyncOutboundClient` share every rule; only I/O differs. Each
intent is one call of the enqueue Lua script (producers/lua/enqueue.lua); a batch is one
pipelined round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import redis
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ig_outbound.producers.connection import connect_async, connect_sync
from ig_outbound.producers.errors import (
    AccountRemovedError,
    IdempotencyConflictError,
    IntentError,
    OutboundError,
    Problem,
    UnknownAccountError,
    WindowClosedError,
)
from ig_outbound.producers.intent import MAX_INTENT_BYTES, MessageIntent
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.outcome import Outcome
from ig_outbound.producers.redis_safety import inspect_async, inspect_sync, verdict
from ig_outbound.producers.redis_util import resolve
from ig_outbound.producers.scripts import ENQUEUE
from ig_outbound.producers.settings import ClientSettings, get_client_settings
from ig_outbound.producers.validation import parse_intent
from ig_outbound.producers.wire import canonical_json

# The script producers in any language load (`ig-outbound enqueue-script` prints it).
ENQUEUE_LUA = ENQUEUE.source

WAIT_MANY_POLL_S = 0.2

log = logging.getLogger("ig_outbound.producers")

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


def _ms(moment: datetime | None) -> int:
    return 0 if moment is None else int(moment.timestamp() * 1000)


def _prepare(intent: MessageIntent, keys: Keys, settings: ClientSettings) -> _Call:
    """The script call for one valid intent; `IntentError` if its JSON is over the limit.

    Times are passed as given (0: none); the script takes "now" and the default deadline from
    Redis's clock, so a producer's clock never matters."""
    text = canonical_json(intent.model_dump(mode="json"))
    size = len(text.encode("utf-8"))
    key = intent.idempotency_key
    if size > MAX_INTENT_BYTES:
        message = f"the intent is {size} bytes of JSON; the limit is {MAX_INTENT_BYTES}"
        raise IntentError([Problem("intent", "too_large", message)], key=key)
    return _Call(
        key=key,
        keys=[keys.record(key), keys.arq_job(key), keys.queue, keys.accounts],
        args=[
            text,
            key,
            intent.account_id,
            keys.prefix,
            _ms(intent.not_before),
            _ms(intent.not_after),
            settings.default_deadline_s * 1000,
            settings.idempotency_retention_s * 1000,
            _ms(intent.window_hint),
        ],
    )


_WINDOW_MESSAGES = {
    "window_closed": "the conversation's messaging window has closed (24 h after the user's "
    "last message, 7 days for HUMAN_AGENT and private replies)",
    "window_unknown": "no webhook fact and no window_hint say when the user last wrote, and "
    "the window policy refuses unknown windows",
    "private_reply_already_sent": "the comment already has its one private reply",
}


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
    elif status == "account_removed":
        error = AccountRemovedError(f"account {detail!r} was removed from the registry")
    elif status == "window_closed":
        error = WindowClosedError(_WINDOW_MESSAGES.get(detail, detail), reason=detail)
    else:
        loc = _text(reply[2]) if len(reply) > 2 else "intent"
        error = IntentError([Problem(loc, "invalid", detail)], key=key)
    return EnqueueResult(key=key, status="refused", error=error)


def _prepare_all(
    items: Iterable[IntentInput], keys: Keys, settings: ClientSettings
) -> list[_Call | IntentError]:
    """One script call per intent, or the `IntentError` that refuses it (never raised: one
    bad intent must not sink a batch)."""
    out: list[_Call | IntentError] = []
    for item in items:
        try:
            out.append(_prepare(parse_intent(item), keys, settings))
        except IntentError as exc:
            out.append(exc)
    return out


# The fleet's counter of intents refused before the script ran (the script counts the rest).
REFUSED_INVALID = "refused:invalid"


def _invalid(parsed: list[_Call | IntentError]) -> int:
    return sum(isinstance(p, IntentError) for p in parsed)


def _raise_if_refused(result: EnqueueResult) -> EnqueueResult:
    if result.error is not None:
        raise result.error
    return result


def _merge(parsed: list[_Call | IntentError], replies: list[EnqueueResult]) -> list[EnqueueResult]:
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


class _Poll:
    """The bookkeeping of waiting for outcomes (shared by both clients): what is still
    pending, the deadline, and a poll delay that starts short (a quick answer comes quickly)
    and grows to WAIT_MANY_POLL_S (a long wait costs little)."""

    def __init__(self, keys: Sequence[str], timeout: float) -> None:
        self.asked = len(keys)
        self.pending = list(dict.fromkeys(keys))
        self.found: dict[str, Outcome] = {}
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.delay = 0.01

    def take(self, raw: Sequence[object]) -> None:
        for key, value in zip(self.pending, raw, strict=True):
            outcome = _decode_outcome(value)
            if outcome is not None:
                self.found[key] = outcome
        self.pending = [k for k in self.pending if k not in self.found]

    def left_s(self) -> float:
        return max(self.deadline - time.monotonic(), 0.001)

    def done(self) -> bool:
        return not self.pending or time.monotonic() >= self.deadline

    def next_delay(self) -> float:
        delay, self.delay = self.delay, min(self.delay * 1.5, WAIT_MANY_POLL_S)
        return min(delay, self.left_s())

    def result(self) -> dict[str, Outcome]:
        if not self.pending:
            return self.found
        if self.asked == 1:
            raise TimeoutError(f"no outcome for {self.pending[0]!r} within {self.timeout} s")
        raise TimeoutError(f"{len(self.pending)} of {self.asked} keys have no outcome yet")


class OutboundClient:
    """Async producer client. `await OutboundClient.connect()` or pass a redis client."""

    def __init__(self, client: aioredis.Redis, settings: ClientSettings | None = None) -> None:
        self.settings = settings or get_client_settings()
        self.keys = Keys(self.settings.key_prefix)
        self._redis = client
        self._script = client.register_script(ENQUEUE_LUA)
        self._safe = False

    async def _ensure_safe(self) -> None:
        """Once per client: refuse a Redis that may lose intents (producers/redis_safety.py)."""
        if not self._safe:
            note = verdict(
                await inspect_async(self._redis),
                allow_data_loss=self.settings.redis_allow_data_loss,
            )
            if note:
                log.warning(note)
            self._safe = True

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
        try:
            call = _prepare(parse_intent(intent), self.keys, self.settings)
        except IntentError:
            with contextlib.suppress(RedisError):  # the count is best effort; the refusal is not
                await resolve(self._redis.hincrby(self.keys.counters, REFUSED_INVALID, 1))
            raise
        await self._ensure_safe()
        reply = await self._script(keys=call.keys, args=call.args)
        return _raise_if_refused(_interpret(call.key, reply))

    async def enqueue_many(self, intents: Iterable[IntentInput]) -> list[EnqueueResult]:
        """Enqueue a batch in one round trip; one result per input, in order, never raising
        for a single bad intent (its result is `refused` with the error)."""
        parsed = _prepare_all(intents, self.keys, self.settings)
        calls = [p for p in parsed if isinstance(p, _Call)]
        replies: list[EnqueueResult] = []
        if calls:
            await self._ensure_safe()
        if calls:
            async with self._redis.pipeline(transaction=False) as pipe:
                for call in calls:
                    await self._script(keys=call.keys, args=call.args, client=pipe)
                if _invalid(parsed):
                    pipe.hincrby(self.keys.counters, REFUSED_INVALID, _invalid(parsed))
                raw = await pipe.execute()
            replies = [_interpret(c.key, r) for c, r in zip(calls, raw, strict=False)]
        elif _invalid(parsed):
            with contextlib.suppress(RedisError):  # the count is best effort; the refusal is not
                await resolve(
                    self._redis.hincrby(self.keys.counters, REFUSED_INVALID, _invalid(parsed))
                )
        return _merge(parsed, replies)

    async def outcome(self, key: str) -> Outcome | None:
        """The terminal outcome of the intent with this key, if it has one yet."""
        return _decode_outcome(await resolve(self._redis.hget(self.keys.record(key), "outcome")))

    async def state(self, key: str) -> str | None:
        """The journal state of an intent (queued, sending, sent, ...), or None if unknown."""
        raw = await resolve(self._redis.hget(self.keys.record(key), "state"))
        return None if raw is None else _text(raw)

    async def wait(self, key: str, timeout: float = 30.0) -> Outcome:  # noqa: ASYNC109
        """Wait for the outcome of `key`; raise TimeoutError after `timeout` seconds, also
        when Redis stops answering meanwhile.

        A plain timeout argument (not asyncio.timeout) keeps the sync and async twins alike."""
        return (await self.wait_many([key], timeout))[key]

    async def wait_many(self, keys: Sequence[str], timeout: float = 60.0) -> dict[str, Outcome]:  # noqa: ASYNC109
        """Wait for the outcomes of many keys with one pipelined poll per interval (not one
        poller per key); raise TimeoutError naming how many are missing."""
        poll = _Poll(keys, timeout)
        while not poll.done():
            try:
                async with asyncio.timeout(poll.left_s()):
                    poll.take(await self._outcomes(poll.pending))
            except (TimeoutError, RedisError):
                pass  # Redis frozen or away: no news; the deadline decides
            if poll.done():
                break
            await asyncio.sleep(poll.next_delay())
        return poll.result()

    async def _outcomes(self, keys: Sequence[str]) -> list[object]:
        return await self.outcomes_raw(keys)

    async def outcomes_raw(self, keys: Sequence[str]) -> list[object]:
        """The stored outcome JSON of each key (None: none yet), in one pipelined read."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hget(self.keys.record(key), "outcome")
            return list(await pipe.execute())

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
        self._safe = False

    def _ensure_safe(self) -> None:
        if not self._safe:
            note = verdict(
                inspect_sync(self._redis), allow_data_loss=self.settings.redis_allow_data_loss
            )
            if note:
                log.warning(note)
            self._safe = True

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
        try:
            call = _prepare(parse_intent(intent), self.keys, self.settings)
        except IntentError:
            with contextlib.suppress(RedisError):  # the count is best effort; the refusal is not
                self._redis.hincrby(self.keys.counters, REFUSED_INVALID, 1)
            raise
        self._ensure_safe()
        reply = self._script(keys=call.keys, args=call.args)
        return _raise_if_refused(_interpret(call.key, reply))

    def enqueue_many(self, intents: Iterable[IntentInput]) -> list[EnqueueResult]:
        parsed = _prepare_all(intents, self.keys, self.settings)
        calls = [p for p in parsed if isinstance(p, _Call)]
        replies: list[EnqueueResult] = []
        if calls:
            self._ensure_safe()
        if calls:
            with self._redis.pipeline(transaction=False) as pipe:
                for call in calls:
                    self._script(keys=call.keys, args=call.args, client=pipe)
                if _invalid(parsed):
                    pipe.hincrby(self.keys.counters, REFUSED_INVALID, _invalid(parsed))
                raw = pipe.execute()
            replies = [_interpret(c.key, r) for c, r in zip(calls, raw, strict=False)]
        elif _invalid(parsed):
            with contextlib.suppress(RedisError):  # the count is best effort; the refusal is not
                self._redis.hincrby(self.keys.counters, REFUSED_INVALID, _invalid(parsed))
        return _merge(parsed, replies)

    def outcome(self, key: str) -> Outcome | None:
        raw: object = self._redis.hget(self.keys.record(key), "outcome")
        return _decode_outcome(raw)

    def state(self, key: str) -> str | None:
        raw: object = self._redis.hget(self.keys.record(key), "state")
        return None if raw is None else _text(raw)

    def wait(self, key: str, timeout: float = 30.0) -> Outcome:
        """As `OutboundClient.wait`. A frozen Redis holds one poll for at most the socket
        timeout (`IG_OUTBOUND_REDIS_SOCKET_TIMEOUT_S`), so this returns within `timeout` plus
        that."""
        return self.wait_many([key], timeout)[key]

    def wait_many(self, keys: Sequence[str], timeout: float = 60.0) -> dict[str, Outcome]:
        """As `OutboundClient.wait_many` (see `wait` for a frozen Redis)."""
        poll = _Poll(keys, timeout)
        while not poll.done():
            # Redis frozen or away: no news; the deadline decides.
            with contextlib.suppress(RedisError):
                poll.take(self.outcomes_raw(poll.pending))
            if poll.done():
                break
            time.sleep(poll.next_delay())
        return poll.result()

    def outcomes_raw(self, keys: Sequence[str]) -> list[object]:
        """As `OutboundClient.outcomes_raw`."""
        with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hget(self.keys.record(key), "outcome")
            return list(pipe.execute())

    def register_accounts(self, account_ids: Iterable[str]) -> None:
        """As `OutboundClient.register_accounts`."""
        ids = list(account_ids)
        if ids:
            self._redis.sadd(self.keys.accounts, *ids)
