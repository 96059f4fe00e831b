"""Is this Redis one that keeps what we write? Checked once by every worker and client.

ig-outbound's guarantees (nothing lost, nothing doubled, exactly one outcome) live in Redis:
an eviction policy other than `noeviction` may drop an idempotency record or a queued job
under memory pressure, and a primary without persistence (no AOF, no snapshots) forgets
everything when it restarts. Both are refused with one clear message unless
`IG_OUTBOUND_REDIS_ALLOW_DATA_LOSS=true` (tests, the demo, throwaway setups). Where `CONFIG`
is forbidden (managed Redis), that is said and the check is skipped: the provider decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.exceptions import NoPermissionError, ResponseError

from ig_outbound.producers.errors import OutboundError
from ig_outbound.producers.redis_util import resolve


class UnsafeRedisError(OutboundError):
    """Redis is configured so that it can lose our keys (the message says how to fix it)."""

    code = "unsafe_redis"


@dataclass(frozen=True)
class RedisSafety:
    """What Redis says about itself; None where it would not say."""

    eviction_policy: str | None
    appendonly: bool | None
    snapshots: bool | None
    role: str | None
    config_forbidden: bool = False

    def problems(self) -> list[str]:
        found: list[str] = []
        if self.eviction_policy not in (None, "noeviction"):
            found.append(
                f"maxmemory-policy is {self.eviction_policy!r}: Redis may evict queued "
                "intents and idempotency records (set maxmemory-policy noeviction)"
            )
        no_persistence = self.appendonly is False and self.snapshots is False
        if self.role in (None, "master") and no_persistence:
            found.append(
                "neither AOF nor snapshots are on: a restart loses every queued intent "
                "(set appendonly yes)"
            )
        return found

    def message(self) -> str:
        return "Redis can lose data: " + "; ".join(self.problems())


def _config(reply: Any, name: str) -> str | None:
    if isinstance(reply, dict):
        value = reply.get(name, reply.get(name.encode()))
        if value is not None:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


def _role(info: Any) -> str | None:
    role = info.get("role") if isinstance(info, dict) else None
    return role.decode() if isinstance(role, bytes) else role


def _from_replies(policy: Any, aof: Any, save: Any, info: Any) -> RedisSafety:
    snapshots = _config(save, "save")
    appendonly = _config(aof, "appendonly")
    return RedisSafety(
        eviction_policy=_config(policy, "maxmemory-policy"),
        appendonly=None if appendonly is None else appendonly == "yes",
        snapshots=None if snapshots is None else bool(snapshots.strip()),
        role=_role(info),
    )


_FORBIDDEN = (NoPermissionError, ResponseError)


def inspect_sync(client: Any) -> RedisSafety:
    """Read the configuration with a blocking client."""
    try:
        return _from_replies(
            client.config_get("maxmemory-policy"),
            client.config_get("appendonly"),
            client.config_get("save"),
            client.info("replication"),
        )
    except _FORBIDDEN:
        return RedisSafety(None, None, None, None, config_forbidden=True)


async def inspect_async(client: Any) -> RedisSafety:
    """Read the configuration with an asyncio client."""
    try:
        return _from_replies(
            await resolve(client.config_get("maxmemory-policy")),
            await resolve(client.config_get("appendonly")),
            await resolve(client.config_get("save")),
            await resolve(client.info("replication")),
        )
    except _FORBIDDEN:
        return RedisSafety(None, None, None, None, config_forbidden=True)


def verdict(safety: RedisSafety, *, allow_data_loss: bool) -> str | None:
    """Raise `UnsafeRedisError` for an unsafe Redis unless allowed; return a warning to log
    (data loss allowed, or CONFIG forbidden) or None when all is well."""
    if safety.config_forbidden:
        return "CONFIG is not allowed on this Redis: eviction policy and persistence unchecked"
    if not safety.problems():
        return None
    if not allow_data_loss:
        raise UnsafeRedisError(
            safety.message() + ". Set IG_OUTBOUND_REDIS_ALLOW_DATA_LOSS=true only for tests."
        )
    return safety.message() + " (allowed by IG_OUTBOUND_REDIS_ALLOW_DATA_LOSS)"
