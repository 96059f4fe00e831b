"""Settings of the account registry: the encryption keys, the refresh policy, what new
accounts subscribe to. Read by the worker (``IG_OUTBOUND_ACCOUNTS__*``), ``ig-outbound
accounts`` and the gateway's accounts API, which all see the same environment."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from pydantic import BaseModel, Field, SecretStr

from ig_outbound.graph.settings import GraphSettings
from ig_outbound.producers.settings import ClientSettings

DAY_S: Final = 24 * 3600
# Meta: a long-lived token lives 60 days and may be refreshed once it is 24 hours old.
TOKEN_LIFETIME_S: Final = 60 * DAY_S
MIN_REFRESH_AGE_S: Final = DAY_S

# The webhook fields the seed lists for messaging, plus comments (private replies). The fact
# sheet notes two spellings in Meta's own pages; these are the Send API page's.
DEFAULT_SUBSCRIBE_FIELDS: Final = (
    "messages",
    "messaging_optins",
    "messaging_postbacks",
    "messaging_reactions",
    "messaging_referrals",
    "messaging_seen",
    "comments",
)


class AccountsSection(BaseModel):
    """``IG_OUTBOUND_ACCOUNTS__*``."""

    # Fernet keys (urlsafe base64 of 32 bytes; `ig-outbound accounts new-key` makes one).
    # The first encrypts; every key decrypts, so a rotation lists the new key first and the
    # old one second until `ig-outbound accounts rekey` has re-encrypted every entry.
    encryption_keys: list[SecretStr] = Field(default_factory=list)
    # The same as a file, one key per line (a Kubernetes Secret volume); read after the list.
    encryption_keys_file: Path | None = None
    # Refresh a long-lived token once it is this old ...
    refresh_after_s: int = Field(default=7 * DAY_S, ge=MIN_REFRESH_AGE_S)
    # ... and whatever its age once it expires within this (never let one lapse).
    refresh_before_expiry_s: int = Field(default=10 * DAY_S, ge=3600)
    # A failed refresh is tried again after a capped exponential backoff.
    refresh_retry_base_s: float = Field(default=60.0, gt=0)
    refresh_retry_cap_s: float = Field(default=3600.0, gt=0)
    # One worker of the fleet refreshes an account at a time: it holds a lease this long.
    refresh_lease_s: float = Field(default=60.0, gt=0)
    # How often each worker looks for tokens due a refresh and updates the account gauges.
    refresh_check_s: float = Field(default=30.0, gt=0)
    # How often each worker checks the registry for changes (one GET) and the tokens file.
    poll_s: float = Field(default=1.0, gt=0)
    # Tokens expiring within this count as "expiring soon" (metric, `accounts list`).
    expiring_soon_s: int = Field(default=7 * DAY_S, ge=0)
    # Webhook fields `accounts add` subscribes a new account to (`subscribed_apps`).
    subscribe_fields: list[str] = Field(
        default_factory=lambda: list(DEFAULT_SUBSCRIBE_FIELDS), min_length=1
    )


class AccountToolSettings(ClientSettings):
    """What ``ig-outbound accounts`` and the gateway's accounts API read."""

    graph: GraphSettings = GraphSettings()
    accounts: AccountsSection = AccountsSection()
