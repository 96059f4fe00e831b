"""Meta's webhook payloads for Instagram (fact sheet §6), built from plain values, and signing.

Envelope: ``{"object":"instagram","entry":[...]}``. A messaging entry is
``{"id":<IG_ID>,"time":<ms>,"messaging":[{"sender":{"id"},"recipient":{"id"},"timestamp":<ms>,
<event>}]}``; a comment entry is the IG-login flat form ``{"id","time","field":"comments",
"value":{...}}`` (its ``time`` unit is UNCONFIRMED, §10.8: milliseconds here, like messaging).
The body is compact JSON with non-ASCII escaped (``\\u00e4``), as Meta signs it; the signature
is ``sha256=`` + lowercase hex HMAC-SHA256 of those exact bytes with the app secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any

JsonDict = dict[str, Any]

SIGNATURE_HEADER = "X-Hub-Signature-256"
MEDIA_TYPES = frozenset({"image", "audio", "video", "file"})
# Reactions Graph reports (v12+, MIG-WH) and the emoji each stands for.
REACTION_EMOJI = {
    "love": "\u2764\ufe0f",
    "like": "\U0001f44d",
    "laugh": "\U0001f606",
    "wow": "\U0001f62e",
    "sad": "\U0001f622",
    "angry": "\U0001f621",
    "other": "\U0001f525",
}


def ms(epoch_s: float) -> int:
    return int(epoch_s * 1000)


def render(entries: Sequence[JsonDict]) -> bytes:
    payload = {"object": "instagram", "entry": list(entries)}
    return json.dumps(payload, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def sign(app_secret: str, body: bytes) -> str:
    digest = hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def cdn_url(seed: str) -> str:
    """A stable URL shaped like Meta's messaging CDN (never the URL the business sent)."""
    digest = hashlib.sha256(seed.encode("utf-8")).hexdigest()
    asset_id = str(int(digest[:14], 16))
    return f"https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id={asset_id}&signature={digest[14:58]}"


# --- entries ----------------------------------------------------------------------------


def messaging_entry(
    ig_id: str, sent_at: float, sender: str, recipient: str, timestamp: float, event: JsonDict
) -> JsonDict:
    item = {
        "sender": {"id": sender},
        "recipient": {"id": recipient},
        "timestamp": ms(timestamp),
        **event,
    }
    return {"id": ig_id, "time": ms(sent_at), "messaging": [item]}


def comment_entry(
    ig_id: str,
    sent_at: float,
    *,
    comment_id: str,
    igsid: str,
    username: str,
    text: str,
    media_id: str,
) -> JsonDict:
    value = {
        "id": comment_id,
        "from": {"id": igsid, "username": username},
        "text": text,
        "media": {"id": media_id, "media_product_type": "FEED"},
    }
    return {"id": ig_id, "time": ms(sent_at), "field": "comments", "value": value}


# --- events ---------------------------------------------------------------------------------


def user_message(
    mid: str,
    *,
    text: str | None = None,
    image: bool = False,
    quick_reply_payload: str | None = None,
    reply_to_mid: str | None = None,
) -> JsonDict:
    message: JsonDict = {"mid": mid}
    if text is not None:
        message["text"] = text
    if image:
        message["attachments"] = [{"type": "image", "payload": {"url": cdn_url(mid)}}]
    if quick_reply_payload is not None:
        message["quick_reply"] = {"payload": quick_reply_payload}
    if reply_to_mid is not None:
        message["reply_to"] = {"mid": reply_to_mid}
    return {"message": message}


def reaction(mid: str, name: str | None) -> JsonDict:
    """A reaction to message ``mid``; ``name`` None is an unreact (no reaction/emoji keys)."""
    if name is None:
        return {"reaction": {"mid": mid, "action": "unreact"}}
    emoji = REACTION_EMOJI.get(name, REACTION_EMOJI["other"])
    return {"reaction": {"mid": mid, "action": "react", "reaction": name, "emoji": emoji}}


def postback(mid: str, title: str, payload: str) -> JsonDict:
    return {"postback": {"mid": mid, "title": title, "payload": payload}}


def seen(mid: str) -> JsonDict:
    # Instagram reports read.mid, not Messenger's read.watermark (IGL-WHX).
    return {"read": {"mid": mid}}


def echo(mid: str, body: Mapping[str, Any]) -> JsonDict:
    """The ``message`` of a business message's echo, from the body Graph accepted."""
    sent: Mapping[str, Any] = body["message"]
    message: JsonDict = {"mid": mid}
    if "text" in sent:
        message["text"] = sent["text"]
    attachments = sent.get("attachments", sent.get("attachment"))
    if attachments is not None:
        items = [attachments] if isinstance(attachments, dict) else list(attachments)
        message["attachments"] = [_echo_attachment(a, f"{mid}:{i}") for i, a in enumerate(items)]
    reply_to = body.get("reply_to")
    if isinstance(reply_to, dict) and "mid" in reply_to:
        message["reply_to"] = {"mid": reply_to["mid"]}
    message["is_echo"] = True
    return {"message": message}


def _echo_attachment(sent: Mapping[str, Any], seed: str) -> JsonDict:
    kind = sent.get("type")
    if kind in MEDIA_TYPES:
        # Media is re-hosted: the echo carries Meta's CDN URL, not the one that was sent.
        return {"type": kind, "payload": {"url": cdn_url(seed)}}
    if kind == "like_heart":
        return {"type": "image", "payload": {"url": cdn_url(seed)}}  # stickers arrive as image
    if kind == "MEDIA_SHARE":
        post_id = str(sent["payload"]["id"])
        return {"type": "ig_post", "payload": {"ig_post_media_id": post_id, "url": cdn_url(seed)}}
    # Templates: Messenger's echo shape (type template + the payload sent); IG UNCONFIRMED.
    return {"type": "template", "payload": sent.get("payload")}
