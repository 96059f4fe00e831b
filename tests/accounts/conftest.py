"""The account registry against a real Redis and the emulator over real HTTP."""

from __future__ import annotations

import itertools
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from ig_outbound.accounts.admin import AccountAdmin
from ig_outbound.accounts.cipher import TokenCipher, new_key
from ig_outbound.accounts.registry import AccountRegistry
from ig_outbound.accounts.settings import AccountsSection
from ig_outbound.emulator import EmulatorConfig, EmulatorControl, run_emulator_process
from ig_outbound.graph.admin import GraphAdmin
from ig_outbound.graph.settings import GraphSettings
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.redis_util import resolve
from ig_outbound.worker.refresher import Refresher
from ig_outbound.worker.settings import Settings
from ig_outbound.worker.tokens import LocalTokens, TokenBook

DAY = 86_400
_ids = itertools.count(1)


@dataclass(frozen=True)
class Emulator:
    url: str
    control: EmulatorControl

    def new_account(
        self, *, age_s: float = 2 * DAY, lifetime_s: float | None = None
    ) -> tuple[str, str]:
        """A fresh account in the emulator: its IG id and its token (`age_s` old)."""
        ig_id = f"178414{uuid.uuid4().int % 10**5:05d}{next(_ids):06d}"
        token = "IGAA" + secrets.token_urlsafe(32)
        self.control.add_account(
            ig_id, token, f"shop{ig_id[-4:]}", token_age_s=age_s, token_lifetime_s=lifetime_s
        )
        return ig_id, token


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    with run_emulator_process(EmulatorConfig()) as url, EmulatorControl(url) as control:
        yield Emulator(url, control)


@dataclass
class Fleet:
    """What one test's fleet shares: a key prefix, the keys, Graph's address."""

    redis: aioredis.Redis
    emulator: Emulator
    prefix: str
    keys: list[SecretStr]
    books: list[TokenBook]
    admins: list[GraphAdmin]

    def settings(self, **overrides: Any) -> Settings:
        accounts = {
            "encryption_keys": self.keys,
            "refresh_retry_base_s": 5.0,
            **overrides.pop("accounts", {}),
        }
        return Settings(
            key_prefix=self.prefix,
            graph=GraphSettings(base_url=self.emulator.url),
            accounts=AccountsSection(**accounts),
            **overrides,
        )

    @property
    def registry(self) -> AccountRegistry:
        return AccountRegistry(self.redis, Keys(self.prefix))

    def cipher(self) -> TokenCipher:
        return TokenCipher(self.keys)

    def admin(self, **overrides: Any) -> AccountAdmin:
        settings = self.settings(**overrides)
        graph = GraphAdmin(settings.graph)
        self.admins.append(graph)
        return AccountAdmin(
            self.registry, graph, settings.accounts, TokenCipher.from_settings(settings.accounts)
        )

    async def worker(
        self,
        tokens: dict[str, str] | None = None,
        tokens_file: Path | None = None,
        **overrides: Any,
    ) -> tuple[TokenBook, Refresher]:
        """One worker's token book and refresher (what a worker process holds)."""
        settings = self.settings(tokens_file=tokens_file, **overrides)
        local = LocalTokens({a: SecretStr(t) for a, t in (tokens or {}).items()}, tokens_file)
        book = TokenBook(
            settings, self.registry, local, TokenCipher.from_settings(settings.accounts)
        )
        await book.start()
        graph = GraphAdmin(settings.graph)
        self.admins.append(graph)
        self.books.append(book)
        return book, Refresher(book, graph, account_pause_s=1.0)


MakeFleet = Callable[..., Awaitable[Fleet]]


@pytest.fixture
async def fleet(aredis: aioredis.Redis, emulator: Emulator) -> AsyncIterator[Fleet]:
    made = Fleet(aredis, emulator, f"acct-{uuid.uuid4().hex[:10]}", [SecretStr(new_key())], [], [])
    yield made
    for graph in made.admins:
        await graph.aclose()


async def all_redis_bytes(redis: aioredis.Redis, prefix: str) -> bytes:
    """Every key, field and value under a prefix (the registry is hashes and strings)."""
    out: list[bytes] = []
    async for key in redis.scan_iter(match=f"{prefix}:*", count=500):
        out.append(key)
        kind = await redis.type(key)
        if kind == b"hash":
            for field, value in (await resolve(redis.hgetall(key))).items():
                out += [field, value]
        elif kind == b"string":
            out.append(await redis.get(key) or b"")
        elif kind == b"set":
            out += list(await resolve(redis.smembers(key)))
    return b"\n".join(out)
