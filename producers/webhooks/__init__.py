"""Instagram webhooks as a library: the subscription handshake, the signature check and a
parser into typed events, for an upstream service's own web handler and for our gateway.

    GET  (handshake):  return subscription_challenge(request.query_params, VERIFY_TOKEN)
    POST (delivery):   body = await request.body()            # the raw bytes, as received
                       verify_signature(body, request.headers.get(SIGNATURE_HEADER), SECRETS)
                       batch = parse_webhook(body)            # then answer 200 quickly
                       for event in batch.events: ...         # de-duplicate on event.event_id

Each failure is a `WebhookError` with a machine-readable `code` and an HTTP `status` hint.
Sources are tagged as in the fact sheet (docs: /work/shared/docs/instagram-api.md §6).
"""

from __future__ import annotations

from ig_outbound.producers.webhooks.errors import WebhookError, WebhookErrorCode
from ig_outbound.producers.webhooks.events import (
    Attachment,
    AttachmentPayload,
    CommentEvent,
    EchoEvent,
    Entry,
    InboundEvent,
    MessageEditEvent,
    MessageEvent,
    OptinEvent,
    PostbackEvent,
    ReactionEvent,
    ReferralEvent,
    SeenEvent,
    StoryRef,
    TypedEvent,
    UnknownEvent,
    WebhookBatch,
)
from ig_outbound.producers.webhooks.parse import parse_webhook, parse_webhook_payload
from ig_outbound.producers.webhooks.signature import (
    SIGNATURE_HEADER,
    signature_header,
    verify_signature,
)
from ig_outbound.producers.webhooks.subscription import subscription_challenge

__all__ = [
    "SIGNATURE_HEADER",
    "Attachment",
    "AttachmentPayload",
    "CommentEvent",
    "EchoEvent",
    "Entry",
    "InboundEvent",
    "MessageEditEvent",
    "MessageEvent",
    "OptinEvent",
    "PostbackEvent",
    "ReactionEvent",
    "ReferralEvent",
    "SeenEvent",
    "StoryRef",
    "TypedEvent",
    "UnknownEvent",
    "WebhookBatch",
    "WebhookError",
    "WebhookErrorCode",
    "parse_webhook",
    "parse_webhook_payload",
    "signature_header",
    "subscription_challenge",
    "verify_signature",
]
