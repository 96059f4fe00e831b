"""Bot disclosure: when the law asks, an automated conversation says it is automated.

"When required by applicable law, automated chat experiences must disclose that a person is
interacting with an automated service: at the beginning of any conversation or message
thread, after a significant lapse of time, or when a chat moves from human interaction to
automated experience. [...] California market or California users; German market or German
users" (fact sheet §7; the seed's legal section says the same).

Per account (`IG_OUTBOUND_DISCLOSURE__ACCOUNTS`, over `__DEFAULT`): whether to disclose at
all, `always` or only when the account serves a market that requires it, the lapse after
which a conversation counts as new, and the text (the seed's example sentences as defaults,
in the account's language). Only automated messages trigger it: `HUMAN_AGENT` and
`automated=false` intents (a human wrote them) never do, nor do sender actions (typing,
seen, reactions).

The triggers are decided in Redis (`producers/lua/disclosure.lua`), the disclosure is sent by
the intent's own job just before its message, under the same journal (fields `d_*` of the
intent's record), so a retry or a crash never sends it twice or skips it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ig_outbound.producers.intent import MESSAGE_KINDS, MessageIntent
from ig_outbound.worker.settings import DisclosureRule, DisclosureSettings

# The seed's example sentences (Korean) and the fact sheet's (English); German in the
# spirit of both (the seed names the German market).
DEFAULT_TEXTS = {
    "en": "You are interacting with an automated experience.",
    "ko": "회원님은 자동 채팅 환경과 상호 작용하고 있습니다",
    "de": "Sie interagieren mit einem automatisierten Dienst.",
}


@dataclass(frozen=True)
class Disclosure:
    """What an account's automated messages disclose, and after how long again."""

    text: str
    lapse_ms: int


def rule_for(settings: DisclosureSettings, account_id: str) -> DisclosureRule:
    return settings.accounts.get(account_id, settings.default)


def disclosure_for(settings: DisclosureSettings, intent: MessageIntent) -> Disclosure | None:
    """The disclosure this intent's message may need, or None when it never needs one."""
    if not intent.automated or intent.tag is not None or intent.kind not in MESSAGE_KINDS:
        return None
    rule = rule_for(settings, intent.account_id)
    if not rule.enabled:
        return None
    if rule.mode == "markets" and not set(rule.markets) & set(settings.required_markets):
        return None
    text = rule.text or DEFAULT_TEXTS[rule.language]
    return Disclosure(text=text, lapse_ms=int(rule.lapse_hours * 3_600_000))


def keeps_conversation_state(settings: DisclosureSettings, account_id: str) -> bool:
    """Whether sends of this account keep the conversation's disclosure state (when its last
    automated and human message went)."""
    return rule_for(settings, account_id).enabled


def disclosure_body(intent: MessageIntent, disclosure: Disclosure) -> dict[str, Any]:
    """The Graph body of the disclosure: a text message to the intent's recipient."""
    return {"recipient": {"id": intent.recipient.id}, "message": {"text": disclosure.text}}
