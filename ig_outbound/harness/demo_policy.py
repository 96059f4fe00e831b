"""The demo's policy part: media Graph would refuse is refused first (with the limit named),
inward addresses are never probed, and one account discloses that it is automated.

The emulator's media host serves real files over https (a throwaway CA the workers trust,
on a loopback address they are allowed to reach); everything else inward stays refused.
The disclosing account's lapse is seconds, not a day, so the demo can show every trigger:
the first automated message of a conversation, the first after a person wrote in the
Instagram app (its echo reaches the gateway, no send of ours claims it), and the first after
the lapse. `start` runs before the loop and `finish` after it (the lapse passes meanwhile);
each returns False, after naming it, when a promise did not hold.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ig_outbound.emulator import EmulatorControl
from ig_outbound.harness.intents import make_intent, text_intent
from ig_outbound.harness.processes import GatewayProcess, metric_total
from ig_outbound.harness.wait import wait_until
from ig_outbound.producers.enqueue import SyncOutboundClient
from ig_outbound.producers.outcome import Outcome
from ig_outbound.worker.settings import DisclosureRule

MIB = 1024 * 1024
# The media host's address: loopback, so allowed by name (`media.allow_hosts`); 127.0.0.1
# (and with it `localhost`) stays forbidden.
MEDIA_HOST = "127.0.0.2"
LAPSE_S = 15.0
DISCLOSURE_TEXT = "You are chatting with Shop's automated assistant."
RULE = DisclosureRule(enabled=True, text=DISCLOSURE_TEXT, lapse_hours=LAPSE_S / 3600)
WAIT_S = 60.0


def media_settings(control: EmulatorControl) -> dict[str, Any]:
    """The workers' media settings: trust the media host's CA, reach its address."""
    return {"ca_file": control.media_ca_file(), "allow_hosts": [f"{MEDIA_HOST}/32"]}


def disclosure_settings(account: str) -> dict[str, Any]:
    return {"accounts": {account: RULE}}


@dataclass
class PolicyDemo:
    run: str
    client: SyncOutboundClient
    control: EmulatorControl
    gateway: GatewayProcess
    media_account: str
    media_users: list[str]
    disclosing_account: str
    users: list[str]  # the disclosing account's
    problems: list[str] = field(default_factory=list)
    app_messages: int = 0  # written by a person in the Instagram app (echoed, no Graph call)
    _lapse_from: float = 0.0

    # --- media -----------------------------------------------------------------------------

    def media(self) -> bool:
        c = self.control
        forbidden = "media_forbidden_address"
        cases = [
            ("image", c.media_url("png", 2 * MIB), "sent", None),
            ("video", c.media_url("mp4", 25 * MIB), "sent", None),  # at the limit
            # A real PNG served as text/plain: the first bytes tell the truth.
            ("image", c.media_url("png", 40_000, type="text/plain"), "sent", None),
            ("image", c.media_url("jpeg", int(9.1 * MIB)), "rejected", "media_too_large"),
            ("audio", c.media_url("pdf", 300_000), "rejected", "media_wrong_type"),
            ("file", c.media_url("png", 1000), "rejected", "media_wrong_type"),
            ("image", c.media_url("png", 100, host="169.254.169.254"), "rejected", forbidden),
            ("image", c.media_url("png", 100, host="localhost"), "rejected", forbidden),
            ("video", c.media_url("mp4", 100, host="10.20.30.40"), "rejected", forbidden),
        ]
        intents = [
            make_intent(
                f"{self.run}:media:{n}",
                self.media_account,
                self.media_users[n % len(self.media_users)],
                {"kind": kind, "url": url},
            )
            for n, (kind, url, _, _) in enumerate(cases)
        ]
        outcomes = self._run(intents)
        print("\nMedia      probed before the send (HEAD, else the first bytes; never inward):")
        for intent, (kind, url, status, reason) in zip(intents, cases, strict=True):
            outcome = outcomes.get(intent["idempotency_key"])
            got = f"{outcome.status.value}: {outcome.reason}" if outcome else "no outcome"
            if outcome is not None and outcome.status == "sent":
                got = "sent"
            print(f"           {kind:<6} {_short(url):<46} -> {got}")
            if (
                outcome is None
                or outcome.status != status
                or (reason and not (outcome.reason or "").startswith(reason))
            ):
                self.problems.append(f"media {kind} {url}: expected {status} {reason}, got {got}")
        at_graph = {_attachment_url(call["body"]) for call in c.calls()["calls"]}
        leaked = [url for intent, (_, url, status, _) in zip(intents, cases, strict=True)
                  if status == "rejected" and url in at_graph]  # fmt: skip
        print(
            "           every refusal came from the worker before Graph was asked "
            f"({len(leaked)} refused URLs reached Graph)"
        )
        if leaked:
            self.problems.append(f"refused media reached Graph: {leaked}")
        return not self.problems

    # --- the bot disclosure ----------------------------------------------------------------

    def start(self) -> bool:
        """Conversation start, then the handover from a person: before the loop."""
        if not self.media():
            return self._failed()
        account, user = self.disclosing_account, self.users[0]
        # The user wrote (the window is open); no webhook: the auto-responder stays out.
        self.control.user_message(account, user, "Is my order on its way?", webhook=False)
        first = self._send(user, "start-1", "Your order has shipped.")
        second = self._send(user, "start-2", "It should arrive on Friday.")
        self._human_writes(account, user)
        after_human = self._send(user, "after-human", "Anything else? Our bot is here 24/7.")
        human_agent = self._send(user, "human-agent", "Sam again: I added a gift.", human=True)
        self._lapse_from = time.monotonic()
        print(f"\nDisclosure account {account} discloses (text: {DISCLOSURE_TEXT!r}):")
        self._show("first automated message", first, "conversation_start")
        self._show("the next one, seconds later", second, None)
        self._show("first after a person wrote in the app", after_human, "human_handover")
        self._show("a HUMAN_AGENT message (a person wrote it)", human_agent, None)
        return not self.problems or self._failed()

    def finish(self) -> bool:
        """The lapse: after the loop, at least LAPSE_S after the last automated message."""
        time.sleep(max(0.0, LAPSE_S + 1.0 - (time.monotonic() - self._lapse_from)))
        print(f"\nDisclosure the same conversation of account {self.disclosing_account}, later:")
        later = self._send(self.users[0], "lapse", "We have a new collection out today!")
        self._show(f"first after {LAPSE_S:.0f} s quiet (the lapse)", later, "lapse")
        texts = self._texts(self.disclosing_account, self.users[0])
        disclosures = texts.count(DISCLOSURE_TEXT)
        print(
            f"           Graph received {len(texts)} messages in this conversation, "
            f"{disclosures} of them the disclosure, each just before the message that needed it"
        )
        if disclosures != 3 or texts[0] != DISCLOSURE_TEXT:
            self.problems.append(f"the conversation's messages at Graph: {texts}")
        return not self.problems or self._failed()

    def _human_writes(self, account: str, user: str) -> None:
        """A person answers in the Instagram app; wait until the gateway recorded the echo."""

        def echoes() -> float:
            samples = self.gateway.metrics()
            return metric_total(samples, "ig_outbound_inbound_events_total", type="echo")

        self.control.app_message(account, user, "Hi, Sam from the shop here, by hand.")
        self.app_messages += 1
        # Every echo the emulator queued so far (ours too), the app message's among them.
        hooks = self.control.webhooks()["webhooks"]
        queued = sum(kind == "echo" for hook in hooks for kind in hook["kinds"])
        wait_until(lambda: echoes() >= queued, WAIT_S, "the gateway to record the echoes", 0.05)

    def _send(self, user: str, step: str, text: str, *, human: bool = False) -> Outcome | None:
        extra: dict[str, Any] = {"tag": "HUMAN_AGENT", "automated": False} if human else {}
        key = f"{self.run}:disclosure:{step}"
        intent = text_intent(key, self.disclosing_account, user, text, **extra)
        return self._run([intent]).get(key)

    def _show(self, what: str, outcome: Outcome | None, trigger: str | None) -> None:
        got = outcome.disclosure.trigger if outcome and outcome.disclosure else None
        sent = outcome is not None and outcome.status == "sent"
        label = f"disclosed first ({got})" if got else "no disclosure"
        print(f"           {what:<44} -> {label}; message {'sent' if sent else 'NOT sent'}")
        if got != trigger or not sent:
            self.problems.append(f"{what}: expected trigger {trigger}, got {got} (sent: {sent})")

    def _run(self, intents: list[dict[str, Any]]) -> dict[str, Outcome]:
        self.client.enqueue_many(intents)
        keys = [intent["idempotency_key"] for intent in intents]
        return self.client.wait_many(keys, WAIT_S)

    def _texts(self, account: str, user: str) -> list[str]:
        return [
            call["body"]["message"].get("text", "")
            for call in sorted(self.control.calls()["calls"], key=lambda c: c["arrived_at"])
            if call["ig_id"] == account and call["recipient_id"] == user
            and "message" in call["body"]
        ]  # fmt: skip

    def _failed(self) -> bool:
        for problem in self.problems:
            print(f"PROBLEM    {problem}")
        return False


def _attachment_url(body: dict[str, Any]) -> str | None:
    attachment = (body.get("message") or {}).get("attachment") or {}
    url = (attachment.get("payload") or {}).get("url") if isinstance(attachment, dict) else None
    return url if isinstance(url, str) else None


def _short(url: str) -> str:
    """`https://host:port/media/png/2097152?tag=...` -> `host/png/2097152` (+ lies)."""
    rest = url.split("://", 1)[1]
    host = rest.split("/", 1)[0].rsplit(":", 1)[0]
    path = rest.split("/media/", 1)[-1].split("?", 1)
    lies = [p for p in (path[1].split("&") if len(path) > 1 else []) if not p.startswith("tag=")]
    return f"{host}/{path[0]}" + (f" ({', '.join(lies)})" if lies else "")
