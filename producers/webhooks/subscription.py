"""The subscription handshake: Meta's `GET <callback>?hub.mode=subscribe&hub.challenge=…
&hub.verify_token=…` when a callback URL is configured [IGL-WH, MSG-WH]."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from ig_outbound.producers.webhooks.errors import WebhookError


def subscription_challenge(params: Mapping[str, str], verify_token: str) -> str:
    """The `hub.challenge` to answer (200, `text/plain`, the value as is), or `WebhookError`.

    Refused with `not_a_subscription` (400) when `hub.mode` is not `subscribe`,
    `wrong_verify_token` (403, what Meta's sample code answers [IGL-WH]) when `hub.verify_token`
    differs from `verify_token` (compared in constant time), `missing_challenge` (400) when
    there is no challenge. Only the dotted names are read: Graph sends dots (`hub_mode` is a
    PHP artefact [IGL-WH]). Answer the challenge as `text/plain`: it is echoed input.
    An empty `verify_token` is a configuration error (`ValueError`): it would let any request
    without a token through.
    """
    if not verify_token:
        raise ValueError("verify_token must not be empty")
    if params.get("hub.mode") != "subscribe":
        raise WebhookError("not_a_subscription", "hub.mode is not 'subscribe'")
    token = params.get("hub.verify_token")
    # Bytes, so a non-ASCII token compares in constant time too (str needs ASCII).
    if token is None or not hmac.compare_digest(token.encode(), verify_token.encode()):
        raise WebhookError("wrong_verify_token", "hub.verify_token does not match")
    challenge = params.get("hub.challenge")
    if not challenge:
        raise WebhookError("missing_challenge", "hub.challenge is missing")
    return challenge
