"""The gateway's settings: the client settings (Redis, key prefix, ...) plus its own section,
read from the environment like everything else (`IG_OUTBOUND_GATEWAY__*`)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import BaseModel, Field, SecretStr

from ig_outbound.accounts.settings import AccountToolSettings
from ig_outbound.producers.inbound import INBOUND_DEDUPE_S, INBOUND_STREAM_MAXLEN


class GatewaySection(BaseModel):
    """The webhook endpoint and the HTTP intake."""

    host: str = "0.0.0.0"  # all IPv4 interfaces
    port: int = Field(default=8080, ge=0, le=65535)
    # The app secret(s) Meta signs webhooks with; two during a rotation (either verifies).
    app_secrets: list[SecretStr] = Field(default_factory=list)
    # What the App Dashboard's webhook subscription sends as hub.verify_token.
    verify_token: SecretStr | None = None
    # Bearer tokens producers without Redis use on the intake (`POST /v1/intents`).
    intake_tokens: list[SecretStr] = Field(default_factory=list)
    # Bearer tokens of the accounts API (`/v1/accounts`); none: the API answers 403.
    admin_tokens: list[SecretStr] = Field(default_factory=list)
    # A webhook body or intake request larger than this is refused (413).
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # Acknowledged webhooks not yet processed: beyond this the gateway answers 429 (Meta
    # retries later), so a burst beyond capacity is slowed, never dropped.
    max_backlog: int = Field(default=50_000, ge=1)
    # Requests in flight beyond this are answered 503 by the server (uvicorn).
    max_concurrency: int = Field(default=1000, ge=1)
    inbound_stream_maxlen: int = Field(default=INBOUND_STREAM_MAXLEN, ge=100)
    dedupe_s: int = Field(default=INBOUND_DEDUPE_S, ge=60)


class GatewaySettings(AccountToolSettings):
    """Every setting `ig-outbound gateway` reads (see the README's settings table): the
    client's, Graph's and the account registry's (for the accounts API), and its own."""

    gateway: GatewaySection = GatewaySection()


@lru_cache(maxsize=1)
def get_gateway_settings() -> GatewaySettings:
    return GatewaySettings()
