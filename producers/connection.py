"""How every part of ig-outbound reaches Redis: one parser, one story, both sides.

The producers (clients, CLI, DLQ tools) and the worker (ARQ's pool) read the same settings
through `redis_params()`: the URL (`redis://`, `rediss://` for TLS, `unix://`; user names and
percent-encoded passwords; `?db=`, `?ssl_cert_reqs=` and the other redis-py query options),
then the TLS files, Sentinel and timeouts from their own settings, which win over the URL.
With `redis_sentinels` set the URL's host is ignored: the primary is asked of the sentinels
by name (`redis_sentinel_master`), and the URL still carries the credentials, database and TLS.

`display` is the target without its password, for every message that names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import redis
import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.connection import parse_url
from redis.sentinel import Sentinel

from ig_outbound.producers.lean_connection import use_lean_connections
from ig_outbound.producers.settings import ClientSettings


class RedisTargetError(ValueError):
    """The Redis URL or its companion settings cannot be used (never shows a password)."""


@dataclass(frozen=True)
class RedisParams:
    """Everything needed to open a connection, parsed once."""

    host: str = "127.0.0.1"
    port: int = 6379
    db: int = 0
    unix_path: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    cert_reqs: str = "required"
    check_hostname: bool = True
    sentinels: tuple[tuple[str, int], ...] = ()
    sentinel_master: str = "mymaster"
    connect_timeout_s: float = 2.0
    socket_timeout_s: float | None = 5.0
    # Anything else from the URL's query string that redis-py understands (health checks...).
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def display(self) -> str:
        """The target as a URL without the password (for messages and logs)."""
        user = f"{quote(self.username)}:***@" if self.username else ""
        if self.password and not self.username:
            user = ":***@"
        if self.unix_path:
            return f"unix://{user}{self.unix_path}?db={self.db}"
        scheme = "rediss" if self.tls else "redis"
        if self.sentinels:
            hosts = ",".join(f"{h}:{p}" for h, p in self.sentinels)
            return f"{scheme}+sentinel://{user}{hosts}/{self.sentinel_master}/{self.db}"
        return f"{scheme}://{user}{self.host}:{self.port}/{self.db}"

    def connection_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of a redis-py client (sync or asyncio) for a direct connection."""
        kwargs: dict[str, Any] = {
            **self.extra,
            "db": self.db,
            "username": self.username,
            "password": self.password,
            "socket_connect_timeout": self.connect_timeout_s,
            "socket_timeout": self.socket_timeout_s,
        }
        if self.unix_path:
            kwargs["unix_socket_path"] = self.unix_path
        else:
            kwargs.update(host=self.host, port=self.port)
        if self.tls:
            kwargs.update(self.tls_kwargs())
        return kwargs

    def tls_kwargs(self) -> dict[str, Any]:
        return {
            "ssl": True,
            "ssl_ca_certs": self.ca_file,
            "ssl_certfile": self.cert_file,
            "ssl_keyfile": self.key_file,
            "ssl_cert_reqs": self.cert_reqs,
            "ssl_check_hostname": self.check_hostname,
        }


def _sentinel_hosts(entries: list[str]) -> tuple[tuple[str, int], ...]:
    hosts: list[tuple[str, int]] = []
    for entry in entries:
        host, sep, port = entry.strip().rpartition(":")
        if not sep or not host or not port.isdigit():
            raise RedisTargetError(f"sentinel {entry!r} is not host:port")
        hosts.append((host.strip("[]"), int(port)))
    return tuple(hosts)


