"""A worker's tokens: the file hot-reloaded (and on SIGHUP), a bad file keeping the last good
tokens, the registry's stored tokens winning, removal, and key rotation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr

from ig_outbound.accounts.cipher import fingerprint, new_key
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.redis_util import resolve
from ig_outbound.worker import metrics
from tests.accounts.conftest import Fleet

A, B = "17841400000007001", "17841400000007002"
T1, T2, T3 = ("IGAA" + c * 40 for c in "123")


def _write(path: Path, tokens: dict[str, str]) -> None:
    path.write_text(json.dumps(tokens), encoding="utf-8")


async def test_a_changed_file_is_applied_once_two_checks_agree(
    fleet: Fleet, tmp_path: Path
) -> None:
    path = tmp_path / "tokens.json"
    _write(path, {A: T1})
    book, _ = await fleet.worker(tokens_file=path)
    assert book.get(A) is not None and book.get(A).token == T1  # type: ignore[union-attr]
    _write(path, {A: T2, B: T3})
    await book.poll()  # seen once: maybe half-written
    assert book.get(A).token == T1  # type: ignore[union-attr]
    await book.poll()
    assert book.get(A).token == T2 and book.get(B).token == T3  # type: ignore[union-attr]
    entry = await fleet.registry.get(A)
    assert entry.source == "file" and entry.fingerprint == fingerprint(T2)
    assert await resolve(fleet.redis.sismember(f"{fleet.prefix}:accounts", B))


async def test_sighup_applies_at_once(fleet: Fleet, tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    _write(path, {A: T1})
    book, _ = await fleet.worker(tokens_file=path)
    _write(path, {A: T2})
    await book.on_sighup()
    assert book.get(A).token == T2  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "content", ["{not json", "17841400000007001 IGAA-no-equals", "", '{"abc": "IGAA1"}']
)
async def test_a_file_turned_bad_keeps_the_last_good_tokens_and_says_so_without_them(
    fleet: Fleet, tmp_path: Path, capfd: pytest.CaptureFixture[str], content: str
) -> None:
    path = tmp_path / "tokens.txt"
    path.write_text(f"{A}={T1}\n")
    book, _ = await fleet.worker(tokens_file=path)
    errors = metrics.TOKEN_RELOADS.labels(result="error")._value.get()
    path.write_text(content.replace("IGAA1", T2))
    await book.on_sighup()
    assert book.get(A).token == T1  # type: ignore[union-attr]
    assert metrics.TOKEN_RELOADS.labels(result="error")._value.get() == errors + 1
    out = capfd.readouterr()
    text = out.out + out.err
    assert "tokens_file_invalid" in text
    assert T1 not in text and T2 not in text


async def test_an_account_dropped_from_the_file_stays_for_the_fleet(
    fleet: Fleet, tmp_path: Path
) -> None:
    """Another worker's file may hold it now (a move): only `accounts remove` removes."""
    path = tmp_path / "tokens.json"
    _write(path, {A: T1, B: T2})
    book, _ = await fleet.worker(tokens_file=path)
    other, _ = await fleet.worker(tokens={B: T2})
    _write(path, {A: T1})
    await book.on_sighup()
    assert book.get(B) is None and other.get(B) is not None
    assert (await fleet.registry.get(B)).state == "active"
    assert await resolve(fleet.redis.sismember(f"{fleet.prefix}:accounts", B))


async def test_a_new_file_token_ends_needs_reauth(fleet: Fleet, tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    _write(path, {A: T1})
    book, _ = await fleet.worker(tokens_file=path)
    cred = book.get(A)
    assert cred is not None
    assert await book.report_invalid(A, cred, "token_expired", 60_000) == "marked"
    assert (await fleet.registry.get(A)).state == "needs_reauth"
    # Its waiting intent: a conversation head deferred for the pause (a minute ahead), and
    # another account's, which must stay where it is.
    keys = Keys(fleet.prefix)
    now_ms = await fleet.registry.now_ms()
    # And one of A's due in 10 minutes for its own reason (a not_before): it keeps its time.
    heads = ((A, "waiting", 60_000), ("17841499999999991", "other", 60_000), (A, "later", 600_000))
    for account, key, ahead_ms in heads:
        conv = keys.conversation(account, f"id:1254477{key}")
        await fleet.redis.zadd(conv, {key: 1})
        await fleet.redis.zadd(keys.conversations, {conv: now_ms})
        await fleet.redis.zadd(keys.queue, {keys.job_id(key): now_ms + ahead_ms})
    _write(path, {A: T2})
    await book.on_sighup()
    entry = await fleet.registry.get(A)
    assert entry.state == "active" and entry.fingerprint == fingerprint(T2)
    assert await fleet.redis.get(f"{fleet.prefix}:pause:{A}") is None
    # The new token is used at once: the waiting head is due now, not a minute later.
    assert (await fleet.redis.zscore(keys.queue, keys.job_id("waiting")) or 0) <= now_ms + 5_000
    assert await fleet.redis.zscore(keys.queue, keys.job_id("other")) == now_ms + 60_000
    assert await fleet.redis.zscore(keys.queue, keys.job_id("later")) == now_ms + 600_000


async def test_a_stored_token_wins_over_a_local_one(fleet: Fleet) -> None:
    cipher = fleet.cipher()
    await fleet.registry.put(
        A,
        ciphertext=cipher.encrypt(T3),
        fingerprint=fingerprint(T3),
        username="",
        expires_in_ms=1000,
        estimated=False,
    )
    book, _ = await fleet.worker(tokens={A: T1})
    assert book.get(A).token == T3  # type: ignore[union-attr]


async def test_key_rotation_keeps_every_worker_reading(fleet: Fleet) -> None:
    old = fleet.cipher()
    await fleet.registry.put(
        A,
        ciphertext=old.encrypt(T1),
        fingerprint=fingerprint(T1),
        username="",
        expires_in_ms=1000,
        estimated=False,
    )
    old_key = fleet.keys[0]
    fleet.keys = [SecretStr(new_key()), old_key]
    rotating, _ = await fleet.worker(tokens={B: T2})
    assert rotating.get(A).token == T1  # type: ignore[union-attr]
    assert await fleet.admin().rekey() == {A: "rekeyed"}
    fleet.keys = fleet.keys[:1]
    new_only, _ = await fleet.worker(tokens={B: T2})
    assert new_only.get(A).token == T1  # type: ignore[union-attr]
    # A worker given a wrong key: that account has no token (said once), the others go on.
    fleet.keys = [SecretStr(new_key())]
    wrong, _ = await fleet.worker(tokens={B: T2})
    assert wrong.get(A) is None and A in wrong.corrupt()
    assert wrong.get(B).token == T2  # type: ignore[union-attr]


def test_no_token_in_a_books_repr(fleet: Fleet) -> None:
    from ig_outbound.worker.tokens import Credential

    cred = Credential(T1, fingerprint(T1), "env")
    assert T1 not in repr(cred)
