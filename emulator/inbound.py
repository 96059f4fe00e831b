"""What Instagram's users do, and the echoes of what the business sends: facts plus webhooks.

Each function records the fact in the emulator's world (a message or a postback opens the
user's window, a comment can get its private reply, a delivered business message is what users
react to) and, when a webhook URL is set, queues the webhook Meta would send for it (under
``webhooks.require_subscription`` only if the account subscribed to the event's field:
``subscriptions.KIND_FIELDS``). All times are on the emulator's clock. Every function runs
under the state lock.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ig_outbound.emulator import webhooks as wh
from ig_outbound.emulator.config import CommentConfig
from ig_outbound.emulator.state import EmulatorState, RecordedCall


class UnknownAccountError(ValueError):
    def __init__(self, ig_id: str) -> None:
        super().__init__(f"unknown account {ig_id}")


@dataclass
class InboundEvent:
    """One thing a user did; ``webhook`` is the index of the webhook carrying it, if any."""

    kind: str  # message | comment | reaction | postback | seen | app_message
    ig_id: str
    igsid: str
    at: float  # emulator clock, epoch seconds
    mid: str | None = None  # the user's message / postback, or the message reacted to / seen
    comment_id: str | None = None
    text: str | None = None
    payload: str | None = None  # quick reply or postback payload
    reaction: str | None = None  # None on an unreact
    reply_to_mid: str | None = None
    image: bool = False
    webhook: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def default_username(igsid: str) -> str:
    return f"ig_user_{igsid[-6:]}"


def default_media_id(ig_id: str, k: int = 0) -> str:
    """A post of the account (stable per account, so comments land on a few posts)."""
    return f"179{ig_id[-10:].rjust(10, '0')}{k:04d}"


def _require_account(state: EmulatorState, ig_id: str) -> None:
    if state.account(ig_id) is None:
        raise UnknownAccountError(ig_id)


def _messaging(
    state: EmulatorState, event: InboundEvent, body: wh.JsonDict, *, webhook: bool = True
) -> InboundEvent:
    """Queue the messaging webhook of a user's event (user -> account)."""
    if webhook and state.webhook_wanted(event.ig_id, event.kind):
        entry = wh.messaging_entry(
            event.ig_id, state.clock.now(), event.igsid, event.ig_id, event.at, body
        )
        event.webhook = state.webhooks.submit(entry, event.kind)
    return event


# --- users' events -----------------------------------------------------------------------


def user_message(
    state: EmulatorState,
    ig_id: str,
    igsid: str,
    *,
    text: str | None = None,
    image: bool = False,
    quick_reply_payload: str | None = None,
    reply_to_mid: str | None = None,
    at: float | None = None,
    simulated: bool = False,
    webhook: bool = True,
) -> InboundEvent:
    """The user writes a DM: the window opens at ``at`` (default now). ``webhook`` False
    records the fact only."""
    with state.lock:
        _require_account(state, ig_id)
        at = state.clock.now() if at is None else at
        mid = state.next_message_id(ig_id)
        state.record_user_message(ig_id, igsid, at, mid, simulated=simulated)
        event = InboundEvent(
            "message",
            ig_id,
            igsid,
            at,
            mid=mid,
            text=text,
            payload=quick_reply_payload,
            reply_to_mid=reply_to_mid,
            image=image,
        )
        body = wh.user_message(
            mid,
            text=text,
            image=image,
            quick_reply_payload=quick_reply_payload,
            reply_to_mid=reply_to_mid,
        )
        return _messaging(state, event, body, webhook=webhook)


