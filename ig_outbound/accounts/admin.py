"""Operator actions on accounts: what `ig-outbound accounts ...` and the gateway's accounts
API do. Tokens come in, are checked against Graph, encrypted and stored; nothing here ever
returns or prints one."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final, Literal, TypeVar

from pydantic import SecretStr
from redis.asyncio import Redis

from ig_outbound.accounts.cipher import TokenCipher, fingerprint
from ig_outbound.accounts.errors import (
    AccountConfigError,
    AccountError,
    AccountNotFoundError,
    AccountRefusedError,
    CorruptAccountError,
    InvalidAccountRequest,
)
from ig_outbound.accounts.registry import AccountEntry, AccountRegistry, Pause, is_account_id
from ig_outbound.accounts.settings import TOKEN_LIFETIME_S, AccountsSection, AccountToolSettings
from ig_outbound.accounts.views import AccountView
from ig_outbound.graph.admin import GraphAdmin, GraphAdminError
from ig_outbound.producers.connection import connect_async
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.redis_safety import inspect_async, verdict
from ig_outbound.producers.shards import ShardMap, shard_of

_T = TypeVar("_T")
_MAX_EXPIRES_IN_S: Final = 3650 * 86_400

# What a token may look like before it is sent anywhere (visible ASCII, no quotes/spaces).
_TOKEN_SHAPE: Final = re.compile(r"[!#-&(-\[\]-~]{8,4096}")


class GraphUnreachableError(AccountError):
    """Graph could not be asked (no answer, a 5xx): nothing was changed; try again."""

    code = "graph_unreachable"


@dataclass(frozen=True)
class AddResult:
    outcome: Literal["added", "replaced"]
    account: AccountView
    # The token was refreshed on the way in, so its expiry is Graph's own figure.
    refreshed: bool
    subscribe_error: str | None


@dataclass(frozen=True)
class RefreshResult:
    account: AccountView
    # done: a worker refreshed it; failed: a worker tried (see the view); waiting: no worker
    # took the request within the wait.
    status: Literal["done", "failed", "waiting"]


class AccountAdmin:
    """`registry`: one registry, or one per shard in shard order (each account's entry lives
    on its shard, `producers/shards.py`; listing and rekeying walk every shard)."""

    def __init__(
        self,
        registry: AccountRegistry | Sequence[AccountRegistry],
        graph: GraphAdmin,
        section: AccountsSection,
        cipher: TokenCipher | None,
    ) -> None:
        self._registries = [registry] if isinstance(registry, AccountRegistry) else list(registry)
        if not self._registries:
            raise AccountConfigError("no registry: the shard list is empty")
        self._graph = graph
        self._section = section
        self._cipher = cipher

    def _need_cipher(self) -> TokenCipher:
        if self._cipher is None:
            raise AccountConfigError(
                "no encryption key: set IG_OUTBOUND_ACCOUNTS__ENCRYPTION_KEYS to store tokens "
                "(`ig-outbound accounts new-key` makes one)"
            )
        return self._cipher

    async def add(
        self,
        token: SecretStr,
        *,
        account_id: str | None = None,
        expires_in_s: int | None = None,
        subscribe: bool = True,
    ) -> AddResult:
        """Check the token with Graph (`GET /me`), learn its expiry (Graph's figure when it can
        be refreshed now; else at most 60 days: it is younger than a day), store it
        encrypted, and subscribe the account to the webhook fields. Nothing is stored when
        Graph refuses the token."""
        cipher = self._need_cipher()
        if expires_in_s is not None and not 1 <= expires_in_s <= _MAX_EXPIRES_IN_S:
            raise InvalidAccountRequest("expires_in must be 1 s to 10 years")
        if account_id is not None and not is_account_id(account_id):
            raise InvalidAccountRequest("an account id is 1-64 digits")
        if not _TOKEN_SHAPE.fullmatch(token.get_secret_value()):
            raise AccountRefusedError(
                "that is not an access token (8-4096 visible characters, no spaces or quotes)",
                reason="token_malformed",
            )
        owner = await self._ask(self._graph.me(token))
        if account_id is not None and owner.user_id != account_id:
            raise AccountRefusedError(
                f"the token belongs to account {owner.user_id}, not {account_id}",
                reason="token_of_another_account",
            )
        account = owner.user_id
        stored, refreshed = token, False
        expires_in, estimated = expires_in_s, False
        if expires_in is None:
            try:
                fresh = await self._graph.refresh(token)
            except GraphAdminError as exc:
                if exc.token_invalid:
                    raise _refused(exc) from None
                # Graph refreshes a token once it is a day old: this one is younger (or Graph
                # could not be asked), so it lives at most the full 60 days from now.
                expires_in, estimated = TOKEN_LIFETIME_S, True
            else:
                stored, refreshed, expires_in = fresh.token, True, fresh.expires_in_s
        secret = stored.get_secret_value()
        outcome = await self._of(account).put(
            account,
            ciphertext=cipher.encrypt(secret),
            fingerprint=fingerprint(secret),
            username=owner.username or "",
            expires_in_ms=expires_in * 1000,
            estimated=estimated,
        )
        subscribe_error = await self._subscribe(account, stored) if subscribe else None
        return AddResult(
            outcome="added" if outcome == "added" else "replaced",
            account=await self.show(account),
            refreshed=refreshed,
            subscribe_error=subscribe_error,
        )

    async def subscribe(self, account_id: str) -> str | None:
        _check_id(account_id)
        """(Re)subscribe a stored account to the webhook fields; the error, if any."""
        entry = await self._of(account_id).get(account_id)
        if entry.state == "removed" or entry.ciphertext is None:
            raise AccountError(
                f"account {account_id} has no stored token (state {entry.state}, source "
                f"{entry.source}): add it with `ig-outbound accounts add` first"
            )
        token = self._need_cipher().decrypt(entry.ciphertext, account_id=account_id)
        return await self._subscribe(account_id, SecretStr(token))

    async def _subscribe(self, account_id: str, token: SecretStr) -> str | None:
        fields = self._section.subscribe_fields
        try:
            await self._graph.subscribe(account_id, token, fields)
        except GraphAdminError as exc:
            error = f"{exc.reason}: {exc}"[:300]
            await self._of(account_id).note(account_id, subscribe_error=error)
            return error
        await self._of(account_id).note(account_id, subscribed=",".join(fields), subscribe_error="")
        return None

    async def remove(self, account_id: str, *, reason: str = "removed_by_operator") -> str:
        _check_id(account_id)
        verdict = await self._of(account_id).remove(account_id, reason)
        if verdict == "not_found":
            raise AccountNotFoundError(account_id)
        return verdict

    def _of(self, account_id: str) -> AccountRegistry:
        """The registry of the account's shard."""
        return self._registries[shard_of(account_id, len(self._registries))]

    async def list(self) -> list[AccountView]:
        views: list[AccountView] = []
        for registry in self._registries:
            entries, corrupt = await registry.load()
            pauses = await registry.pauses(sorted(entries))
            now = await registry.now_ms()
            views += [self._view(e, now, pauses.get(a)) for a, e in entries.items()]
            views += [AccountView.corrupt(a, str(exc)) for a, exc in corrupt.items()]
        return sorted(views, key=lambda v: (len(v.account_id), v.account_id))

    async def _load_all(self) -> tuple[dict[str, AccountEntry], dict[str, CorruptAccountError]]:
        entries: dict[str, AccountEntry] = {}
        corrupt: dict[str, CorruptAccountError] = {}
        for registry in self._registries:
            found, bad = await registry.load()
            entries.update(found)
            corrupt.update(bad)
        return entries, corrupt

    async def show(self, account_id: str) -> AccountView:
        _check_id(account_id)
        try:
            entry = await self._of(account_id).get(account_id)
        except CorruptAccountError as exc:
            return AccountView.corrupt(account_id, str(exc))
        pauses = await self._of(account_id).pauses([account_id])
        return self._view(entry, await self._of(account_id).now_ms(), pauses.get(account_id))

    def _view(self, entry: AccountEntry, now_ms: int, pause: Pause | None) -> AccountView:
        return AccountView.build(
            entry,
            now_ms=now_ms,
            pause=pause,
            cipher=self._cipher,
            expiring_soon_s=self._section.expiring_soon_s,
        )

    async def request_refresh(self, account_id: str, *, wait_s: float = 30.0) -> RefreshResult:
        """Ask the fleet to refresh the token now (whatever its age; Graph still wants it a
        day old) and wait for a worker to report. The worker holds the token, wherever it
        comes from, so this works for file and environment tokens too."""
        _check_id(account_id)
        before = await self._of(account_id).get(account_id)
        if before.state == "removed":
            raise AccountError(f"account {account_id} was removed")
        verdict = await self._of(account_id).note(account_id, refresh_requested="1")
        if verdict == "not_found":
            raise AccountNotFoundError(account_id)
        loop = asyncio.get_running_loop()
        until = loop.time() + wait_s
        while loop.time() < until:
            await asyncio.sleep(0.2)
            entry = await self._of(account_id).get(account_id)
            if not entry.refresh_requested:
                done = entry.refreshed_ms is not None and entry.refreshed_ms != before.refreshed_ms
                return RefreshResult(await self.show(account_id), "done" if done else "failed")
        return RefreshResult(await self.show(account_id), "waiting")

    async def rekey(self) -> dict[str, str]:
        """Re-encrypt every stored token under the first key; the verdict per account."""
        cipher = self._need_cipher()
        entries, corrupt = await self._load_all()
        out: dict[str, str] = {a: "corrupt" for a in corrupt}
        for account, entry in entries.items():
            if entry.ciphertext is None:
                continue
            if cipher.uses_primary(entry.ciphertext):
                out[account] = "current"
                continue
            try:
                new = cipher.rotate(entry.ciphertext, account_id=account)
            except CorruptAccountError:
                out[account] = "unreadable"
                continue
            out[account] = await self._of(account).rekey(account, entry.ciphertext, new)
        return out

    @staticmethod
    async def _ask(call: Awaitable[_T]) -> _T:
        """Graph's answer, or why not: a refusal (nothing stored) or no answer (try again)."""
        try:
            return await call
        except GraphAdminError as exc:
            if exc.transient:
                raise GraphUnreachableError(f"Graph could not be asked: {exc}") from None
            raise _refused(exc) from None


