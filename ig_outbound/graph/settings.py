"""Where and how ig-outbound talks to the Graph API (the worker's sends, account admin calls).

Read as part of the worker's settings (``IG_OUTBOUND_GRAPH__*``) and of the account tools'
(``ig-outbound accounts``, the gateway's accounts API), so all of them reach the same Graph.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, Field, field_validator


class GraphSettings(BaseModel):
    """Where and how the worker talks to the Graph API."""

    base_url: str = "https://graph.instagram.com"

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        """An http(s) URL with a host, kept as written (no trailing slash added): a typo
        fails the start instead of every send."""
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or " " in value:
            raise ValueError("must be an http(s) URL with a host, e.g. https://graph.instagram.com")
        return value.rstrip("/")

    api_version: str = Field(default="v23.0", pattern=r"^v\d{1,3}\.\d$")
    # `/<IG_ID>/messages` by default; `/me/messages` resolves the account from the token.
    use_me_endpoint: bool = False
    # Their sum stays below the job timeout, so a send always ends before its lease does.
    connect_timeout_s: float = Field(default=3.0, gt=0)
    read_timeout_s: float = Field(default=10.0, gt=0)
    write_timeout_s: float = Field(default=3.0, gt=0)
    pool_timeout_s: float = Field(default=2.0, gt=0)
    max_connections: int = Field(default=50, ge=1)
    # At least a worker's `max_jobs` (40): a busy worker would otherwise close the extra
    # connections after each send and open them again for the next.
    max_keepalive_connections: int = Field(default=50, ge=1)
