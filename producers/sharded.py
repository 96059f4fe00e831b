"""Producer clients for a sharded deployment: each intent goes to its account's Redis.

`ShardedOutboundClient` (async) and `SyncShardedOutboundClient` have the API of
`OutboundClient` and `SyncOutboundClient` (producers/enqueue.py) and hold one of those per
shard (`ClientSettings.shards`, or the one `redis_url`). The shard rule is
`producers/shards.py`. A batch is split per shard: one pipeline per shard (concurrently in
the async client), results in input order.

A shard that does not answer refuses its own intents with `ShardUnavailableError`
(`shard_unavailable`, naming the shard and its URL without the password); the other shards'
intents are queued all the same; enqueue is idempotent, so a caller sends the refused ones
again. With one shard (no `shards` listed) Redis's own errors propagate, exactly as from the
plain clients. An intent that does not validate is refused before any routing (its count goes to
shard 0's `refused:invalid`).

Idempotency keys are claimed on the account's shard: the same key used for two accounts on
two shards is not seen as a conflict (keys should name their account; docs/scaling.md).
Outcome lookups by key ask every shard (one pipelined read each) unless the account is given.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from typing import Any

from redis.exceptions import RedisError

from ig_outbound.producers.connection import connect_async, connect_sync, redis_params
from ig_outbound.producers.enqueue import (
    WAIT_MANY_POLL_S,
    EnqueueResult,
    IntentInput,
    OutboundClient,
    SyncOutboundClient,
)
from ig_outbound.producers.errors import IntentError, ShardUnavailableError
from ig_outbound.producers.outcome import Outcome
from ig_outbound.producers.settings import ClientSettings, get_client_settings
from ig_outbound.producers.shards import ShardMap, shard_settings
from ig_outbound.producers.validation import parse_intent

# What a shard that is down or frozen raises (redis-py wraps most in RedisError).
_DOWN = (RedisError, OSError)
# What enqueue turns into a refusal of one shard's intents: nothing with one shard.
_NOTHING: tuple[type[BaseException], ...] = ()


def _unavailable(settings: ClientSettings, shard: int, exc: BaseException) -> ShardUnavailableError:
    display = redis_params(shard_settings(settings, shard)).display
    return ShardUnavailableError(
        f"shard {shard} ({display}) did not answer: its intents were not queued; enqueue "
        "them again (idempotent)",
        shard=shard,
        redis=display,
        detail=type(exc).__name__,
    )


# The group of intents refused before routing (they have no shard).
INVALID = -1


def _route(
    items: Iterable[IntentInput], shards: ShardMap
) -> dict[int, list[tuple[int, IntentInput]]]:
    """Input positions and intents per shard; the invalid ones in a group of their own
    (`INVALID`), which shard 0's client refuses and counts (best effort: never a Redis
    error), so a shard that is down never hides why an intent was refused."""
    groups: dict[int, list[tuple[int, IntentInput]]] = {}
    for position, item in enumerate(items):
        try:
            parsed = parse_intent(item)
        except IntentError:
            groups.setdefault(INVALID, []).append((position, item))
            continue
        groups.setdefault(shards.index(parsed.account_id), []).append((position, parsed))
    return groups


def _refusals(count: int, error: ShardUnavailableError) -> list[EnqueueResult]:
    return [EnqueueResult(key=None, status="refused", error=error)] * count


def _keyed(
    results: list[EnqueueResult], group: list[tuple[int, IntentInput]]
) -> list[EnqueueResult]:
    """Refusals of a whole shard carry each intent's key."""
    out = []
    for result, (_, intent) in zip(results, group, strict=True):
        key = getattr(intent, "idempotency_key", None)
        out.append(result if result.key is not None else EnqueueResult(
            key=key, status=result.status, error=result.error))  # fmt: skip
    return out


def _first_found(replies: Sequence[Sequence[object]]) -> list[object]:
    """Per key, the first shard's answer that is not None."""
    merged: list[object] = [None] * (len(replies[0]) if replies else 0)
    for reply in replies:
        for i, value in enumerate(reply):
            if merged[i] is None:
                merged[i] = value
    return merged