def user_comment(
    state: EmulatorState,
    ig_id: str,
    igsid: str,
    *,
    text: str,
    comment_id: str,
    media_id: str | None = None,
    username: str | None = None,
    at: float | None = None,
    simulated: bool = False,
    webhook: bool = True,
) -> InboundEvent:
    """The user comments on a post: a private reply to it works for 7 days (no DM window)."""
    with state.lock:
        _require_account(state, ig_id)
        at = state.clock.now() if at is None else at
        if igsid not in state.users_of(ig_id):
            state.add_users(ig_id, [igsid], in_window=False, simulated=simulated)
        config = CommentConfig(
            comment_id=comment_id, ig_id=ig_id, commenter_igsid=igsid, created_at=at
        )
        state.add_comment(config, simulated=simulated)
        event = InboundEvent("comment", ig_id, igsid, at, comment_id=comment_id, text=text)
        if webhook and state.webhook_wanted(ig_id, "comment"):
            entry = wh.comment_entry(
                ig_id,
                state.clock.now(),
                comment_id=comment_id,
                igsid=igsid,
                username=username or default_username(igsid),
                text=text,
                media_id=media_id or default_media_id(ig_id),
            )
            event.webhook = state.webhooks.submit(entry, "comment")
        return event


def user_reaction(
    state: EmulatorState, ig_id: str, igsid: str, mid: str, reaction: str | None
) -> InboundEvent:
    """The user reacts to message ``mid`` (``reaction`` None: takes the reaction back)."""
    with state.lock:
        _require_account(state, ig_id)
        event = InboundEvent(
            "reaction", ig_id, igsid, state.clock.now(), mid=mid, reaction=reaction
        )
        return _messaging(state, event, wh.reaction(mid, reaction))


def user_postback(
    state: EmulatorState, ig_id: str, igsid: str, title: str, payload: str
) -> InboundEvent:
    """The user taps a postback button. Tapping sends the title into the thread, so it
    opens the window like a message (UNCONFIRMED for IG; Messenger counts postbacks)."""
    with state.lock:
        _require_account(state, ig_id)
        at = state.clock.now()
        mid = state.next_message_id(ig_id)
        state.record_user_message(ig_id, igsid, at, mid)
        event = InboundEvent("postback", ig_id, igsid, at, mid=mid, text=title, payload=payload)
        return _messaging(state, event, wh.postback(mid, title, payload))


def user_seen(state: EmulatorState, ig_id: str, igsid: str, mid: str) -> InboundEvent:
    """The user has read the business's message ``mid``."""
    with state.lock:
        _require_account(state, ig_id)
        event = InboundEvent("seen", ig_id, igsid, state.clock.now(), mid=mid)
        return _messaging(state, event, wh.seen(mid))


# --- the business's messages ----------------------------------------------------------------


def business_message(state: EmulatorState, call: RecordedCall) -> None:
    """A delivered message: remembered for users to react to, and echoed (``is_echo``).

    Runs for every delivered message, whatever the answer was (an injected 5xx after the send
    or a timeout still delivered it). Sender actions and reactions are not echoed: Meta sends
    no echo for business reactions.
    """
    assert call.message_id is not None
    with state.lock:
        state.conversations.business_sent(call.ig_id, call.recipient_id, call.message_id, call.body)
        if not state.webhook_wanted(call.ig_id, "echo"):
            return
        at = state.clock.at(call.finished_at)
        echo = wh.echo(call.message_id, call.body)
        entry = wh.messaging_entry(
            call.ig_id, state.clock.now(), call.ig_id, call.recipient_id, at, echo
        )
        state.webhooks.submit(entry, "echo")


def app_message(
    state: EmulatorState, ig_id: str, igsid: str, *, text: str, at: float | None = None
) -> InboundEvent:
    """A person at the business answers by hand in the Instagram app: no Graph call, only
    its echo (``is_echo``, a mid no API send has), so the gateway learns a human wrote."""
    with state.lock:
        _require_account(state, ig_id)
        at = state.clock.now() if at is None else at
        mid = state.next_message_id(ig_id)
        body = {"recipient": {"id": igsid}, "message": {"text": text}}
        state.conversations.business_sent(ig_id, igsid, mid, body)
        event = InboundEvent("app_message", ig_id, igsid, at, mid=mid, text=text)
        if state.webhook_wanted(ig_id, "echo"):
            entry = wh.messaging_entry(
                ig_id, state.clock.now(), ig_id, igsid, at, wh.echo(mid, body)
            )
            event.webhook = state.webhooks.submit(entry, "echo")
        return event
