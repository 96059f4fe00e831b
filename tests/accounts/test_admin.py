"""`accounts add|list|show|remove|subscribe|rekey` against the emulator and a real Redis."""

from __future__ import annotations

import re

import pytest
from pydantic import SecretStr

from ig_outbound.accounts.cipher import TokenCipher, fingerprint, new_key
from ig_outbound.accounts.errors import (
    AccountConfigError,
    AccountNotFoundError,
    AccountRefusedError,
)
from ig_outbound.accounts.settings import DEFAULT_SUBSCRIBE_FIELDS
from ig_outbound.graph.admin import GraphAdmin, GraphAdminError
from ig_outbound.producers.redis_util import resolve
from tests.accounts.conftest import DAY, Fleet, all_redis_bytes

TOKEN_SHAPED = re.compile(rb"IGAA[A-Za-z0-9_\-]{16,}")


def _refreshed_fingerprints(fleet: Fleet, ig_id: str) -> set[str]:
    """The emulator's fingerprints (12 hex digits) of the tokens it issued by refreshing."""
    return {t["fingerprint"] for t in fleet.emulator.control.tokens(ig_id) if t["refreshed_from"]}


async def test_add_checks_refreshes_stores_encrypted_and_subscribes(fleet: Fleet) -> None:
    ig_id, token = fleet.emulator.new_account(age_s=3 * DAY)
    result = await fleet.admin().add(SecretStr(token))
    view = result.account
    assert (result.outcome, result.refreshed, result.subscribe_error) == ("added", True, None)
    assert (view.account_id, view.source, view.state, view.username) == (
        ig_id,
        "store",
        "active",
        f"shop{ig_id[-4:]}",
    )
    # The stored token is the refreshed one, which Graph says lives 60 days from now.
    assert view.token_fingerprint is not None
    assert {view.token_fingerprint[:12]} == _refreshed_fingerprints(fleet, ig_id)
    assert view.token_fingerprint != fingerprint(token)
    assert not view.expiry_estimated and view.expires_in_s is not None
    assert 60 * DAY - 120 < view.expires_in_s <= 60 * DAY
    assert fleet.emulator.control.subscriptions()[ig_id] == list(DEFAULT_SUBSCRIBE_FIELDS)
    assert view.subscribed_fields == list(DEFAULT_SUBSCRIBE_FIELDS)
    # Producers may enqueue for it at once.
    assert await resolve(fleet.redis.sismember(f"{fleet.prefix}:accounts", ig_id))
    # In Redis: no token, plaintext or token-shaped; the ciphertext decrypts to a valid one.
    blob = await all_redis_bytes(fleet.redis, fleet.prefix)
    assert token.encode() not in blob and not TOKEN_SHAPED.search(blob)
    entry = await fleet.registry.get(ig_id)
    assert entry.ciphertext is not None
    stored = fleet.cipher().decrypt(entry.ciphertext, account_id=ig_id)
    assert fingerprint(stored) == view.token_fingerprint
    assert token not in view.model_dump_json()


async def test_a_token_under_a_day_old_is_stored_with_an_estimated_expiry(fleet: Fleet) -> None:
    ig_id, token = fleet.emulator.new_account(age_s=3600)
    result = await fleet.admin().add(SecretStr(token), account_id=ig_id)
    view = result.account
    assert result.refreshed is False
    assert view.token_fingerprint == fingerprint(token)
    assert view.expiry_estimated and view.expires_in_s is not None
    assert view.expires_in_s > 59 * DAY


async def test_the_expiry_the_login_flow_gave_is_kept(fleet: Fleet) -> None:
    ig_id, token = fleet.emulator.new_account(age_s=3 * DAY)
    result = await fleet.admin().add(SecretStr(token), expires_in_s=5 * DAY, subscribe=False)
    view = result.account
    assert result.refreshed is False and view.token_fingerprint == fingerprint(token)
    assert view.expires_in_s is not None and 5 * DAY - 120 < view.expires_in_s <= 5 * DAY
    assert not view.expiry_estimated
    assert fleet.emulator.control.subscriptions().get(ig_id) == []


async def test_a_token_graph_refuses_is_refused_with_its_reason_and_nothing_stored(
    fleet: Fleet,
) -> None:
    bogus = "IGAA" + "x" * 40
    with pytest.raises(AccountRefusedError) as refused:
        await fleet.admin().add(SecretStr(bogus))
    assert refused.value.reason == "graph_190"
    assert bogus not in str(refused.value)
    ig_id, token = fleet.emulator.new_account()
    fleet.emulator.control.revoke_tokens(ig_id, 460)
    with pytest.raises(AccountRefusedError) as revoked:
        await fleet.admin().add(SecretStr(token))
    assert revoked.value.reason == "graph_190_460"
    assert await fleet.registry.account_ids() == []
    assert await resolve(fleet.redis.scard(f"{fleet.prefix}:accounts")) == 0


async def test_a_token_of_another_account_is_refused(fleet: Fleet) -> None:
    _, token = fleet.emulator.new_account()
    with pytest.raises(AccountRefusedError) as refused:
        await fleet.admin().add(SecretStr(token), account_id="17841499999999999")
    assert refused.value.reason == "token_of_another_account"
    assert await fleet.registry.account_ids() == []


