"""The typed events of an Instagram webhook body, one small frozen model per event type.

`InboundEvent` is their union, discriminated by `type`. Every event has:

- `account_id`: the IG_ID of our account, the `entry.id` it came under [IGL-WHX];
- `user_id`: the IGSID of the other party, which keys the conversation: `sender.id` for what
  the user did, `recipient.id` for what our account did (echoes); for comments `value.from.id`;
- `timestamp_ms`: when it happened, in ms (`messaging[].timestamp`; for comments `entry.time`);
- `event_id`: a stable identity to drop redelivered webhooks (Meta retries and may deliver one
  update twice [MSG-WH]); the rules are in `ig_outbound.producers.webhooks.parse`;
- `raw`: the item as received (the `messaging[]` item, the `changes[]` item, or for the flat
  comment form the entry), so a field this module does not name is never lost.

`from_business` (typed events) says our account did it: an echo, or an event whose
`sender.id` is the account's own id (a reaction or a read by the business in the Instagram
app). Such an event keeps its type (`reaction`, `seen`, ...) and `user_id` stays the other
party, so one conversation key holds both sides. A `message` item sent by the account is an
`echo` even without `is_echo`.

Anything that is not one of the known types, or a known type without the ids or the time it
needs, is an `unknown` event (with `reason` for the latter): never an error.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SkipValidation

# Attachment types of the `messages` field [IGL-WHX, MIG-WH, IG-CL]. `share` is legacy
# (removed Apr 27 2026); its successors name what was shared.
SHARE_TYPES = frozenset({"share", "ig_post", "ig_reel", "reel", "ig_story", "story"})
STORY_MENTION = "story_mention"
COMMENT_FIELDS = frozenset({"comments", "live_comments"})

_FROZEN = ConfigDict(frozen=True)
_LOOSE = ConfigDict(frozen=True, extra="allow")


class AttachmentPayload(BaseModel):
    """An attachment's `payload`: `url` for media (Meta's CDN copy); fields it does not
    name (`title`, `id`, ...) are kept as extra fields."""

    model_config = _LOOSE
    url: str | None = None


class Attachment(BaseModel):
    """One item of `message.attachments`: image, audio, video, file, share, story_mention,
    ig_reel, reel, ig_post, ig_story, ephemeral, media, ... (some without a URL)."""

    model_config = _LOOSE
    type: str | None = None
    payload: AttachmentPayload | None = None

    @property
    def url(self) -> str | None:
        return self.payload.url if self.payload is not None else None


class StoryRef(BaseModel):
    """`message.reply_to.story`: the story a message replies to."""

    model_config = _LOOSE
    url: str | None = None
    id: str | None = None


class _Event(BaseModel):
    """What every typed event has (see the module docstring)."""

    model_config = _FROZEN
    account_id: str
    user_id: str
    timestamp_ms: int
    event_id: str
    from_business: bool = False
    # The parsed JSON as received; not validated again (it may hold anything).
    raw: SkipValidation[dict[str, Any]]


class _MessageBody(_Event):
    mid: str
    text: str | None = None
    attachments: list[Attachment] = Field(default_factory=list)
    reply_to_mid: str | None = None
    is_deleted: bool = False
    is_unsupported: bool = False

    def has_attachment(self, types: frozenset[str]) -> bool:
        return any(a.type in types for a in self.attachments)


class MessageEvent(_MessageBody):
    """A message from the user (`messages` field). `is_deleted`: the user unsent `mid`;
    `is_unsupported`: a message type the API does not deliver [IGL-WHX, MIG-WH]."""

    type: Literal["message"] = "message"
    quick_reply_payload: str | None = None
    reply_to_story: StoryRef | None = None
    referral: dict[str, Any] | None = None

    @property
    def is_story_mention(self) -> bool:
        return self.has_attachment(frozenset({STORY_MENTION}))

    @property
    def is_story_reply(self) -> bool:
        return self.reply_to_story is not None

    @property
    def is_share(self) -> bool:
        return self.has_attachment(SHARE_TYPES)


class EchoEvent(_MessageBody):
    """A message our account sent (`message.is_echo: true`, sender = account, recipient =
    user), from this app, another app or the Instagram app [IGL-WHX]. `metadata` is the send's
    `metadata` if echoed (IG support UNCONFIRMED); `is_self`: sent to itself [PM]."""

    type: Literal["echo"] = "echo"
    from_business: bool = True
    is_self: bool = False
    metadata: str | None = None


class MessageEditEvent(_Event):
    """The user edited message `mid` (`message_edit: {mid, text, num_edit}`) [IGL-WHX]."""

    type: Literal["message_edit"] = "message_edit"
    mid: str
    text: str | None = None
    num_edit: int | None = None


class PostbackEvent(_Event):
    """A postback button was tapped (`postback: {mid?, title, payload}`; `mid` needs
    Graph v11+) [IGL-WHX]."""

    type: Literal["postback"] = "postback"
    mid: str | None = None
    title: str | None = None
    payload: str | None = None
    referral: dict[str, Any] | None = None


class ReactionEvent(_Event):
    """A reaction to message `mid` (`reaction: {mid, action, reaction?, emoji?}`);
    `reaction`/`emoji` are absent on `unreact` [IGL-WHX, MIG-WH]."""

    type: Literal["reaction"] = "reaction"
    mid: str
    action: Literal["react", "unreact"]
    reaction: str | None = None
    emoji: str | None = None


class ReferralEvent(_Event):
    """The user came through an ig.me link or an ad into an existing thread
    (`referral: {ref, source, type, ...}`) [IGL-WHX]. `referral` holds all of it."""

    type: Literal["referral"] = "referral"
    ref: str | None = None
    source: str | None = None
    referral_type: str | None = None
    ad_id: str | None = None
    referral: dict[str, Any]


class OptinEvent(_Event):
    """`messaging_optins`: subscribable on IG-Login, its payload on Instagram is UNCONFIRMED
    (fact sheet §6, §10.8), so only `optin` (all of it) is relied on; `optin_type` and
    `payload` are read when they are strings (Messenger's shape)."""

    type: Literal["optin"] = "optin"
    optin_type: str | None = None
    payload: str | None = None
    optin: dict[str, Any]


class SeenEvent(_Event):
    """The user read up to message `mid` (`read: {mid}`; Instagram sends `mid`, Messenger's
    `watermark` is accepted too) [IGL-WHX, MIG-WH]."""

    type: Literal["seen"] = "seen"
    mid: str | None = None
    watermark: int | None = None


class CommentEvent(_Event):
    """A comment on our media (`comments`; `live_comments` with `is_live`), the subject of a
    private reply [IGL-WHX, IGL-PR]. `user_id` is the commenter (`value.from.id`);
    `from_business` when the account commented itself."""

    type: Literal["comment"] = "comment"
    comment_id: str
    text: str | None = None
    username: str | None = None
    media_id: str | None = None
    media_product_type: str | None = None
    parent_id: str | None = None
    is_live: bool = False


class UnknownEvent(BaseModel):
    """Anything else, kept: `field` is the webhook field or `messaging[]` key that was seen;
    `reason` says why an item of a known kind was not typed (None for an unknown kind).
    The ids and the time are filled when they could be read."""

    model_config = _FROZEN
    type: Literal["unknown"] = "unknown"
    account_id: str | None = None
    user_id: str | None = None
    timestamp_ms: int | None = None
    event_id: str
    field: str | None = None
    reason: str | None = None
    raw: SkipValidation[dict[str, Any]]


TypedEvent = (
    MessageEvent
    | EchoEvent
    | MessageEditEvent
    | PostbackEvent
    | ReactionEvent
    | ReferralEvent
    | OptinEvent
    | SeenEvent
    | CommentEvent
)
InboundEvent = Annotated[TypedEvent | UnknownEvent, Field(discriminator="type")]


class Entry(BaseModel):
    """One `entry[]` item: `id` is our account's IG_ID, `time_ms` its `time` in ms (a value
    that looks like seconds is converted), `raw` the entry as received."""

    model_config = _FROZEN
    id: str | None = None
    time_ms: int | None = None
    raw: SkipValidation[dict[str, Any]]


class WebhookBatch(BaseModel):
    """One webhook body: its entries and every event of them, flattened in body order
    (Meta does not guarantee order across deliveries: sort by `timestamp_ms` [MSG-WH])."""

    model_config = _FROZEN
    object: Literal["instagram"] = "instagram"
    entries: list[Entry]
    events: list[InboundEvent]
    raw: SkipValidation[dict[str, Any]]
