"""Per (account, user): when the user last wrote, and the latest messages each way.

The messaging window reads ``opened_at``; simulated users read the latest business message
(to react to it, mark it seen, answer its quick replies or tap its buttons). Not thread-safe by
itself: ``EmulatorState`` calls it under its lock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

# Messages remembered per conversation and direction: enough for "react to a recent one".
RECENT_MAX = 8

Key = tuple[str, str]  # (IG_ID, IGSID)


@dataclass
class BusinessMessage:
    mid: str
    body: dict[str, Any]  # the accepted /messages body (quick replies, buttons)


@dataclass
class Conversation:
    # Counts as the user's last message when none is known (a registered user, see
    # WindowConfig.registered_users_in_window); a real message always wins over it.
    registered_at: float | None = None
    user_wrote_at: float | None = None
    user_mids: deque[str] = field(default_factory=lambda: deque(maxlen=RECENT_MAX))
    business: deque[BusinessMessage] = field(default_factory=lambda: deque(maxlen=RECENT_MAX))

    @property
    def opened_at(self) -> float | None:
        return self.user_wrote_at if self.user_wrote_at is not None else self.registered_at


class Conversations:
    def __init__(self) -> None:
        self._by_key: dict[Key, Conversation] = {}

    def get(self, ig_id: str, igsid: str) -> Conversation | None:
        return self._by_key.get((ig_id, igsid))

    def _conversation(self, ig_id: str, igsid: str) -> Conversation:
        return self._by_key.setdefault((ig_id, igsid), Conversation())

    def registered(self, ig_id: str, igsid: str, at: float) -> None:
        self._conversation(ig_id, igsid).registered_at = at

    def user_wrote(self, ig_id: str, igsid: str, at: float, mid: str | None) -> None:
        """Record a message from the user. ``at`` may lie in the past (a test setting up a
        window that is about to close), so the window opens at the latest message known."""
        conversation = self._conversation(ig_id, igsid)
        if conversation.user_wrote_at is None or at > conversation.user_wrote_at:
            conversation.user_wrote_at = at
        if mid is not None:
            conversation.user_mids.append(mid)

    def business_sent(self, ig_id: str, igsid: str, mid: str, body: dict[str, Any]) -> None:
        self._conversation(ig_id, igsid).business.append(BusinessMessage(mid, body))

    def latest_business(self, ig_id: str, igsid: str) -> BusinessMessage | None:
        conversation = self.get(ig_id, igsid)
        return conversation.business[-1] if conversation and conversation.business else None

    def users_with_business_messages(self, ig_id: str) -> list[str]:
        """IGSIDs the account has sent a message to, sorted (stable for a seeded choice)."""
        return sorted(
            igsid for (owner, igsid), c in self._by_key.items() if owner == ig_id and c.business
        )