def redis_params(settings: ClientSettings) -> RedisParams:
    """Parse the Redis URL and settings; raise `RedisTargetError` naming what is wrong."""
    try:
        parsed: dict[str, Any] = parse_url(settings.redis_url)  # type: ignore[no-untyped-call]
    except ValueError as exc:  # the message names the option, never the password
        raise RedisTargetError(f"IG_OUTBOUND_REDIS_URL: {exc}") from None
    connection_class = parsed.pop("connection_class", None)
    tls = connection_class is redis.SSLConnection
    query = {k: v for k, v in parsed.items() if k not in _URL_FIELDS}
    files = (settings.redis_tls_ca_file, settings.redis_tls_cert_file, settings.redis_tls_key_file)
    if any(files) and not tls:
        raise RedisTargetError(
            "IG_OUTBOUND_REDIS_TLS_* files are set but IG_OUTBOUND_REDIS_URL is not rediss://"
        )
    ca = settings.redis_tls_ca_file or query.pop("ssl_ca_certs", None)
    cert = settings.redis_tls_cert_file or query.pop("ssl_certfile", None)
    key = settings.redis_tls_key_file or query.pop("ssl_keyfile", None)
    return RedisParams(
        host=parsed.get("host", "127.0.0.1"),
        port=int(parsed.get("port", 6379)),
        db=int(parsed.get("db", 0)),
        unix_path=parsed.get("path"),
        username=parsed.get("username"),
        password=parsed.get("password"),
        tls=tls,
        ca_file=str(ca) if ca else None,
        cert_file=str(cert) if cert else None,
        key_file=str(key) if key else None,
        cert_reqs=str(query.pop("ssl_cert_reqs", "required")),
        # With TLS the server's name is checked unless the URL says otherwise.
        check_hostname=bool(query.pop("ssl_check_hostname", tls)),
        sentinels=_sentinel_hosts(settings.redis_sentinels),
        sentinel_master=settings.redis_sentinel_master,
        connect_timeout_s=float(
            query.pop("socket_connect_timeout", settings.redis_connect_timeout_s)
        ),
        socket_timeout_s=float(query.pop("socket_timeout", settings.redis_socket_timeout_s)),
        extra=query,
    )


_URL_FIELDS = frozenset({"host", "port", "db", "path", "username", "password"})


class _SyncSentinelClient(redis.Redis):
    """A client through the sentinels that also closes its connections to them."""

    def close(self) -> None:
        super().close()
        pool: Any = self.connection_pool  # a SentinelConnectionPool (untyped in redis-py)
        for sentinel in pool.sentinel_manager.sentinels:
            sentinel.close()


class _AsyncSentinelClient(aioredis.Redis):
    """An asyncio client through the sentinels that also closes its connections to them."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        pool: Any = self.connection_pool  # a SentinelConnectionPool (untyped in redis-py)
        for sentinel in pool.sentinel_manager.sentinels:
            await sentinel.aclose()


def sync_redis(params: RedisParams, **overrides: Any) -> redis.Redis:
    """A blocking client (through the sentinels when configured)."""
    kwargs = {**params.connection_kwargs(), **overrides}
    if not params.sentinels:
        return redis.Redis(**kwargs)
    for name in ("host", "port", "unix_socket_path"):
        kwargs.pop(name, None)
    # redis-py's Sentinel classes carry no annotations.
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        list(params.sentinels), sentinel_kwargs=_sentinel_kwargs(params), **kwargs
    )
    client: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
        params.sentinel_master, redis_class=_SyncSentinelClient
    )
    return client


def async_redis(
    params: RedisParams, *, redis_class: type[aioredis.Redis] = aioredis.Redis, **overrides: Any
) -> aioredis.Redis:
    """An asyncio client (through the sentinels when configured) of `redis_class` (the
    worker asks for ARQ's `ArqRedis`), on lean connections (producers/lean_connection.py)."""
    kwargs = {**params.connection_kwargs(), **overrides}
    if not params.sentinels:
        return use_lean_connections(redis_class(**kwargs))
    for name in ("host", "port", "unix_socket_path"):
        kwargs.pop(name, None)
    sentinel = AsyncSentinel(  # type: ignore[no-untyped-call]
        list(params.sentinels), sentinel_kwargs=_sentinel_kwargs(params), **kwargs
    )
    owning = type(f"Sentinel{redis_class.__name__}", (_AsyncSentinelClient, redis_class), {})
    client: aioredis.Redis = sentinel.master_for(params.sentinel_master, redis_class=owning)
    return use_lean_connections(client)


def _sentinel_kwargs(params: RedisParams) -> dict[str, Any]:
    """Sentinels are reached with the same TLS and timeouts (their own auth is not ours)."""
    kwargs: dict[str, Any] = {
        "socket_connect_timeout": params.connect_timeout_s,
        "socket_timeout": params.socket_timeout_s,
    }
    if params.tls:
        kwargs.update(params.tls_kwargs())
    return kwargs


def _with_url(settings: ClientSettings, url: str | None) -> ClientSettings:
    return settings if url is None else settings.model_copy(update={"redis_url": url})


def connect_sync(settings: ClientSettings, url: str | None = None) -> redis.Redis:
    """A blocking client for these settings (`url` replaces the settings' URL if given)."""
    return sync_redis(redis_params(_with_url(settings, url)))


def connect_async(settings: ClientSettings, url: str | None = None) -> aioredis.Redis:
    """An asyncio client for these settings (`url` replaces the settings' URL if given)."""
    return async_redis(redis_params(_with_url(settings, url)))
