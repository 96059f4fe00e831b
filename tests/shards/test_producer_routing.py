"""The sharded producer clients put every intent, batch and account on its account's shard,
and a shard that is down refuses only its own intents, with a machine-readable error."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from ig_outbound.harness.intents import text_intent
from ig_outbound.harness.processes import RedisServer, free_port
from ig_outbound.producers.enqueue import OutboundClient, SyncOutboundClient
from ig_outbound.producers.errors import IntentError, ShardUnavailableError
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.settings import ClientSettings
from ig_outbound.producers.sharded import ShardedOutboundClient, SyncShardedOutboundClient
from tests.shards.conftest import PREFIX, accounts_on, now_hint, raw

KEYS = Keys(PREFIX)
RECIPIENT = "1254477777700001"


def _intent(key: str, account: str) -> dict[str, Any]:
    return text_intent(key, account, RECIPIENT, "hello", window_hint=now_hint())


async def test_each_intent_and_each_batch_goes_to_its_accounts_shard(
    sharded: ClientSettings, two_redis: tuple[RedisServer, RedisServer]
) -> None:
    zero, one = accounts_on(0, 2), accounts_on(1, 2)
    async with ShardedOutboundClient.connect(sharded) as client:
        await client.register_accounts(zero + one)
        single = await client.enqueue(_intent("single-1", one[0]))
        batch = [_intent(f"b-{a}", a) for a in (zero[0], one[1], zero[1])]
        batch.insert(1, {"idempotency_key": "bad", "account_id": "x"})
        results = await client.enqueue_many(batch)
    assert single.status == "queued"
    assert [r.status for r in results] == ["queued", "refused", "queued", "queued"]
    assert isinstance(results[1].error, IntentError)
    assert [r.key for r in results] == [f"b-{zero[0]}", "bad", f"b-{one[1]}", f"b-{zero[1]}"]
    r0, r1 = raw(two_redis[0]), raw(two_redis[1])
    assert r0.smembers(KEYS.accounts) == set(zero)
    assert r1.smembers(KEYS.accounts) == set(one)
    assert {r0.hget(KEYS.record(k), "account") for k in (f"b-{zero[0]}", f"b-{zero[1]}")} == set(
        zero
    )
    assert r1.exists(KEYS.record("single-1"), KEYS.record(f"b-{one[1]}")) == 2
    assert r0.exists(KEYS.record("single-1"), KEYS.record(f"b-{one[1]}")) == 0
    assert r0.zcard(KEYS.queue) == 2 and r1.zcard(KEYS.queue) == 2
    # The refusal before routing is counted once, on shard 0.
    assert r0.hget(KEYS.counters, "refused:invalid") == "1"
    assert r1.hget(KEYS.counters, "refused:invalid") is None


def test_the_blocking_twin_routes_alike_and_finds_outcomes_on_any_shard(
    sharded: ClientSettings, two_redis: tuple[RedisServer, RedisServer]
) -> None:
    zero, one = accounts_on(0, 1), accounts_on(1, 1)
    with SyncShardedOutboundClient.connect(sharded) as client:
        client.register_accounts(zero + one)
        results = client.enqueue_many([_intent("s-0", zero[0]), _intent("s-1", one[0])])
        assert [r.status for r in results] == ["queued", "queued"]
        assert client.state("s-1") == "queued"
        assert client.state("s-1", account_id=zero[0]) is None  # asked only shard 0
        outcome = '{"key": "s-1", "status": "sent", "finished_at": "2026-01-01T00:00:00Z"}'
        raw(two_redis[1]).hset(KEYS.record("s-1"), "outcome", outcome)
        raw(two_redis[0]).hset(KEYS.record("s-0"), "outcome", outcome.replace("s-1", "s-0"))
        found = client.wait_many(["s-0", "s-1"], timeout=5)
    assert {k: o.status for k, o in found.items()} == {"s-0": "sent", "s-1": "sent"}


def _down_shard_settings(up: RedisServer, *, password: str) -> ClientSettings:
    dead = f"redis://:{password}@127.0.0.1:{free_port()}/0"
    return ClientSettings(
        shards=[up.url, dead], key_prefix=PREFIX, redis_allow_data_loss=True,
        redis_connect_timeout_s=0.3,
    )  # fmt: skip


async def test_a_shard_that_is_down_refuses_only_its_own_intents(
    sharded: ClientSettings, two_redis: tuple[RedisServer, RedisServer]
) -> None:
    settings = _down_shard_settings(two_redis[0], password="s3cret-pw")
    zero, one = accounts_on(0, 1), accounts_on(1, 1)
    raw(two_redis[0]).sadd(KEYS.accounts, *zero)
    async with ShardedOutboundClient.connect(settings) as client:
        results = await client.enqueue_many([_intent("d-1", one[0]), _intent("d-0", zero[0])])
        # Shard 0 down too: an invalid intent is still refused as invalid, not as unavailable.
        async with ShardedOutboundClient.connect(
            settings.model_copy(update={"shards": list(reversed(settings.shards))})
        ) as flipped:
            bad = await flipped.enqueue_many([{"idempotency_key": "x", "account_id": "no"}])
        assert bad[0].error is not None and bad[0].error.code == "invalid_intent"
        with pytest.raises(ShardUnavailableError) as caught:
            await client.enqueue(_intent("d-2", one[0]))
        with pytest.raises(TimeoutError):  # waiting still ends: the live shard has no news
            await client.wait("d-0", timeout=0.5)
    assert [r.status for r in results] == ["refused", "queued"]
    refusal = results[0].error
    assert isinstance(refusal, ShardUnavailableError) and results[0].key == "d-1"
    shown = refusal.as_dict()
    assert shown["error"] == "shard_unavailable" and shown["shard"] == 1
    assert "s3cret-pw" not in str(shown) and "s3cret-pw" not in str(caught.value.as_dict())
    assert caught.value.shard == 1
    assert raw(two_redis[0]).exists(KEYS.record("d-0")) == 1


def test_the_blocking_twin_refuses_a_down_shard_alike(
    sharded: ClientSettings, two_redis: tuple[RedisServer, RedisServer]
) -> None:
    settings = _down_shard_settings(two_redis[0], password="pw")
    zero, one = accounts_on(0, 1), accounts_on(1, 1)
    raw(two_redis[0]).sadd(KEYS.accounts, *zero)
    with SyncShardedOutboundClient.connect(settings) as client:
        results = client.enqueue_many([_intent("e-0", zero[0]), _intent("e-1", one[0])])
    assert [r.status for r in results] == ["queued", "refused"]
    assert results[1].error is not None and results[1].error.code == "shard_unavailable"


def test_without_shards_the_sharded_client_is_the_one_redis_url(
    two_redis: tuple[RedisServer, RedisServer],
) -> None:
    settings = ClientSettings(redis_url=two_redis[0].url, key_prefix=PREFIX)
    with SyncShardedOutboundClient.connect(settings) as client:
        assert len(client.clients) == 1
        assert client.shards.urls == (two_redis[0].url,)


_LIFECYCLE = {"aclose", "close", "__aenter__", "__aexit__", "__enter__", "__exit__"}


def _public(cls: Any) -> set[str]:
    return {
        name
        for name, _ in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_") and name not in _LIFECYCLE
    }


def test_the_sharded_clients_offer_every_method_of_the_plain_ones() -> None:
    extra = {"client_for", "outcomes_raw"}
    assert _public(OutboundClient) - {"outcomes_raw"} <= _public(ShardedOutboundClient)
    assert _public(SyncOutboundClient) - {"outcomes_raw"} <= _public(SyncShardedOutboundClient)
    assert _public(ShardedOutboundClient) - _public(OutboundClient) <= extra
    for name in _public(ShardedOutboundClient) - {"connect", "client_for"}:
        assert inspect.iscoroutinefunction(getattr(ShardedOutboundClient, name)), name
