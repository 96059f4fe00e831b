"""Automatic refresh: due when, done by exactly one worker of a fleet, retried with backoff,
190 -> needs_reauth; and a 60-day lifetime in seconds on the emulator's clock."""

from __future__ import annotations

import asyncio

from pydantic import SecretStr

from ig_outbound.accounts.cipher import fingerprint
from ig_outbound.accounts.registry import AccountEntry
from ig_outbound.graph.admin import GraphAdmin
from ig_outbound.producers.redis_util import resolve
from ig_outbound.worker import metrics
from tests.accounts.conftest import DAY, Fleet

NOW = 1_800_000_000_000


def _entry(**fields: object) -> AccountEntry:
    values: dict[str, object] = {
        "account_id": "1",
        "source": "store",
        "state": "active",
        "issued_ms": NOW - DAY * 1000,
        "expires_ms": NOW + 59 * DAY * 1000,
        "estimated": False,
    }
    values.update(fields)
    return AccountEntry(**values)  # type: ignore[arg-type]


async def test_what_is_due(fleet: Fleet) -> None:
    _, refresher = await fleet.worker()
    due = refresher.due
    assert not due(_entry(), NOW)
    assert due(_entry(issued_ms=NOW - 7 * DAY * 1000), NOW)  # a week old
    assert due(_entry(expires_ms=NOW + 9 * DAY * 1000), NOW)  # expiring within 10 days
    assert due(_entry(estimated=True), NOW)  # real age unknown
    assert due(_entry(refresh_requested=True), NOW)  # `accounts refresh`
    assert not due(_entry(estimated=True, refresh_next_ms=NOW + 1), NOW)  # backing off
    assert due(_entry(refresh_requested=True, refresh_next_ms=NOW + 1), NOW)
    assert not due(_entry(state="needs_reauth", estimated=True), NOW)
    assert not due(_entry(state="removed", estimated=True), NOW)


async def test_exactly_one_of_three_workers_refreshes_and_all_use_the_new_token(
    fleet: Fleet,
) -> None:
    ig_id, token = fleet.emulator.new_account(age_s=3 * DAY)
    await fleet.admin().add(SecretStr(token), expires_in_s=50 * DAY, subscribe=False)
    await resolve(fleet.redis.hset(f"{fleet.prefix}:acct:{ig_id}", "refresh_requested", "1"))
    workers = [await fleet.worker() for _ in range(3)]
    before = metrics.TOKEN_REFRESHES.labels(result="ok")._value.get()
    results = await asyncio.gather(*(r.run_once() for _, r in workers))
    assert sorted(r.get(ig_id, "-") for r in results) == ["-", "-", "ok"]
    refreshed = [t for t in fleet.emulator.control.tokens(ig_id) if t["refreshed_from"]]
    assert len(refreshed) == 1
    assert metrics.TOKEN_REFRESHES.labels(result="ok")._value.get() == before + 1
    for book, _ in workers:
        await book.poll_registry()
        cred = book.get(ig_id)
        assert cred is not None and cred.fingerprint[:12] == refreshed[0]["fingerprint"]
    entry = await fleet.registry.get(ig_id)
    assert entry.refresh_result == "ok" and not entry.refresh_requested
    # Done: a second round finds nothing due.
    assert await asyncio.gather(*(r.run_once() for _, r in workers)) == [{}, {}, {}]


async def test_a_local_token_is_refreshed_once_and_the_copy_used_while_it_stands(
    fleet: Fleet,
) -> None:
    ig_id, token = fleet.emulator.new_account(age_s=10 * DAY)
    workers = [await fleet.worker(tokens={ig_id: token}) for _ in range(3)]
    results = await asyncio.gather(*(r.run_once() for _, r in workers))
    assert sorted(r.get(ig_id, "-") for r in results) == ["-", "-", "ok"]
    entry = await fleet.registry.get(ig_id)
    assert entry.source == "env" and entry.lineage == fingerprint(token)
    for book, _ in workers:
        await book.poll_registry()
        cred = book.get(ig_id)
        assert cred is not None and cred.fingerprint == entry.fingerprint != fingerprint(token)


async def test_a_young_token_is_retried_later_not_hammered(fleet: Fleet) -> None:
    ig_id, token = fleet.emulator.new_account(age_s=3600)
    _, refresher = await fleet.worker(tokens={ig_id: token})
    assert await refresher.run_once() == {ig_id: "refused"}
    entry = await fleet.registry.get(ig_id)
    now = await fleet.registry.now_ms()
    assert entry.refresh_failures == 1 and entry.refresh_next_ms is not None
    assert 3_000 < entry.refresh_next_ms - now <= 5_000  # base 5 s here, jittered down
    assert entry.refresh_error is not None and entry.refresh_error.startswith("graph_100")
    assert await refresher.run_once() == {}  # backing off: no second call


async def test_a_token_graph_calls_invalid_marks_the_account_needs_reauth(fleet: Fleet) -> None:
    ig_id, token = fleet.emulator.new_account(age_s=3 * DAY)
    _, refresher = await fleet.worker(tokens={ig_id: token})
    fleet.emulator.control.revoke_tokens(ig_id, 458)
    assert await refresher.run_once() == {ig_id: "invalid"}
    entry = await fleet.registry.get(ig_id)
    assert (entry.state, entry.reason) == ("needs_reauth", "refresh_graph_190_458")
    assert await fleet.redis.get(f"{fleet.prefix}:pause:{ig_id}") == b"needs_reauth"
    states = await refresher.account_states(await fleet.registry.now_ms())
    assert states.counts["needs_reauth"] == 1


async def test_sixty_days_in_seconds(fleet: Fleet) -> None:
    """Unrefreshed, a token dies at 60 days (Graph: 190/463); refreshed on day 59, the
    account lives on past day 61 with the new token."""
    control = fleet.emulator.control
    ig_id, token = fleet.emulator.new_account(age_s=0)
    kept_id, kept_token = fleet.emulator.new_account(age_s=0)
    book, refresher = await fleet.worker(tokens={ig_id: token, kept_id: kept_token})
    graph = GraphAdmin(fleet.settings().graph)
    fleet.admins.append(graph)
    start = control.clock()["offset_s"]
    try:
        control.advance_clock(59 * DAY)
        assert await refresher.refresh(kept_id, book.get(kept_id)) == "ok"  # type: ignore[arg-type]
        control.advance_clock(2 * DAY)
        # The unrefreshed token has expired ...
        assert await refresher.refresh(ig_id, book.get(ig_id)) == "invalid"  # type: ignore[arg-type]
        entry = await fleet.registry.get(ig_id)
        assert entry.reason == "refresh_graph_190_463"
        # ... the refreshed one is good for 58 more days.
        cred = book.get(kept_id)
        assert cred is not None and cred.token != kept_token
        owner = await graph.me(SecretStr(cred.token))
        assert owner.user_id == kept_id
    finally:
        control.set_clock_offset(start)