class _Pending:
    """Waiting for outcomes across shards (the sharded twins' bookkeeping)."""

    def __init__(self, keys: Sequence[str], timeout: float) -> None:
        self.asked = len(keys)
        self.pending = list(dict.fromkeys(keys))
        self.found: dict[str, Outcome] = {}
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.delay = 0.01

    def take(self, found: dict[str, Outcome]) -> None:
        self.found.update(found)
        self.pending = [k for k in self.pending if k not in self.found]

    def done(self) -> bool:
        return not self.pending or time.monotonic() >= self.deadline

    def next_delay(self) -> float:
        delay, self.delay = self.delay, min(self.delay * 1.5, WAIT_MANY_POLL_S)
        return max(min(delay, self.deadline - time.monotonic()), 0.001)

    def result(self) -> dict[str, Outcome]:
        if not self.pending:
            return self.found
        if self.asked == 1:
            raise TimeoutError(f"no outcome for {self.pending[0]!r} within {self.timeout} s")
        raise TimeoutError(f"{len(self.pending)} of {self.asked} keys have no outcome yet")


class ShardedOutboundClient:
    """Async producer client over every shard (see the module docstring)."""

    def __init__(self, clients: Sequence[OutboundClient], settings: ClientSettings | None = None):
        self.settings = settings or get_client_settings()
        self.shards = ShardMap.from_settings(self.settings)
        if len(clients) != len(self.shards):
            raise ValueError(f"{len(clients)} clients for {len(self.shards)} shards")
        self.clients = list(clients)
        self._down = _DOWN if len(self.shards) > 1 else _NOTHING

    @classmethod
    def connect(cls, settings: ClientSettings | None = None) -> ShardedOutboundClient:
        settings = settings or get_client_settings()
        urls = ShardMap.from_settings(settings).urls
        return cls(
            [OutboundClient(connect_async(settings, url), settings) for url in urls], settings
        )

    def client_for(self, account_id: str) -> OutboundClient:
        """The client of the account's shard."""
        return self.clients[self.shards.index(account_id)]

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()

    async def __aenter__(self) -> ShardedOutboundClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def enqueue(self, intent: IntentInput) -> EnqueueResult:
        """Enqueue one intent on its account's shard; raise an `OutboundError` if refused
        (`ShardUnavailableError` when that shard does not answer)."""
        try:
            parsed = parse_intent(intent)
        except IntentError:
            return await self.clients[0].enqueue(intent)  # refuses and counts it
        shard = self.shards.index(parsed.account_id)
        try:
            return await self.clients[shard].enqueue(parsed)
        except self._down as exc:
            raise _unavailable(self.settings, shard, exc) from exc

    async def enqueue_many(self, intents: Iterable[IntentInput]) -> list[EnqueueResult]:
        """One pipeline per shard, concurrently; one result per input, in order."""
        groups = _route(intents, self.shards)
        order = sorted(groups)
        answers = await asyncio.gather(*(self._shard_batch(s, groups[s]) for s in order))
        results: dict[int, EnqueueResult] = {}
        for shard, answer in zip(order, answers, strict=True):
            for (position, _), result in zip(groups[shard], answer, strict=True):
                results[position] = result
        return [results[p] for p in range(len(results))]

    async def _shard_batch(
        self, shard: int, group: list[tuple[int, IntentInput]]
    ) -> list[EnqueueResult]:
        shard = max(shard, 0)  # INVALID: shard 0's client refuses and counts them
        try:
            return await self.clients[shard].enqueue_many([i for _, i in group])
        except self._down as exc:
            return _keyed(_refusals(len(group), _unavailable(self.settings, shard, exc)), group)

    def _asked(self, account_id: str | None) -> list[OutboundClient]:
        return self.clients if account_id is None else [self.client_for(account_id)]

    async def outcome(self, key: str, account_id: str | None = None) -> Outcome | None:
        """The outcome of `key` (on the account's shard if given, else on any)."""
        for client in self._asked(account_id):
            found = await client.outcome(key)
            if found is not None:
                return found
        return None

    async def state(self, key: str, account_id: str | None = None) -> str | None:
        for client in self._asked(account_id):
            found = await client.state(key)
            if found is not None:
                return found
        return None

    async def wait(self, key: str, timeout: float = 30.0) -> Outcome:  # noqa: ASYNC109
        return (await self.wait_many([key], timeout))[key]

    async def wait_many(self, keys: Sequence[str], timeout: float = 60.0) -> dict[str, Outcome]:  # noqa: ASYNC109
        """As `OutboundClient.wait_many`, asking every shard each poll (a shard that does not
        answer is no news: the deadline decides)."""
        poll = _Pending(keys, timeout)
        while not poll.done():
            replies = await asyncio.gather(
                *(self._shard_outcomes(c, poll.pending) for c in self.clients)
            )
            poll.take(_decoded(poll.pending, _first_found(replies)))
            if poll.done():
                break
            await asyncio.sleep(poll.next_delay())
        return poll.result()

    async def _shard_outcomes(self, client: OutboundClient, keys: list[str]) -> list[object]:
        try:
            async with asyncio.timeout(max(self.settings.redis_socket_timeout_s, 0.1)):
                return await client.outcomes_raw(keys)
        except (TimeoutError, *_DOWN):
            return [None] * len(keys)

    async def register_accounts(self, account_ids: Iterable[str]) -> None:
        by_shard: dict[int, list[str]] = {}
        for account in account_ids:
            by_shard.setdefault(self.shards.index(account), []).append(account)
        for shard, ids in sorted(by_shard.items()):
            await self.clients[shard].register_accounts(ids)


