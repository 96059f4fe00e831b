"""The send job and the account registry: a token Graph refuses, a token replaced by a
refresh while a send was out, a removed account's queued intents, a new token releasing
an account (issue 11)."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from ig_outbound.accounts.cipher import TokenCipher, fingerprint, new_key
from ig_outbound.accounts.registry import AccountRegistry
from ig_outbound.producers.errors import AccountRemovedError
from tests.worker.conftest import (
    ACCOUNT,
    ACCOUNT_PAUSE_S,
    TOKEN,
    JobBench,
    MakeBench,
    graph_error,
    ok,
)

NEW_TOKEN = "IGAA" + "n" * 40


def _registry(bench: JobBench) -> AccountRegistry:
    return bench.services.tokens.registry


def _bearer(bench: JobBench, index: int) -> str:
    return bench.graph.requests[index].headers["authorization"].removeprefix("Bearer ")


async def _store_new_token(bench: JobBench) -> None:
    """What `accounts add` writes for ACCOUNT: NEW_TOKEN, encrypted (the bench's book gets
    the key so it can read it)."""
    cipher = TokenCipher([SecretStr(new_key())])
    bench.services.tokens._cipher = cipher  # the bench's book was built without a key
    await _registry(bench).put(
        ACCOUNT,
        ciphertext=cipher.encrypt(NEW_TOKEN),
        fingerprint=fingerprint(NEW_TOKEN),
        username="shop",
        expires_in_ms=60 * 86_400_000,
        estimated=False,
    )


async def test_a_refused_token_marks_the_account_needs_reauth_and_its_intents_wait_unsent(
    bench: JobBench,
) -> None:
    await bench.enqueue("r1")
    await bench.enqueue("r2", recipient={"id": "1254477777700302"})
    bench.graph.script(graph_error(400, 190, 463))
    retry = await bench.retry("r1")
    assert retry.defer_score == ACCOUNT_PAUSE_S * 1000
    entry = await _registry(bench).get(ACCOUNT)
    assert (entry.state, entry.reason) == ("needs_reauth", "token_expired")
    assert entry.reauth_fp == fingerprint(TOKEN)
    assert await bench.redis.get(bench.keys.pause(ACCOUNT)) == b"needs_reauth"
    # Another intent of the account waits without asking Graph (the token is known bad).
    await bench.redis.delete(bench.keys.pause(ACCOUNT))
    retry = await bench.retry("r2")
    assert retry.defer_score == ACCOUNT_PAUSE_S * 1000
    assert len(bench.graph.requests) == 1
    assert (await bench.record("r1")).failures == 0


async def test_a_new_token_releases_the_account_and_the_waiting_intent_is_sent_with_it(
    bench: JobBench,
) -> None:
    await bench.enqueue("n1")
    bench.graph.script(graph_error(400, 190, 460))
    await bench.retry("n1")
    assert await bench.redis.get(bench.keys.pause(ACCOUNT)) == b"needs_reauth"
    await _store_new_token(bench)
    # The pause set for the refused token ends with it; the state too.
    assert await bench.redis.get(bench.keys.pause(ACCOUNT)) is None
    assert (await _registry(bench).get(ACCOUNT)).state == "active"
    assert await bench.services.tokens.poll_registry()  # what housekeeping does each second
    bench.graph.script(ok())
    assert await bench.run("n1") == "sent"
    assert _bearer(bench, 1) == NEW_TOKEN


async def test_a_190_for_a_token_replaced_meanwhile_retries_with_the_new_one(
    bench: JobBench,
) -> None:
    """A refresh replaced the token while this send was out with the old one (which Graph
    then refused): no needs_reauth, no pause; the intent goes out with the new token."""
    await bench.enqueue("race")
    cipher = TokenCipher([SecretStr(new_key())])
    bench.services.tokens._cipher = cipher
    registry = _registry(bench)
    # A refresher holds the lease and replaces the token (Graph revokes the old one).
    assert await registry.acquire_lease(ACCOUNT, "refresher", 10_000)
    bench.graph.script(graph_error(400, 190, 467), ok())
    book = bench.services.tokens
    old = book.get(ACCOUNT)
    assert old is not None
    verdict = await registry.refreshed(
        ACCOUNT,
        holder="refresher",
        old_fingerprint=old.fingerprint,
        ciphertext=cipher.encrypt(NEW_TOKEN),
        fingerprint=fingerprint(NEW_TOKEN),
        lineage=old.fingerprint,
        expires_in_ms=60 * 86_400_000,
    )
    assert verdict == "ok"
    # This worker has not reloaded yet: it still sends with the old token.
    assert book.get(ACCOUNT) == old
    retry = await bench.retry("race")
    assert retry.defer_score is not None and retry.defer_score <= 100
    entry = await registry.get(ACCOUNT)
    assert entry.state == "active" and entry.fingerprint == fingerprint(NEW_TOKEN)
    assert await bench.redis.get(bench.keys.pause(ACCOUNT)) is None
    assert await bench.run("race") == "sent"
    assert [_bearer(bench, 0), _bearer(bench, 1)] == [TOKEN, NEW_TOKEN]


async def test_removing_an_account_fails_its_queued_intents_and_refuses_new_ones(
    bench: JobBench,
) -> None:
    await bench.enqueue("q1")
    await bench.enqueue("q2", recipient={"id": "1254477777700399"})
    assert await _registry(bench).remove(ACCOUNT, "removed_by_operator") == "removed"
    # Refused at enqueue, with its own code.
    with pytest.raises(AccountRemovedError) as refused:
        await bench.client.enqueue(
            {
                "idempotency_key": "q3",
                "account_id": ACCOUNT,
                "recipient": {"id": "1254477777700301"},
                "content": {"kind": "text", "text": "hi"},
            }
        )
    assert refused.value.as_dict()["error"] == "account_removed"
    # A worker that has not reloaded yet still holds the token: the journal's begin
    # refuses the send all the same.
    assert await bench.run("q1") == "failed"
    await bench.services.tokens.reload()
    assert await bench.run("q2") == "failed"
    for key in ("q1", "q2"):
        outcome = await bench.client.outcome(key)
        assert outcome is not None and (outcome.status, outcome.reason) == (
            "failed",
            "account_removed",
        )
    assert bench.graph.requests == []


async def test_an_account_without_any_token_here_waits_instead_of_failing(
    make_bench: MakeBench,
) -> None:
    """Producers accepted it (another worker's tokens file has it): this worker waits."""
    bench = await make_bench()
    await bench.client.register_accounts(["17841400000000999"])
    await bench.enqueue("other", account_id="17841400000000999")
    retry = await bench.retry("other")
    assert retry.defer_score == ACCOUNT_PAUSE_S * 1000
    assert bench.graph.requests == []
