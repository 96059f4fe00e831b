"""Simulated Instagram users: they write DMs, comment, react, tap buttons and read messages.

``act(count)`` makes users act now (``POST /_emulator/users/act``); a background task does it
at ``simulated_users.rate_per_s`` on its own. Each event goes through ``inbound`` (the fact,
then the webhook). Choices come from one RNG (the call's ``seed``, else the users' seeded RNG)
and from sorted lists, so the same seed over the same world gives the same events.

What needs something to refer to waits for it: a reaction or a seen needs a message the
business sent the user, a postback a postback button it sent; until there is one, the user
writes a DM instead. A DM answers the business's quick replies (with one of their payloads)
or replies to its latest message now and then. Messages and comments sometimes come from a
user the account has never seen (created on the spot, an existing user from then on).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping, Sequence
from contextlib import suppress
from typing import Any

from ig_outbound.emulator import inbound
from ig_outbound.emulator.config import EVENT_KINDS, SimulatedUsersConfig, validate_mix
from ig_outbound.emulator.inbound import InboundEvent
from ig_outbound.emulator.state import EmulatorState
from ig_outbound.emulator.tasks import cancel_and_wait, wait_event
from ig_outbound.emulator.webhooks import REACTION_EMOJI

ACT_MAX = 10_000
UNREACT_RATE = 0.1
TEXTS = (
    "Hi! Is this still available?",
    "How much is shipping to Berlin?",
    "Danke! Größe M bitte",
    "Can I change my order? 🙏",
    "What are your opening hours?",
    "Ça marche, merci 😊",
    "Do you ship to Canada?",
    "I never got my package 😡",
)
COMMENTS = ("Love this! 😍", "Price?", "Where can I buy it?", "Schön!", "DM me please")
Buttons = list[tuple[str, str]]  # (title, payload)


class UserSimulator:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Event | None = None
        self._intervals = random.Random()
        state.reset_listeners.append(self.settings_changed)

    # --- on request -----------------------------------------------------------------------

    def act(
        self,
        count: int,
        *,
        accounts: Sequence[str] | None = None,
        mix: Mapping[str, float] | None = None,
        seed: int | None = None,
    ) -> list[InboundEvent]:
        """``count`` events over ``accounts`` (default all) drawn from ``mix`` (default the
        configured one)."""
        if not 0 <= count <= ACT_MAX:
            raise ValueError(f"count must be between 0 and {ACT_MAX}")
        state = self.state
        with state.lock:
            settings = state.simulated_users
            weights = validate_mix(dict(mix)) if mix is not None else settings.mix
            ig_ids = self._accounts(accounts)
            rng = random.Random(seed) if seed is not None else state.users_rng
            kinds = [k for k in EVENT_KINDS if weights.get(k, 0) > 0]
            odds = [weights[k] for k in kinds]
            return [
                self._event(rng, settings, rng.choice(ig_ids), rng.choices(kinds, odds)[0])
                for _ in range(count)
            ]

    def _accounts(self, accounts: Sequence[str] | None) -> list[str]:
        known = sorted(a.ig_id for a in self.state.accounts())
        if accounts is None:
            if not known:
                raise ValueError("no accounts to act on")
            return known
        unknown = sorted(set(accounts) - set(known))
        if unknown or not accounts:
            raise ValueError(f"unknown accounts {unknown}" if unknown else "accounts is empty")
        return sorted(set(accounts))

    def _event(
        self, rng: random.Random, settings: SimulatedUsersConfig, ig_id: str, kind: str
    ) -> InboundEvent:
        if kind in ("reaction", "seen", "postback"):
            event = self._respond(rng, ig_id, kind)
            if event is not None:
                return event
            kind = "message"  # nothing to refer to yet: the user writes instead
        igsid = self._user(rng, settings, ig_id)
        if kind == "comment":
            return inbound.user_comment(
                self.state,
                ig_id,
                igsid,
                text=rng.choice(COMMENTS),
                comment_id=str(rng.randrange(17_800_000_000_000_000, 17_999_999_999_999_999)),
                media_id=inbound.default_media_id(ig_id, rng.randrange(3)),
                simulated=True,
            )
        return self._message(rng, settings, ig_id, igsid)

    def _user(self, rng: random.Random, settings: SimulatedUsersConfig, ig_id: str) -> str:
        users = self.state.users_of(ig_id)
        if users and rng.random() >= settings.new_user_rate:
            return rng.choice(users)
        while True:  # a user the account has never seen
            igsid = f"52{rng.randrange(10**14):014d}"
            if igsid not in users:
                return igsid

    def _message(
        self, rng: random.Random, settings: SimulatedUsersConfig, ig_id: str, igsid: str
    ) -> InboundEvent:
        latest = self.state.conversations.latest_business(ig_id, igsid)
        replies = _quick_replies(latest.body) if latest else []
        reply_to = latest.mid if latest and rng.random() < settings.reply_to_rate else None
        options: dict[str, Any] = {"reply_to_mid": reply_to, "simulated": True}
        if replies and rng.random() < settings.quick_reply_rate:
            title, payload = rng.choice(replies)
            options.update(text=title, quick_reply_payload=payload)
        elif rng.random() < settings.image_rate:
            options.update(image=True)
        else:
            options.update(text=rng.choice(TEXTS))
        return inbound.user_message(self.state, ig_id, igsid, **options)

    def _respond(self, rng: random.Random, ig_id: str, kind: str) -> InboundEvent | None:
        """A reaction, seen or postback on something the business sent; None if nothing fits."""
        conversations = self.state.conversations
        candidates = conversations.users_with_business_messages(ig_id)
        if kind == "postback":
            candidates = [u for u in candidates if self._buttons(ig_id, u)]
        if not candidates:
            return None
        igsid = rng.choice(candidates)
        latest = conversations.latest_business(ig_id, igsid)
        assert latest is not None
        if kind == "seen":
            return inbound.user_seen(self.state, ig_id, igsid, latest.mid)
        if kind == "reaction":
            unreact = rng.random() < UNREACT_RATE
            name = None if unreact else rng.choice(sorted(REACTION_EMOJI))
            return inbound.user_reaction(self.state, ig_id, igsid, latest.mid, name)
        title, payload = rng.choice(self._buttons(ig_id, igsid))
        return inbound.user_postback(self.state, ig_id, igsid, title, payload)

    def _buttons(self, ig_id: str, igsid: str) -> Buttons:
        conversation = self.state.conversations.get(ig_id, igsid)
        if conversation is None:
            return []
        return [b for message in conversation.business for b in _postback_buttons(message.body)]

    # --- on their own ------------------------------------------------------------------------

    def start(self) -> None:
        """Run the steady-rate task on the running loop (it idles while the rate is 0)."""
        loop = asyncio.get_running_loop()
        if self._task is not None and not self._task.done() and self._loop is loop:
            return
        self._loop, self._changed = loop, asyncio.Event()
        self._task = loop.create_task(self._run(), name="emulator-simulated-users")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    def settings_changed(self) -> None:
        """Wake the task to re-read the rate (from any thread)."""
        loop, changed = self._loop, self._changed
        if loop is not None and changed is not None and not loop.is_closed():
            with suppress(RuntimeError):
                loop.call_soon_threadsafe(changed.set)

    async def _run(self) -> None:
        assert self._changed is not None
        while True:
            self._changed.clear()
            rate = self.state.simulated_users.rate_per_s
            if rate <= 0 or not self.state.accounts():
                await self._changed.wait()
                continue
            # Poisson arrivals; a change of settings cuts the wait short and is re-read.
            if not await wait_event(self._changed, self._intervals.expovariate(rate)):
                self.act(1)


def _quick_replies(body: Mapping[str, Any]) -> Buttons:
    message = body.get("message")
    items = message.get("quick_replies") if isinstance(message, dict) else None
    return [(q["title"], q["payload"]) for q in items or [] if isinstance(q, dict)]


def _postback_buttons(body: Mapping[str, Any]) -> Buttons:
    """Postback buttons of a template message (generic elements' or a button template's)."""
    message = body.get("message")
    attachment = message.get("attachment") if isinstance(message, dict) else None
    payload = attachment.get("payload") if isinstance(attachment, dict) else None
    if not isinstance(payload, dict):
        return []
    groups = [payload.get("buttons")] + [
        e.get("buttons") for e in payload.get("elements") or [] if isinstance(e, dict)
    ]
    return [
        (b["title"], b["payload"])
        for group in groups
        for b in group or []
        if isinstance(b, dict) and b.get("type") == "postback"
    ]
