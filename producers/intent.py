"""The message-intent contract: the single source of truth for what producers may ask.

An intent is an envelope (key, account, recipient, options) around exactly one ``content``,
a discriminated union on ``kind`` with one small model per message kind or sender action.
Limits are the Graph API's (``docs/instagram-api.md`` section 1 of the shared fact sheet), so a
bad intent is refused at enqueue instead of failing at Meta.

Kinds::

    text              text/link <= 1000 UTF-8 bytes, optional quick replies (<= 13)
    image | audio | video | file    one attachment by https URL or reusable attachment_id
    images            2..10 images in one message
    sticker           the like_heart sticker
    media_share       share one of the account's own posts
    generic_template  <= 10 elements, <= 3 postback/web_url buttons each
    button_template   text <= 640 chars, 1-3 buttons
    react | unreact   (sender action) emoji reaction on a message id
    typing_on | typing_off | mark_seen   (sender actions)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    StringConstraints,
    TypeAdapter,
    model_validator,
)

INTENT_VERSION = 1
MAX_TEXT_BYTES = 1000
MAX_QUICK_REPLIES = 13
MAX_QUICK_REPLY_TITLE = 20
MAX_PAYLOAD_CHARS = 1000
MAX_IMAGES = 10
MAX_TEMPLATE_ELEMENTS = 10
MAX_TEMPLATE_TITLE = 80
MAX_BUTTONS = 3
MAX_BUTTON_TEMPLATE_TEXT = 640
MAX_BUTTON_TITLE = 20
MAX_IDEMPOTENCY_KEY = 200
MAX_METADATA_BYTES = 1024
# The whole intent as JSON: generous for the largest legal template (10 cards of long URLs),
# and what bounds a dead letter's size. Deeper nesting than this is never a real intent.
MAX_INTENT_BYTES = 64 * 1024
MAX_INTENT_DEPTH = 32

GraphId = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9]{1,64}$"),
    Field(description="A numeric Graph id (IG_ID, IGSID, comment id, post id)."),
]
IdempotencyKey = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_IDEMPOTENCY_KEY, pattern=r"^[\x21-\x7e]+$"),
    Field(description="Producer-chosen key, printable ASCII without spaces, e.g. '<mid>:reply:0'."),
]
MessageId = Annotated[str, StringConstraints(min_length=1, max_length=512, pattern=r"^\S+$")]
AttachmentId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^\S+$")]


_HTTP_URL: TypeAdapter[HttpUrl] = TypeAdapter(HttpUrl)
MAX_URL_CHARS = 2048


def _http_url(url: str) -> str:
    """Check an absolute http(s) URL but keep the producer's exact text (pydantic's URL type
    would normalise it, e.g. add a trailing slash, and Graph would get another URL)."""
    _HTTP_URL.validate_python(url)
    return url


def _https_only(url: str) -> str:
    if not url.lower().startswith("https://"):
        raise ValueError("media URLs must use https")
    return url


LinkUrl = Annotated[str, StringConstraints(max_length=MAX_URL_CHARS), AfterValidator(_http_url)]
HttpsUrl = Annotated[LinkUrl, AfterValidator(_https_only)]


def _utf8_bounded(text: str) -> str:
    size = len(text.encode("utf-8"))
    if size > MAX_TEXT_BYTES:
        raise ValueError(f"text is {size} UTF-8 bytes; the limit is {MAX_TEXT_BYTES}")
    return text


MessageText = Annotated[str, StringConstraints(min_length=1), AfterValidator(_utf8_bounded)]


TemplateText = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEMPLATE_TITLE)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


# --- pieces -------------------------------------------------------------------------------


class QuickReply(_Model):
    """A text quick reply (the only content type Instagram still accepts)."""

    content_type: Literal["text"] = "text"
    title: Annotated[str, StringConstraints(min_length=1, max_length=MAX_QUICK_REPLY_TITLE)]
    payload: Annotated[str, StringConstraints(min_length=1, max_length=MAX_PAYLOAD_CHARS)]


class PostbackButton(_Model):
    type: Literal["postback"] = "postback"
    title: Annotated[str, StringConstraints(min_length=1, max_length=MAX_BUTTON_TITLE)]
    payload: Annotated[str, StringConstraints(min_length=1, max_length=MAX_PAYLOAD_CHARS)]


class WebUrlButton(_Model):
    type: Literal["web_url"] = "web_url"
    title: Annotated[str, StringConstraints(min_length=1, max_length=MAX_BUTTON_TITLE)]
    url: LinkUrl


Button = Annotated[PostbackButton | WebUrlButton, Field(discriminator="type")]


class DefaultAction(_Model):
    type: Literal["web_url"] = "web_url"
    url: LinkUrl


class TemplateElement(_Model):
    """One card of a generic template; Graph needs one property besides the title."""

    title: TemplateText
    subtitle: (
        Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEMPLATE_TITLE)] | None
    ) = None
    image_url: HttpsUrl | None = None
    default_action: DefaultAction | None = None
    buttons: Annotated[list[Button], Field(max_length=MAX_BUTTONS)] = Field(default_factory=list)

    @model_validator(mode="after")
    def _more_than_title(self) -> Self:
        if not (self.subtitle or self.image_url or self.default_action or self.buttons):
            raise ValueError(
                "a template element needs a subtitle, image_url, default_action or buttons"
            )
        return self


class MediaRef(_Model):
    """An attachment source: a public https URL or a reusable attachment_id, never both."""

    url: HttpsUrl | None = None
    attachment_id: AttachmentId | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.url is None) == (self.attachment_id is None):
            raise ValueError("give exactly one of url or attachment_id")
        return self


# A conversation's recipient part: `id:<IGSID>` or `comment:<comment id>` (the enqueue script
# gets the same prefixes from the generated prelude).
RECIPIENT_ID_PREFIX = "id:"
RECIPIENT_COMMENT_PREFIX = "comment:"


class Recipient(_Model):
    """Exactly one person: an IGSID, or a comment id for a private reply."""

    id: GraphId | None = None
    comment_id: GraphId | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.id is None) == (self.comment_id is None):
            raise ValueError("recipient needs exactly one of id or comment_id")
        return self

    @property
    def key(self) -> str:
        """The conversation part of an ordering key: `id:<IGSID>` or `comment:<id>`."""
        if self.id is not None:
            return RECIPIENT_ID_PREFIX + self.id
        return RECIPIENT_COMMENT_PREFIX + str(self.comment_id)


# --- contents: one small model per kind -----------------------------------------------------


QuickReplies = Annotated[list[QuickReply], Field(min_length=1, max_length=MAX_QUICK_REPLIES)]


class TextContent(_Model):
    kind: Literal["text"]
    text: MessageText
    quick_replies: (
        Annotated[list[QuickReply], Field(min_length=1, max_length=MAX_QUICK_REPLIES)] | None
    ) = None


class _MediaContent(MediaRef):
    """One attachment by URL or attachment_id (the source rule is MediaRef's)."""


class ImageContent(_MediaContent):
    """An image or GIF."""

    kind: Literal["image"]


class AudioContent(_MediaContent):
    kind: Literal["audio"]


class VideoContent(_MediaContent):
    kind: Literal["video"]


class FileContent(_MediaContent):
    """A PDF file."""

    kind: Literal["file"]


class ImagesContent(_Model):
    """Several images in one message (Graph: `attachments`, up to ten)."""

    kind: Literal["images"]
    images: Annotated[list[MediaRef], Field(min_length=2, max_length=MAX_IMAGES)]


class StickerContent(_Model):
    kind: Literal["sticker"]
    sticker: Literal["like_heart"] = "like_heart"


class MediaShareContent(_Model):
    """Share one of the account's own posts."""

    kind: Literal["media_share"]
    post_id: GraphId


class GenericTemplateContent(_Model):
    kind: Literal["generic_template"]
    elements: Annotated[
        list[TemplateElement], Field(min_length=1, max_length=MAX_TEMPLATE_ELEMENTS)
    ]


class ButtonTemplateContent(_Model):
    kind: Literal["button_template"]
    text: Annotated[str, StringConstraints(min_length=1, max_length=MAX_BUTTON_TEMPLATE_TEXT)]
    buttons: Annotated[list[Button], Field(min_length=1, max_length=MAX_BUTTONS)]


class ReactContent(_Model):
    kind: Literal["react"]
    message_id: MessageId
    reaction: Annotated[str, StringConstraints(min_length=1, max_length=32)] = "love"


class UnreactContent(_Model):
    kind: Literal["unreact"]
    message_id: MessageId


class TypingOnContent(_Model):
    kind: Literal["typing_on"]


class TypingOffContent(_Model):
    kind: Literal["typing_off"]


class MarkSeenContent(_Model):
    kind: Literal["mark_seen"]


Content = Annotated[
    TextContent
    | ImageContent
    | AudioContent
    | VideoContent
    | FileContent
    | ImagesContent
    | StickerContent
    | MediaShareContent
    | GenericTemplateContent
    | ButtonTemplateContent
    | ReactContent
    | UnreactContent
    | TypingOnContent
    | TypingOffContent
    | MarkSeenContent,
    Field(discriminator="kind"),
]

MESSAGE_KINDS = frozenset(
    {
        "text",
        "image",
        "audio",
        "video",
        "file",
        "images",
        "sticker",
        "media_share",
        "generic_template",
        "button_template",
    }
)
SENDER_ACTION_KINDS = frozenset({"react", "unreact", "typing_on", "typing_off", "mark_seen"})
ALL_KINDS = MESSAGE_KINDS | SENDER_ACTION_KINDS


class Priority(StrEnum):
    """Which lane of its account's rate budget an intent waits in: interactive intents (a
    reply a person waits for) go before queued bulk ones (campaigns, backfills)."""

    INTERACTIVE = "interactive"
    BULK = "bulk"


class Tag(StrEnum):
    """Message tags Instagram accepts (only HUMAN_AGENT; see the fact sheet section 1.2)."""

    HUMAN_AGENT = "HUMAN_AGENT"


def _small_metadata(value: dict[str, Any]) -> dict[str, Any]:
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_METADATA_BYTES:
        raise ValueError(f"metadata is {size} bytes as JSON; the limit is {MAX_METADATA_BYTES}")
    return value


# NaN and infinities are not JSON: refused here, as the enqueue script refuses them.
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Metadata = Annotated[
    dict[str, str | int | FiniteFloat | bool | None], AfterValidator(_small_metadata)
]


class MessageIntent(_Model):
    """What an upstream service asks ig-outbound to say, once, to one Instagram user."""

    v: Literal[1] = Field(default=1, description="Contract version.")
    idempotency_key: IdempotencyKey
    account_id: GraphId = Field(description="The IG professional account (IG_ID) that sends.")
    recipient: Recipient
    content: Content
    reply_to: MessageId | None = Field(
        default=None, description="Reply to this message id (mid); messages only."
    )
    tag: Tag | None = Field(default=None, description="HUMAN_AGENT for human-written messages.")
    automated: bool = Field(default=True, description="False if a human wrote this message.")
    not_before: AwareDatetime | None = Field(default=None, description="Do not send before.")
    not_after: AwareDatetime | None = Field(default=None, description="Deadline; then expired.")
    window_hint: AwareDatetime | None = Field(
        default=None, description="When the user last wrote, if the producer knows."
    )
    metadata: Metadata = Field(default_factory=dict, description="Echoed in the outcome.")
    priority: Priority = Field(
        default=Priority.INTERACTIVE,
        description="interactive (replies; the default) goes before queued bulk (campaigns).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems = cross_field_problems(self.model_dump(mode="python"))
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def kind(self) -> str:
        return self.content.kind

    @property
    def is_sender_action(self) -> bool:
        return self.content.kind in SENDER_ACTION_KINDS

    def conversation(self) -> str:
        """`<account>:<recipient key>`: the unit of ordering."""
        return f"{self.account_id}:{self.recipient.key}"

    def deadline(self, default_deadline_s: float, now: datetime) -> datetime:
        """`not_after`, or the settings' default counted from `now` (the enqueue time)."""
        return self.not_after or now + timedelta(seconds=default_deadline_s)


def cross_field_problems(data: Mapping[str, Any]) -> list[str]:
    """Rules that span fields. Works on raw input too, so they are reported even when a
    field is also wrong (pydantic skips an after-validator once any field failed)."""
    problems: list[str] = []
    content = data.get("content")
    kind = content.get("kind") if isinstance(content, Mapping) else None
    recipient = data.get("recipient")
    comment_id = recipient.get("comment_id") if isinstance(recipient, Mapping) else None
    if kind in SENDER_ACTION_KINDS and data.get("reply_to") is not None:
        problems.append(f"reply_to is for messages, not the sender action {kind!r}")
    if kind in SENDER_ACTION_KINDS and data.get("tag") is not None:
        problems.append(f"tag is for messages, not the sender action {kind!r}")
    if comment_id is not None and kind is not None and kind != "text":
        problems.append("a private reply (recipient.comment_id) carries a text message")
    if comment_id is not None and data.get("reply_to") is not None:
        problems.append("a private reply cannot reply_to a message")
    if data.get("tag") in (Tag.HUMAN_AGENT, "HUMAN_AGENT") and data.get("automated", True) is True:
        problems.append("HUMAN_AGENT is only for messages a human wrote: set automated=false")
    not_before, not_after = _aware(data.get("not_before")), _aware(data.get("not_after"))
    if not_before and not_after and not_before >= not_after:
        problems.append("not_before must be earlier than not_after")
    return problems


def _aware(value: object) -> datetime | None:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value
    return None


def intent_json_schema() -> dict[str, Any]:
    """The JSON Schema for producers in other languages."""
    return MessageIntent.model_json_schema(mode="validation")
