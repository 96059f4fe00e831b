"""Settings both sides need: where Redis is and how keys and intents live in it.

Read from the environment with the prefix ``IG_OUTBOUND_`` (pydantic-settings). A producer
needs only these; the worker's own settings (``ig_outbound.worker.settings.Settings``) extend
them, so every setting is defined once.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# A record must outlive any intent; the enqueue script refuses shorter retentions too.
MIN_RETENTION_S = 60


class ClientSettings(BaseSettings):
    """What producers, the CLI and the worker share (see the README's settings table)."""

    model_config = SettingsConfigDict(
        env_prefix="IG_OUTBOUND_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    # redis:// (rediss:// for TLS, unix:// for a socket); user names and percent-encoded
    # passwords work; see producers/connection.py for the query options.
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Past one Redis primary: the Redis URLs of N independent primaries, in shard order (a
    # JSON list). Accounts are spread over them by `producers/shards.py`'s rule; the order is
    # part of the rule (never reorder; only append, see docs/scaling.md). Empty: one shard,
    # `redis_url`. Every other Redis setting (TLS files, timeouts, Sentinel) holds for each.
    shards: list[str] = Field(default_factory=list, max_length=1024)
    # TLS: a CA bundle to verify the server, and a client certificate and key (mutual TLS).
    redis_tls_ca_file: Path | None = None
    redis_tls_cert_file: Path | None = None
    redis_tls_key_file: Path | None = None
    # Sentinel: `host:port` of each sentinel; the primary is found by this name.
    redis_sentinels: list[str] = Field(default_factory=list)
    redis_sentinel_master: str = Field(default="mymaster", min_length=1)
    redis_connect_timeout_s: float = Field(default=2.0, gt=0)
    # A frozen Redis fails a call after this long instead of hanging it.
    redis_socket_timeout_s: float = Field(default=5.0, gt=0)
    # Accept a Redis that may lose our keys (an eviction policy other than noeviction, or a
    # primary without persistence). For tests and the demo; production refuses it.
    redis_allow_data_loss: bool = False
    # Logs of ig-outbound's processes (worker, gateway); producers' own logging is theirs.
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"
    # Prefix of every key this project owns (ARQ's own keys are fixed by ARQ: `arq:*`).
    key_prefix: str = Field(default="igo", pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    idempotency_retention_s: int = Field(default=7 * 24 * 3600, ge=MIN_RETENTION_S)
    # Deadline given to intents that carry no `not_after`.
    default_deadline_s: int = Field(default=24 * 3600, ge=1)

    @field_validator("shards")
    @classmethod
    def _distinct_shards(cls, value: list[str]) -> list[str]:
        # Messages name positions, never URLs (a URL may carry a password).
        blank = [i for i, url in enumerate(value) if not url.strip()]
        if blank:
            raise ValueError(f"shard {blank[0]} has an empty URL")
        seen: dict[str, int] = {}
        for i, url in enumerate(value):
            if url in seen:
                raise ValueError(f"shards {seen[url]} and {i} are the same URL")
            seen[url] = i
        return value

    def shard_urls(self) -> list[str]:
        """The Redis URL of each shard, in shard order (`[redis_url]` without shards)."""
        return list(self.shards) or [self.redis_url]


@lru_cache(maxsize=1)
def get_client_settings() -> ClientSettings:
    """The process-wide client settings, read once from the environment."""
    return ClientSettings()
