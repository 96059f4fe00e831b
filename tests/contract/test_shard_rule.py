"""The shard rule (producers/shards.py) against fixed vectors: producers in other languages
reproduce it from docs/scaling.md, so it must never change silently."""

from __future__ import annotations

import pytest

from ig_outbound.producers.errors import ShardConfigError
from ig_outbound.producers.settings import ClientSettings
from ig_outbound.producers.shards import (
    ShardMap,
    account_key,
    jump_hash,
    shard_of,
    shard_settings,
)

# The paper's reference implementation's published vectors (also go-jump's and others').
JUMP_VECTORS = [
    (1, 1, 0),
    (42, 57, 43),
    (0xDEAD10CC, 1, 0),
    (0xDEAD10CC, 666, 361),
    (256, 1024, 520),
    (4, 2, 1),
    (7, 2, 0),
    (1, 128, 55),
    (129, 128, 120),
    (128, 100_000_000, 38_172_097),
    (128, 2_147_483_648, 1_644_467_860),
    (2**64 - 1, 128, 92),
]

# account id -> (SHA-1 key, shard for N = 2, 3, 4, 10): the table in docs/scaling.md.
ACCOUNT_VECTORS = {
    "17841400000000001": (0x7E3ECB5144EE396D, (1, 2, 2, 6)),
    "17841400000000002": (0x61C3ABA0BCE32D69, (1, 2, 2, 4)),
    "17841405822304914": (0x68CBEBF3EE6CCD86, (1, 2, 2, 2)),
    "17841499999999999": (0x8FB250B51081ECA2, (0, 0, 3, 6)),
    "1": (0x356A192B7913B04C, (1, 2, 2, 2)),
}


@pytest.mark.parametrize(("key", "buckets", "expected"), JUMP_VECTORS)
def test_jump_hash_matches_the_published_vectors(key: int, buckets: int, expected: int) -> None:
    assert jump_hash(key, buckets) == expected


@pytest.mark.parametrize("account", sorted(ACCOUNT_VECTORS))
def test_account_ids_hash_to_the_documented_shards(account: str) -> None:
    key, shards = ACCOUNT_VECTORS[account]
    assert account_key(account) == key
    assert tuple(shard_of(account, n) for n in (2, 3, 4, 10)) == shards
    assert shard_of(account, 1) == 0


def test_the_vectors_are_the_ones_docs_scaling_md_shows() -> None:
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "scaling.md").read_text()
    for account, (key, shards) in ACCOUNT_VECTORS.items():
        row = f"| `{account}` | `{key:016x}` | " + " | ".join(map(str, shards)) + " |"
        assert row in text, row


def test_appending_a_shard_moves_only_accounts_to_the_new_shard() -> None:
    """Jump hash's promise, which docs/scaling.md's "adding a shard" relies on."""
    accounts = [str(17841400000000000 + n) for n in range(3000)]
    moved = [a for a in accounts if shard_of(a, 3) != shard_of(a, 4)]
    assert all(shard_of(a, 4) == 3 for a in moved)
    assert 0.15 < len(moved) / len(accounts) < 0.35  # about 1/4


def test_accounts_spread_evenly() -> None:
    counts = [0, 0]
    for n in range(4000):
        counts[shard_of(str(17841400000000000 + n), 2)] += 1
    assert min(counts) > 1800


def test_any_string_has_a_shard_but_only_strings() -> None:
    """The rule is defined on UTF-8 text (ids are validated elsewhere); a non-string is a
    programming error, not a shard."""
    assert shard_of("not-digits", 2) in (0, 1)
    assert shard_of("é", 4) == shard_of("\u00e9", 4)
    with pytest.raises(TypeError):
        shard_of(17841400000000001, 2)  # type: ignore[arg-type]


def test_no_shards_is_a_clear_error() -> None:
    with pytest.raises(ShardConfigError) as caught:
        ShardMap.of([])
    assert caught.value.as_dict()["error"] == "invalid_shards"
    with pytest.raises(ShardConfigError):
        jump_hash(1, 0)


def test_settings_without_shards_are_one_shard_the_redis_url() -> None:
    settings = ClientSettings(redis_url="redis://one:6379/0")
    assert ShardMap.from_settings(settings).urls == ("redis://one:6379/0",)
    assert shard_settings(settings, 0) is settings
    with pytest.raises(ShardConfigError):
        shard_settings(settings, 1)


def test_settings_list_shards_once_and_each_aims_at_its_own() -> None:
    settings = ClientSettings(shards=["redis://a:6379/0", "redis://b:6379/0"])
    assert shard_settings(settings, 1).redis_url == "redis://b:6379/0"
    assert shard_settings(settings, 1).shards == settings.shards


@pytest.mark.parametrize(
    "shards", [["redis://a/0", "redis://a/0"], ["redis://a/0", " "]], ids=["twice", "blank"]
)
def test_a_shard_list_that_cannot_work_is_refused_without_its_urls(shards: list[str]) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as caught:
        ClientSettings(shards=shards)
    assert "redis://" not in str(caught.value).split("input_value")[0]