async def test_no_key_no_store(fleet: Fleet) -> None:
    _, token = fleet.emulator.new_account()
    admin = fleet.admin(accounts={"encryption_keys": []})
    with pytest.raises(AccountConfigError, match="ENCRYPTION_KEYS"):
        await admin.add(SecretStr(token))


async def test_something_not_token_shaped_never_reaches_graph(fleet: Fleet) -> None:
    before = fleet.emulator.control.graph_calls()
    with pytest.raises(AccountRefusedError) as refused:
        await fleet.admin().add(SecretStr("IGAA with spaces"))
    assert refused.value.reason == "token_malformed"
    assert fleet.emulator.control.graph_calls() == before


async def test_a_refused_subscription_keeps_the_account_and_says_why(fleet: Fleet) -> None:
    _, token = fleet.emulator.new_account()
    admin = fleet.admin(accounts={"subscribe_fields": ["messages", "not_a_field"]})
    result = await admin.add(SecretStr(token))
    assert result.subscribe_error is not None and result.subscribe_error.startswith("graph_100")
    assert result.account.state == "active" and result.account.subscribe_error is not None
    # Once fixed, `accounts subscribe` clears it.
    assert await fleet.admin().subscribe(result.account.account_id) is None
    assert (await fleet.admin().show(result.account.account_id)).subscribe_error is None


async def test_list_show_remove(fleet: Fleet) -> None:
    admin = fleet.admin()
    first, t1 = fleet.emulator.new_account()
    second, t2 = fleet.emulator.new_account()
    await admin.add(SecretStr(t1), subscribe=False)
    await admin.add(SecretStr(t2), subscribe=False)
    assert [v.account_id for v in await admin.list()] == sorted([first, second])
    assert await admin.remove(first) == "removed"
    assert await admin.remove(first) == "already_removed"
    shown = await admin.show(first)
    assert (shown.state, shown.reason) == ("removed", "removed_by_operator")
    assert shown.token_fingerprint is None or (await fleet.registry.get(first)).ciphertext is None
    assert not await resolve(fleet.redis.sismember(f"{fleet.prefix}:accounts", first))
    with pytest.raises(AccountNotFoundError):
        await admin.remove("17841400000000000")
    # Adding it again brings it back.
    await admin.add(SecretStr(t1), subscribe=False)
    assert (await admin.show(first)).state == "active"
    listing = "".join(v.model_dump_json() for v in await admin.list())
    assert t1 not in listing and t2 not in listing


async def test_rekey_moves_every_stored_token_to_the_first_key(fleet: Fleet) -> None:
    old_admin = fleet.admin()
    ig_id, token = fleet.emulator.new_account(age_s=3600)
    await old_admin.add(SecretStr(token), subscribe=False)
    old_key = fleet.keys[0]
    new = SecretStr(new_key())
    fleet.keys = [new, old_key]  # a rotation: the new key first, the old one still listed
    rotating = fleet.admin()
    assert (await rotating.show(ig_id)).encrypted_with == "older_key"
    assert await rotating.rekey() == {ig_id: "rekeyed"}
    assert await rotating.rekey() == {ig_id: "current"}
    fleet.keys = [new]  # the old key retired
    only_new = fleet.admin()
    view = await only_new.show(ig_id)
    assert view.encrypted_with == "first_key"
    entry = await fleet.registry.get(ig_id)
    assert entry.ciphertext is not None
    assert TokenCipher([new]).decrypt(entry.ciphertext, account_id=ig_id) == token
    # A key that never encrypted it cannot read it: said, per account.
    fleet.keys = [SecretStr(new_key())]
    assert (await fleet.admin().show(ig_id)).encrypted_with == "unreadable"


async def test_a_corrupt_entry_is_reported_for_that_account_only(fleet: Fleet) -> None:
    admin = fleet.admin()
    good, t1 = fleet.emulator.new_account()
    bad, t2 = fleet.emulator.new_account()
    await admin.add(SecretStr(t1), subscribe=False)
    await admin.add(SecretStr(t2), subscribe=False)
    await resolve(fleet.redis.hset(f"{fleet.prefix}:acct:{bad}", "state", "weird"))
    views = {v.account_id: v for v in await admin.list()}
    assert views[good].state == "active"
    assert views[bad].state == "corrupt" and "unknown state" in (views[bad].last_error or "")
    # A worker serves the good one and not the broken one.
    book, _ = await fleet.worker()
    assert book.get(good) is not None and book.get(bad) is None
    assert bad in book.corrupt()


async def test_graph_admin_errors_never_hold_the_token(fleet: Fleet) -> None:
    ig_id, token = fleet.emulator.new_account()
    graph = GraphAdmin(fleet.settings().graph)
    fleet.admins.append(graph)
    fleet.emulator.control.revoke_tokens(ig_id, 467)
    for call in (graph.me(SecretStr(token)), graph.refresh(SecretStr(token))):
        with pytest.raises(GraphAdminError) as info:
            await call
        assert info.value.reason == "graph_190_467"
        assert token not in repr(info.value) and token not in str(info.value)