def _check_id(account_id: str) -> None:
    if not is_account_id(account_id):
        raise InvalidAccountRequest("an account id is 1-64 digits")


def _refused(exc: GraphAdminError) -> AccountRefusedError:
    return AccountRefusedError(f"Graph refused the token: {exc}", reason=exc.reason)


@asynccontextmanager
async def open_admin(
    settings: AccountToolSettings, *, redis: Redis | None = None
) -> AsyncIterator[AccountAdmin]:
    """An `AccountAdmin` on the configured Redis and Graph (``redis``: one to use instead,
    left open). Refuses a Redis that may lose data, as producers do: a stored token lost
    with it would stop its account."""
    own = redis is None
    urls = ShardMap.from_settings(settings).urls
    clients = [connect_async(settings, url) for url in urls] if redis is None else [redis]
    graph = GraphAdmin(settings.graph)
    try:
        if own:
            for client in clients:
                verdict(await inspect_async(client), allow_data_loss=settings.redis_allow_data_loss)
        keys = Keys(settings.key_prefix)
        registries = [AccountRegistry(client, keys) for client in clients]
        cipher = TokenCipher.from_settings(settings.accounts)
        yield AccountAdmin(registries, graph, settings.accounts, cipher)
    finally:
        await graph.aclose()
        if own:
            for client in clients:
                await client.aclose()
