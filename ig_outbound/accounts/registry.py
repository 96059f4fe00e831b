"""The account registry in Redis: one hash per account (`Keys.account`), written only by the
account scripts (`producers/lua/account_*.lua`), each of which bumps `Keys.accounts_version`
so a worker reloads the registry only when something changed.

What an entry holds (never a plaintext token)::

    source        store (`accounts add`: the token is here, encrypted) | file | env
    state         active | needs_reauth (Graph refused the token: 190) | removed (a tombstone)
    fp            fingerprint of the account's current token
    token         Fernet ciphertext: a stored token, or a refreshed copy of a local one
    lineage       for a refreshed copy of a file/env token: that token's fingerprint (the
                  copy is used while the worker's local token is still that one)
    issued_ms / expires_ms / estimated    the token's age and expiry (estimated: an upper
                  bound, not Graph's figure: the age of a token we were handed is unknown)
    refreshed_ms, refresh_result, refresh_error, refresh_failures, refresh_next_ms,
    refresh_requested, subscribed, subscribe_error, reason, reauth_fp, added_ms, ...
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from ig_outbound.accounts.errors import AccountNotFoundError, CorruptAccountError
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.redis_util import resolve
from ig_outbound.producers.scripts import (
    ACCOUNT_NOTE,
    ACCOUNT_PUT,
    ACCOUNT_REAUTH,
    ACCOUNT_REFRESH_FAILED,
    ACCOUNT_REFRESHED,
    ACCOUNT_REKEY,
    ACCOUNT_REMOVE,
    ACCOUNT_SYNC,
    LEASE_RELEASE,
)

Source = Literal["store", "file", "env"]
State = Literal["active", "needs_reauth", "removed"]
SOURCES: tuple[Source, ...] = ("store", "file", "env")
STATES: tuple[State, ...] = ("active", "needs_reauth", "removed")
# The value of a pause key set for a token Graph refused (producers/lua/account_guard.lua).
REAUTH_PAUSE = "needs_reauth"


def is_account_id(text: str) -> bool:
    """1-64 ASCII digits, as the scripts accept (`str.isdigit` alone takes full-width and
    superscript digits)."""
    return 0 < len(text) <= 64 and text.isascii() and text.isdigit()


@dataclass(frozen=True)
class AccountEntry:
    """One registry entry, parsed and checked."""

    account_id: str
    source: Source
    state: State
    fingerprint: str | None = None
    ciphertext: str | None = None
    lineage: str | None = None
    reason: str | None = None
    reauth_fp: str | None = None
    username: str | None = None
    issued_ms: int | None = None
    expires_ms: int | None = None
    estimated: bool = True
    added_ms: int | None = None
    updated_ms: int | None = None
    removed_ms: int | None = None
    refreshed_ms: int | None = None
    refresh_tried_ms: int | None = None
    refresh_next_ms: int | None = None
    refresh_result: str | None = None
    refresh_error: str | None = None
    refresh_failures: int = 0
    refresh_requested: bool = False
    subscribed: tuple[str, ...] | None = None
    subscribe_error: str | None = None

    def __repr__(self) -> str:  # the ciphertext is no secret without a key, but long
        return f"AccountEntry({self.account_id}, {self.source}, {self.state})"


_WHOLE = re.compile(r"-?[0-9]{1,18}")
_MAX_MS = 253_402_300_799_000  # 9999-12-31: what a datetime can show
_INT_FIELDS = (
    "issued_ms",
    "expires_ms",
    "added_ms",
    "updated_ms",
    "removed_ms",
    "refreshed_ms",
    "refresh_tried_ms",
    "refresh_next_ms",
    "refresh_failures",
)
_TEXT_FIELDS = {
    "fp": "fingerprint",
    "token": "ciphertext",
    "lineage": "lineage",
    "reason": "reason",
    "reauth_fp": "reauth_fp",
    "username": "username",
    "refresh_result": "refresh_result",
    "refresh_error": "refresh_error",
    "subscribe_error": "subscribe_error",
}


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def parse_entry(account_id: str, raw: Mapping[Any, Any]) -> AccountEntry:
    """An entry from HGETALL; ``CorruptAccountError`` names what is wrong with it."""
    fields = {_text(k): _text(v) for k, v in raw.items()}
    source, state = fields.get("source"), fields.get("state")
    if source not in SOURCES:
        raise CorruptAccountError(account_id, f"unknown source {source!r} in its entry")
    if state not in STATES:
        raise CorruptAccountError(account_id, f"unknown state {state!r} in its entry")
    values: dict[str, Any] = {}
    for name in _INT_FIELDS:
        text = fields.get(name)
        if text is None or text == "":
            continue
        if not _WHOLE.fullmatch(text):
            raise CorruptAccountError(account_id, f"field {name} is not a whole number")
        values[name] = int(text)
        if name.endswith("_ms") and not 0 <= values[name] <= _MAX_MS:
            raise CorruptAccountError(account_id, f"field {name} is out of range")
    for field, name in _TEXT_FIELDS.items():
        if fields.get(field):
            values[name] = fields[field]
    subscribed = fields.get("subscribed")
    return AccountEntry(
        account_id=account_id,
        source=source,
        state=state,
        estimated=fields.get("estimated", "1") != "0",
        refresh_requested=fields.get("refresh_requested") == "1",
        subscribed=tuple(f for f in subscribed.split(",") if f) if subscribed else None,
        **values,
    )


@dataclass(frozen=True)
class Pause:
    left_ms: int
    reason: str


class AccountRegistry:
    """Reads and writes the registry. Tokens arrive here encrypted (see `cipher.py`)."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._scripts = {
            s.name: redis.register_script(s.source)
            for s in (
                ACCOUNT_PUT,
                ACCOUNT_REMOVE,
                ACCOUNT_SYNC,
                ACCOUNT_REAUTH,
                ACCOUNT_REFRESHED,
                ACCOUNT_REFRESH_FAILED,
                ACCOUNT_NOTE,
                ACCOUNT_REKEY,
                LEASE_RELEASE,
            )
        }

    @property
    def keys(self) -> Keys:
        return self._keys

    async def _run(self, name: str, *args: str | int, keys: Sequence[str] = ()) -> Any:
        reply = await self._scripts[name](keys=list(keys), args=[self._keys.prefix, *args])
        if isinstance(reply, list):
            return [_text(r) for r in reply]
        return _text(reply)

    # --- reading ------------------------------------------------------------------------------

    async def version(self) -> int:
        value = await resolve(self._redis.get(self._keys.accounts_version))
        return int(value) if value is not None else 0

    async def account_ids(self) -> list[str]:
        members = await resolve(self._redis.smembers(self._keys.account_index))
        return sorted((_text(m) for m in members), key=lambda a: (len(a), a))

    async def load(self) -> tuple[dict[str, AccountEntry], dict[str, CorruptAccountError]]:
        """Every entry; an unreadable one is reported for its account, never for all."""
        ids = await self.account_ids()
        pipe = self._redis.pipeline(transaction=False)
        for account in ids:
            pipe.hgetall(self._keys.account(account))
        raws = await pipe.execute(raise_on_error=False) if ids else []
        entries: dict[str, AccountEntry] = {}
        corrupt: dict[str, CorruptAccountError] = {}
        for account, raw in zip(ids, raws, strict=True):
            if isinstance(raw, Exception):  # e.g. WRONGTYPE: someone wrote another type
                corrupt[account] = CorruptAccountError(account, "its key is not a hash")
                continue
            if not raw:
                continue  # indexed but gone (a partial restore): nothing to serve
            try:
                entries[account] = parse_entry(account, raw)
            except CorruptAccountError as exc:
                corrupt[account] = exc
        return entries, corrupt

    async def get(self, account_id: str) -> AccountEntry:
        try:
            raw = await resolve(self._redis.hgetall(self._keys.account(account_id)))
        except ResponseError:  # WRONGTYPE: someone wrote another type under the key
            raise CorruptAccountError(account_id, "its key is not a hash") from None
        if not raw:
            raise AccountNotFoundError(account_id)
        return parse_entry(account_id, raw)

    async def pauses(self, account_ids: Sequence[str]) -> dict[str, Pause]:
        """The fleet-wide pause of each account that has one."""
        if not account_ids:
            return {}
        pipe = self._redis.pipeline(transaction=False)
        for account in account_ids:
            pipe.pttl(self._keys.pause(account))
            pipe.get(self._keys.pause(account))
        replies = await pipe.execute()
        out: dict[str, Pause] = {}
        for i, account in enumerate(account_ids):
            left, reason = replies[2 * i], replies[2 * i + 1]
            if isinstance(left, int) and left > 0 and reason is not None:
                out[account] = Pause(left, _text(reason))
        return out

    # --- writing (each one script: atomic, and it tells the workers) ---------------------------

    async def put(
        self,
        account_id: str,
        *,
        ciphertext: str,
        fingerprint: str,
        username: str,
        expires_in_ms: int,
        estimated: bool,
    ) -> str:
        return cast(
            str,
            await self._run(
                "account_put",
                account_id,
                ciphertext,
                fingerprint,
                username,
                expires_in_ms,
                "1" if estimated else "0",
            ),
        )

    async def remove(self, account_id: str, reason: str) -> str:
        return cast(str, await self._run("account_remove", account_id, reason))

    async def sync(self, local: Sequence[tuple[str, Source, str]]) -> dict[str, str]:
        """Register a worker's env/file tokens by fingerprint; the verdict per account."""
        if not local:
            return {}
        args = [part for triple in local for part in triple]
        verdicts = await self._run("account_sync", *args)
        return {account: v for (account, _, _), v in zip(local, verdicts, strict=True)}

    async def report_invalid(
        self, account_id: str, fingerprint: str, reason: str, pause_ms: int
    ) -> str:
        return cast(
            str,
            await self._run(
                "account_reauth", account_id, fingerprint, reason, max(int(pause_ms), 1)
            ),
        )

    async def acquire_lease(self, account_id: str, holder: str, ms: int) -> bool:
        key = self._keys.refresh_lease(account_id)
        return bool(await resolve(self._redis.set(key, holder, px=max(ms, 1), nx=True)))

    async def release_lease(self, account_id: str, holder: str) -> None:
        await self._run_raw(LEASE_RELEASE.name, [self._keys.refresh_lease(account_id)], holder)

    async def _run_raw(self, name: str, keys: list[str], *args: str) -> Any:
        return await self._scripts[name](keys=keys, args=list(args))

    async def refreshed(
        self,
        account_id: str,
        *,
        holder: str,
        old_fingerprint: str,
        ciphertext: str,
        fingerprint: str,
        lineage: str,
        expires_in_ms: int,
    ) -> str:
        return cast(
            str,
            await self._run(
                "account_refreshed",
                account_id,
                holder,
                old_fingerprint,
                ciphertext,
                fingerprint,
                lineage,
                expires_in_ms,
            ),
        )

    async def refresh_failed(
        self,
        account_id: str,
        *,
        holder: str,
        fingerprint: str,
        result: str,
        error: str,
        next_ms: int,
    ) -> str:
        return cast(
            str,
            await self._run(
                "account_refresh_failed", account_id, holder, fingerprint, result, error, next_ms
            ),
        )

    async def note(self, account_id: str, **fields: str) -> str:
        """Set note fields (`subscribed`, `subscribe_error`, `refresh_requested`, ...)."""
        args = [part for item in fields.items() for part in item]
        return cast(str, await self._run("account_note", account_id, *args))

    async def rekey(self, account_id: str, old: str, new: str) -> str:
        return cast(str, await self._run("account_rekey", account_id, old, new))

    async def now_ms(self) -> int:
        """Redis's clock: every registry time is on it."""
        seconds, micros = await resolve(self._redis.time())
        return int(seconds) * 1000 + int(micros) // 1000
