"""Keeping long-lived tokens alive: every worker looks for tokens due a refresh; one of the
fleet refreshes each (a lease in Redis), and the new token replaces the old for every worker
in one script (`account_refreshed.lua`, which also checks the lease and that the token it
replaces is still the current one).

Due: asked for (`accounts refresh`); older than `accounts.refresh_after_s` (7 days); expiring
within `accounts.refresh_before_expiry_s`; or of unknown age (a token from the file or the
environment, whose real expiry we learn only by refreshing it). Graph refreshes a token once
it is a day old: a refusal is retried after a capped exponential backoff. A 190 marks the
account needs_reauth. Refreshing needs an encryption key (the new token is stored
encrypted); without one, nothing is refreshed and the worker says so once.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass

import structlog
from pydantic import SecretStr

from ig_outbound.accounts.cipher import fingerprint
from ig_outbound.accounts.errors import AccountError
from ig_outbound.accounts.registry import REAUTH_PAUSE, AccountEntry
from ig_outbound.graph.admin import GraphAdmin, GraphAdminError
from ig_outbound.worker import metrics
from ig_outbound.worker.tokens import Credential, TokenBook

log = structlog.get_logger("ig_outbound.refresher")


@dataclass(frozen=True)
class AccountStates:
    counts: dict[str, int]  # state -> accounts (active, paused, needs_reauth, removed, corrupt)
    expiring_soon: int


class Refresher:
    def __init__(self, book: TokenBook, graph: GraphAdmin, *, account_pause_s: float) -> None:
        self._book = book
        self._registry = book.registry
        self._graph = graph
        self._section = book.settings.accounts
        self._pause_ms = int(account_pause_s * 1000)
        self.holder = uuid.uuid4().hex
        self._warned_no_key = False

    async def aclose(self) -> None:
        await self._graph.aclose()

    def due(self, entry: AccountEntry, now_ms: int) -> bool:
        if entry.state != "active":
            return False  # removed; or needs_reauth: Graph refreshes no invalid token
        if entry.refresh_requested:
            return True
        if entry.refresh_next_ms is not None and entry.refresh_next_ms > now_ms:
            return False
        if entry.estimated or entry.issued_ms is None:
            return True  # its real age and expiry are unknown until a refresh says
        if now_ms - entry.issued_ms >= self._section.refresh_after_s * 1000:
            return True
        expires = entry.expires_ms
        return expires is not None and expires - now_ms <= (
            self._section.refresh_before_expiry_s * 1000
        )

    async def run_once(self) -> dict[str, str]:
        """Refresh what is due (the accounts this worker won the lease for). Returns the
        result per account tried."""
        now = await self._registry.now_ms()
        results: dict[str, str] = {}
        for account, entry in self._book.entries().items():
            if not self.due(entry, now):
                continue
            cred = self._book.get(account)
            if cred is None:
                continue
            if self._book.cipher is None:
                if not self._warned_no_key:
                    self._warned_no_key = True
                    log.warning(
                        "tokens_not_refreshed",
                        why="no encryption key (IG_OUTBOUND_ACCOUNTS__ENCRYPTION_KEYS): a "
                        "refreshed token could not be stored",
                    )
                break
            result = await self.refresh(account, cred)
            if result is not None:
                results[account] = result
        return results

    async def refresh(self, account_id: str, cred: Credential) -> str | None:
        """Refresh one account's token if this worker gets the lease and it is still due;
        the result (ok, refused, invalid, error), or None when another worker has it."""
        lease_ms = int(self._section.refresh_lease_s * 1000)
        if not await self._registry.acquire_lease(account_id, self.holder, lease_ms):
            return None
        try:
            try:
                entry = await self._registry.get(account_id)
            except AccountError:
                return None
            now = await self._registry.now_ms()
            if entry.fingerprint != cred.fingerprint or not self.due(entry, now):
                # Someone refreshed it a moment ago (this worker's view is behind): done.
                await self._book.reload(force=True)
                return None
            return await self._ask_graph(account_id, cred, entry)
        finally:
            await self._registry.release_lease(account_id, self.holder)

    async def _ask_graph(self, account_id: str, cred: Credential, entry: AccountEntry) -> str:
        cipher = self._book.cipher
        assert cipher is not None
        try:
            fresh = await self._graph.refresh(SecretStr(cred.token))
        except GraphAdminError as exc:
            return await self._failed(account_id, cred, entry, exc)
        token = fresh.token.get_secret_value()
        verdict = await self._registry.refreshed(
            account_id,
            holder=self.holder,
            old_fingerprint=cred.fingerprint,
            ciphertext=cipher.encrypt(token),
            fingerprint=fingerprint(token),
            # A refreshed copy of a local token is used while the local one is unchanged.
            lineage="" if entry.source == "store" else (entry.lineage or cred.fingerprint),
            expires_in_ms=fresh.expires_in_s * 1000,
        )
        await self._book.reload(force=True)
        if verdict != "ok":
            log.warning("token_refresh_not_stored", account=account_id, verdict=verdict)
            metrics.TOKEN_REFRESHES.labels(result="error").inc()
            return "error"
        metrics.TOKEN_REFRESHES.labels(result="ok").inc()
        log.info("token_refreshed", account=account_id, expires_in_s=fresh.expires_in_s)
        return "ok"

    async def _failed(
        self, account_id: str, cred: Credential, entry: AccountEntry, exc: GraphAdminError
    ) -> str:
        if exc.token_invalid:
            result = "invalid"
            await self._book.report_invalid(
                account_id, cred, f"refresh_{exc.reason}", self._pause_ms
            )
        else:
            result = "error" if exc.transient else "refused"
        failures = entry.refresh_failures + 1
        backoff_s = min(
            self._section.refresh_retry_cap_s,
            self._section.refresh_retry_base_s * 2 ** min(failures - 1, 20),
        )
        backoff_s *= random.uniform(0.8, 1.0)  # workers do not retry in step
        now = await self._registry.now_ms()
        await self._registry.refresh_failed(
            account_id,
            holder=self.holder,
            fingerprint=cred.fingerprint,
            result=result,
            error=f"{exc.reason}: {exc}"[:300],
            next_ms=now + int(backoff_s * 1000),
        )
        await self._book.reload(force=True)
        metrics.TOKEN_REFRESHES.labels(result=result).inc()
        log.warning(
            "token_refresh_failed",
            account=account_id,
            result=result,
            reason=exc.reason,
            retry_in_s=round(backoff_s),
        )
        return result

    async def account_states(self, now_ms: int) -> AccountStates:
        """Accounts by state and tokens expiring soon, as this worker's book sees the
        registry (worker/fleet_metrics.py serves them for the fleet)."""
        entries = self._book.entries()
        live = [a for a, e in entries.items() if e.state != "removed"]
        pauses = await self._registry.pauses(live)
        counts = {"active": 0, "paused": 0, "needs_reauth": 0, "removed": 0}
        soon = 0
        horizon = now_ms + self._section.expiring_soon_s * 1000
        for account, entry in entries.items():
            if entry.state == "removed":
                counts["removed"] += 1
                continue
            if entry.state == "needs_reauth":
                counts["needs_reauth"] += 1
            elif account in pauses and pauses[account].reason != REAUTH_PAUSE:
                counts["paused"] += 1
            else:
                counts["active"] += 1
            if entry.expires_ms is not None and entry.expires_ms <= horizon:
                soon += 1
        counts["corrupt"] = len(self._book.corrupt())
        return AccountStates(counts, soon)
