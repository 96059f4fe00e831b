"""Where and how ig-outbound talks to the Graph API (the worker's sends, account admin calls).

Read as part of the worker's settings (``IG_OUTBOUND_GRAPH__*``) and of the account tools'
(``ig-outbound accounts``, the gateway's accounts API), so all of them reach the same Graph.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class GraphSettings(BaseModel):
    """Where and how the worker talks to the Graph API."""

    base_url: str = "https://graph.instagram.com"
    api_version: str = Field(default="v23.0", pattern=r"^v\d{1,3}\.\d$")
    # `/<IG_ID>/messages` by default; `/me/messages` resolves the account from the token.
    use_me_endpoint: bool = False
    # Their sum stays below the job timeout, so a send always ends before its lease does.
    connect_timeout_s: float = Field(default=3.0, gt=0)
    read_timeout_s: float = Field(default=10.0, gt=0)
    write_timeout_s: float = Field(default=3.0, gt=0)
    pool_timeout_s: float = Field(default=2.0, gt=0)
    max_connections: int = Field(default=50, ge=1)
    max_keepalive_connections: int = Field(default=20, ge=1)