def _decoded(keys: list[str], raw: list[object]) -> dict[str, Outcome]:
    out: dict[str, Outcome] = {}
    for key, value in zip(keys, raw, strict=True):
        if value is not None:
            text: Any = value if isinstance(value, bytes | str) else str(value)
            out[key] = Outcome.model_validate_json(text)
    return out


class SyncShardedOutboundClient:
    """Blocking twin of `ShardedOutboundClient` (shards are asked one after the other)."""

    def __init__(
        self, clients: Sequence[SyncOutboundClient], settings: ClientSettings | None = None
    ):
        self.settings = settings or get_client_settings()
        self.shards = ShardMap.from_settings(self.settings)
        if len(clients) != len(self.shards):
            raise ValueError(f"{len(clients)} clients for {len(self.shards)} shards")
        self.clients = list(clients)
        self._down = _DOWN if len(self.shards) > 1 else _NOTHING

    @classmethod
    def connect(cls, settings: ClientSettings | None = None) -> SyncShardedOutboundClient:
        settings = settings or get_client_settings()
        urls = ShardMap.from_settings(settings).urls
        return cls(
            [SyncOutboundClient(connect_sync(settings, url), settings) for url in urls], settings
        )

    def client_for(self, account_id: str) -> SyncOutboundClient:
        return self.clients[self.shards.index(account_id)]

    def close(self) -> None:
        for client in self.clients:
            client.close()

    def __enter__(self) -> SyncShardedOutboundClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def enqueue(self, intent: IntentInput) -> EnqueueResult:
        try:
            parsed = parse_intent(intent)
        except IntentError:
            return self.clients[0].enqueue(intent)
        shard = self.shards.index(parsed.account_id)
        try:
            return self.clients[shard].enqueue(parsed)
        except self._down as exc:
            raise _unavailable(self.settings, shard, exc) from exc

    def enqueue_many(self, intents: Iterable[IntentInput]) -> list[EnqueueResult]:
        results: dict[int, EnqueueResult] = {}
        for key, group in sorted(_route(intents, self.shards).items()):
            shard = max(key, 0)  # INVALID: shard 0's client refuses and counts them
            try:
                answer = self.clients[shard].enqueue_many([i for _, i in group])
            except self._down as exc:
                error = _unavailable(self.settings, shard, exc)
                answer = _keyed(_refusals(len(group), error), group)
            for (position, _), result in zip(group, answer, strict=True):
                results[position] = result
        return [results[p] for p in range(len(results))]

    def _asked(self, account_id: str | None) -> list[SyncOutboundClient]:
        return self.clients if account_id is None else [self.client_for(account_id)]

    def outcome(self, key: str, account_id: str | None = None) -> Outcome | None:
        for client in self._asked(account_id):
            found = client.outcome(key)
            if found is not None:
                return found
        return None

    def state(self, key: str, account_id: str | None = None) -> str | None:
        for client in self._asked(account_id):
            found = client.state(key)
            if found is not None:
                return found
        return None

    def wait(self, key: str, timeout: float = 30.0) -> Outcome:
        return self.wait_many([key], timeout)[key]

    def wait_many(self, keys: Sequence[str], timeout: float = 60.0) -> dict[str, Outcome]:
        poll = _Pending(keys, timeout)
        while not poll.done():
            replies = [self._shard_outcomes(c, poll.pending) for c in self.clients]
            poll.take(_decoded(poll.pending, _first_found(replies)))
            if poll.done():
                break
            time.sleep(poll.next_delay())
        return poll.result()

    @staticmethod
    def _shard_outcomes(client: SyncOutboundClient, keys: list[str]) -> list[object]:
        try:
            return client.outcomes_raw(keys)
        except _DOWN:
            return [None] * len(keys)

    def register_accounts(self, account_ids: Iterable[str]) -> None:
        by_shard: dict[int, list[str]] = {}
        for account in account_ids:
            by_shard.setdefault(self.shards.index(account), []).append(account)
        for shard, ids in sorted(by_shard.items()):
            self.clients[shard].register_accounts(ids)
