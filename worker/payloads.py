"""Intent -> Graph request body, exactly as Meta documents it (golden tests pin each kind)."""

from __future__ import annotations

from typing import Any

from ig_outbound.producers.intent import (
    AudioContent,
    ButtonTemplateContent,
    Content,
    FileContent,
    GenericTemplateContent,
    ImageContent,
    ImagesContent,
    MarkSeenContent,
    MediaRef,
    MediaShareContent,
    MessageIntent,
    ReactContent,
    StickerContent,
    TemplateElement,
    TextContent,
    TypingOffContent,
    TypingOnContent,
    UnreactContent,
    VideoContent,
    WebUrlButton,
)

Body = dict[str, Any]


def _media_payload(
    ref: MediaRef | ImageContent | AudioContent | VideoContent | FileContent,
) -> Body:
    if ref.url is not None:
        return {"url": str(ref.url)}
    return {"attachment_id": ref.attachment_id}


def _button(button: Any) -> Body:
    if isinstance(button, WebUrlButton):
        return {"type": "web_url", "url": str(button.url), "title": button.title}
    return {"type": "postback", "title": button.title, "payload": button.payload}


def _element(element: TemplateElement) -> Body:
    out: Body = {"title": element.title}
    if element.image_url is not None:
        out["image_url"] = str(element.image_url)
    if element.subtitle is not None:
        out["subtitle"] = element.subtitle
    if element.default_action is not None:
        out["default_action"] = {"type": "web_url", "url": str(element.default_action.url)}
    if element.buttons:
        out["buttons"] = [_button(b) for b in element.buttons]
    return out


def _message(content: Content) -> Body:
    match content:
        case TextContent(text=text, quick_replies=None):
            return {"text": text}
        case TextContent(text=text, quick_replies=replies):
            return {
                "text": text,
                "quick_replies": [
                    {"content_type": "text", "title": q.title, "payload": q.payload}
                    for q in replies or []
                ],
            }
        case ImageContent() | AudioContent() | VideoContent() | FileContent():
            return {"attachment": {"type": content.kind, "payload": _media_payload(content)}}
        case ImagesContent(images=images):
            return {
                "attachments": [{"type": "image", "payload": _media_payload(i)} for i in images]
            }
        case StickerContent(sticker=sticker):
            return {"attachment": {"type": sticker}}
        case MediaShareContent(post_id=post_id):
            return {"attachment": {"type": "MEDIA_SHARE", "payload": {"id": post_id}}}
        case GenericTemplateContent(elements=elements):
            return {
                "attachment": {
                    "type": "template",
                    "payload": {
                        "template_type": "generic",
                        "elements": [_element(e) for e in elements],
                    },
                }
            }
        case ButtonTemplateContent(text=text, buttons=buttons):
            return {
                "attachment": {
                    "type": "template",
                    "payload": {
                        "template_type": "button",
                        "text": text,
                        "buttons": [_button(b) for b in buttons],
                    },
                }
            }
    raise TypeError(f"not a message kind: {content.kind}")  # pragma: no cover


def build_body(intent: MessageIntent) -> Body:
    """The JSON body to POST to `/<IG_ID>/messages` for this intent."""
    recipient: Body = (
        {"id": intent.recipient.id}
        if intent.recipient.id is not None
        else {"comment_id": intent.recipient.comment_id}
    )
    content = intent.content
    match content:
        case ReactContent(message_id=mid, reaction=reaction):
            return {
                "recipient": recipient,
                "sender_action": "react",
                "payload": {"message_id": mid, "reaction": reaction},
            }
        case UnreactContent(message_id=mid):
            return {
                "recipient": recipient,
                "sender_action": "unreact",
                "payload": {"message_id": mid},
            }
        case TypingOnContent() | TypingOffContent() | MarkSeenContent():
            # Graph wants only `recipient` and `sender_action` here.
            return {"recipient": recipient, "sender_action": content.kind}
    body: Body = {"recipient": recipient}
    if intent.tag is not None:
        body["messaging_type"] = "MESSAGE_TAG"
        body["tag"] = intent.tag.value
    elif isinstance(content, TextContent) and content.quick_replies:
        # As in Meta's quick-reply sample.
        body["messaging_type"] = "RESPONSE"
    body["message"] = _message(content)
    if intent.reply_to is not None:
        body["reply_to"] = {"mid": intent.reply_to}
    return body


def media_urls(intent: MessageIntent) -> list[str]:
    """The URLs of an intent's media (what Graph will fetch): none for attachment ids."""
    content = intent.content
    if isinstance(content, ImageContent | AudioContent | VideoContent | FileContent):
        return [content.url] if content.url is not None else []
    if isinstance(content, ImagesContent):
        return [image.url for image in content.images if image.url is not None]
    return []
