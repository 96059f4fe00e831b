"""The demo's second half: the whole loop, user -> webhook -> gateway -> auto-responder ->
worker -> Graph -> echo webhook -> gateway.

Simulated users act in one burst (the emulator signs and POSTs a webhook per event to the
gateway), the gateway records them (window facts, comments, the inbound stream), the example
auto-responder answers in batches, the workers send, and every delivered message comes back
as an echo. Around the burst: users whose window closed (their last message is 25 h old: an
automated follow-up is refused at enqueue and never reaches Graph), users who wrote 2 days
ago (a HUMAN_AGENT message, sent by a person, may still go: 7 days), and comments (one
private reply each; a second attempt is refused). Every promise is checked: `run_loop`
returns False, after naming it, when one did not hold.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ig_outbound.emulator import EmulatorControl
from ig_outbound.harness.intents import text_intent
from ig_outbound.harness.loop_books import (
    InboundTail,
    read_outcomes,
    reply_keys,
    user_events,
)
from ig_outbound.harness.processes import GatewayProcess, metric_total
from ig_outbound.harness.responder import ResponderThread
from ig_outbound.harness.wait import wait_until
from ig_outbound.producers.enqueue import EnqueueResult, SyncOutboundClient
from ig_outbound.producers.intent import RECIPIENT_COMMENT_PREFIX
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.outcome import Outcome

CLOSED_AGO_S = 25 * 3600  # past the 24 h window of automated messages
HUMAN_AGO_S = 2 * 24 * 3600  # past 24 h, within HUMAN_AGENT's 7 days
# Graph's answer to a send outside the window: never seen if we refuse first.
WINDOW_ERROR = "10/2534022"
WAIT_S = 120.0


@dataclass(frozen=True)
class LoopPlan:
    run: str
    events: int  # the burst: simulated users' events
    accounts: list[str]  # the accounts users act on
    closed: list[tuple[str, str]]  # (account, user): last wrote 25 h ago
    human: list[tuple[str, str]]  # (account, user): last wrote 2 days ago
    # Messages a person wrote in the Instagram app before the loop: echoed, no Graph call.
    app_messages: int = 0
    seed: int = 7


@dataclass
class LoopStack:
    client: SyncOutboundClient
    control: EmulatorControl
    gateway: GatewayProcess
    responder: ResponderThread
    db: Any  # a decoded sync Redis client
    keys: Keys


@dataclass
class LoopBooks:
    """What the loop found, for the summary and the checks."""

    burst_at_ms: int = 0
    recorded_s: float = 0.0
    act_counts: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, Outcome | None] = field(default_factory=dict)  # reply key -> outcome
    refused_at_enqueue: dict[str, str] = field(default_factory=dict)  # reply key -> reason
    follow_ups: list[EnqueueResult] = field(default_factory=list)
    human_keys: list[str] = field(default_factory=list)
    second_tries: list[EnqueueResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _print(text: str = "") -> None:
    print(text, flush=True)


def run_loop(stack: LoopStack, plan: LoopPlan) -> bool:
    """Run the loop on a started stack; False when a promise did not hold (each named)."""
    books = LoopBooks()
    tail = InboundTail(stack.db, stack.keys.inbound)
    _print("\nThe loop: users write, the gateway records, the auto-responder answers")
    _burst(stack, plan, books)
    # After the burst: its users are drawn from those the accounts know, which these become.
    _old_messages(stack.control, plan)
    if not _wait_recorded(stack, plan, tail, books):
        return _failed(books)
    _window_sends(stack, plan, books)
    if not _wait_replies(stack, tail, books):
        return _failed(books)
    _second_private_replies(stack, tail, plan, books)
    _wait_echoes(stack, tail, books)
    _report(stack, tail, books, plan)
    return _failed(books) if books.problems else True


def _failed(books: LoopBooks) -> bool:
    for problem in books.problems:
        _print(f"PROBLEM    {problem}")
    return False


# --- users act ---------------------------------------------------------------------------


def _old_messages(control: EmulatorControl, plan: LoopPlan) -> None:
    """Users who wrote long ago: the webhook carries the old time, so the gateway learns
    when their windows closed (and the emulator, playing Instagram, agrees)."""
    for account, user in plan.closed:
        control.user_message(account, user, "Are you still open?", ago_s=CLOSED_AGO_S)
    for account, user in plan.human:
        control.user_message(account, user, "Can a person help me?", ago_s=HUMAN_AGO_S)


def _burst(stack: LoopStack, plan: LoopPlan, books: LoopBooks) -> None:
    books.burst_at_ms = int(time.time() * 1000)
    acted = stack.control.users_act(plan.events, accounts=plan.accounts, seed=plan.seed)
    books.act_counts = dict(sorted(acted["counts"].items()))
    what = ", ".join(f"{n:,} {kind}s" for kind, n in books.act_counts.items())
    _print(
        f"Users      {plan.events:,} events in one burst on {len(plan.accounts)} accounts "
        f"({what}); then, as webhooks, {len(plan.closed)} messages written 25 h ago and "
        f"{len(plan.human)} written 2 days ago"
    )


def _wait_recorded(stack: LoopStack, plan: LoopPlan, tail: InboundTail, books: LoopBooks) -> bool:
    """Until the gateway has processed every user event (recorded once, or dropped as the
    same fact again: a user reading one message twice is one `seen`)."""
    expected = plan.events + len(plan.closed) + len(plan.human)

    def processed() -> float:
        samples = stack.gateway.metrics()
        every = metric_total(samples, "ig_outbound_inbound_events_total")
        return every - metric_total(samples, "ig_outbound_inbound_events_total", type="echo")

    try:
        books.recorded_s = wait_until(
            lambda: processed() >= expected, WAIT_S, "the gateway to record the burst", 0.05
        )
    except TimeoutError:
        books.problems.append(f"the gateway processed {processed():.0f} of {expected} user events")
        return False
    webhooks = stack.control.stats()["webhooks"]
    _print(
        f"Gateway    processed all {expected:,} user events {books.recorded_s:.1f} s after the "
        f"burst began ({expected / max(books.recorded_s, 0.001):,.0f}/s; the emulator has "
        f"POSTed {webhooks['delivered']:,} signed webhooks so far)"
    )
    tail.read()
    return True


# --- what the window allows ----------------------------------------------------------------


def _window_sends(stack: LoopStack, plan: LoopPlan, books: LoopBooks) -> None:
    """An automated follow-up to users whose window closed (refused at enqueue), and a
    message a person wrote (HUMAN_AGENT) to users who wrote 2 days ago (sent)."""
    follow_ups = [
        text_intent(f"{plan.run}:follow-up:{user}", account, user, "Still interested? 20% off!")
        for account, user in plan.closed
    ]
    books.follow_ups = stack.client.enqueue_many(follow_ups)
    human = [
        text_intent(
            f"{plan.run}:human:{user}",
            account,
            user,
            "Hi, this is Sam from the shop: your refund went out today.",
            tag="HUMAN_AGENT",
            automated=False,
        )
        for account, user in plan.human
    ]
    results = stack.client.enqueue_many(human)
    books.human_keys = [r.key for r in results if r.key]
    for result in results:
        if not result.accepted:
            books.problems.append(f"HUMAN_AGENT {result.key} refused: {_error(result)}")


def _second_private_replies(
    stack: LoopStack, tail: InboundTail, plan: LoopPlan, books: LoopBooks
) -> None:
    """Each comment had its one private reply: another attempt is refused at enqueue."""
    again = [
        text_intent(
            f"{plan.run}:again:{event['comment_id']}",
            event["account_id"],
            {"comment_id": event["comment_id"]},
            "One more thing about your comment!",
        )
        for event in _comments(tail)
    ]
    books.second_tries = stack.client.enqueue_many(again) if again else []


def _comments(tail: InboundTail) -> list[dict[str, Any]]:
    return [e.event for e in user_events(tail.entries) if e.type == "comment"]


# --- waiting for the answers ------------------------------------------------------------------


def _wait_replies(stack: LoopStack, tail: InboundTail, books: LoopBooks) -> bool:
    """Until the auto-responder has answered every recorded event and every reply it (and
    the HUMAN_AGENT step) queued has its outcome."""
    started = time.monotonic()
    last_print = 0.0
    while time.monotonic() - started < WAIT_S:
        caught_up = stack.responder.caught_up()
        keys = [*reply_keys(user_events(tail.read())), *books.human_keys]
        books.outcomes, missing = read_outcomes(stack.db, stack.keys, keys)
        pending = [k for k, o in books.outcomes.items() if o is None]
        if time.monotonic() - last_print > 0.5 or (caught_up and not pending):
            last_print = time.monotonic()
            _progress(books.outcomes, len(pending))
        if caught_up and not pending:
            books.refused_at_enqueue = dict.fromkeys(missing, "refused")
            _print()
            return True
        time.sleep(0.2)
    _print()
    books.problems.append(f"replies still pending after {WAIT_S:.0f} s")
    return False


def _progress(outcomes: dict[str, Outcome | None], pending: int) -> None:
    done = len(outcomes) - pending
    counts = Counter(o.status.value for o in outcomes.values() if o is not None)
    bar = "#" * int(30 * done / max(len(outcomes), 1))
    sys.stdout.write(
        f"\rReplies    [{bar:<30}] {done}/{len(outcomes)} "
        + " ".join(f"{k}={v}" for k, v in sorted(counts.items()))
        + "   "
    )
    sys.stdout.flush()


def _wait_echoes(stack: LoopStack, tail: InboundTail, books: LoopBooks) -> None:
    """Until every webhook the emulator queued is delivered and the gateway processed it."""

    def settled() -> bool:
        webhooks = stack.control.stats()["webhooks"]
        backlog = int(stack.db.xlen(stack.keys.webhooks))
        return webhooks["pending"] == 0 and backlog == 0 and stack.responder.caught_up()

    try:
        wait_until(settled, WAIT_S, "the echoes to come back through the gateway", 0.1)
    except TimeoutError as exc:
        books.problems.append(str(exc))
    tail.read()


# --- the summary ---------------------------------------------------------------------------------


def _report(stack: LoopStack, tail: InboundTail, books: LoopBooks, plan: LoopPlan) -> None:
    _report_webhooks(stack, tail, books)
    _report_replies(stack, tail, books, plan)
    _report_window(stack, books, plan)
    _report_private_replies(tail, books)
    _report_echoes(stack, tail, books, plan)
    _report_latency(tail, books)


def _report_webhooks(stack: LoopStack, tail: InboundTail, books: LoopBooks) -> None:
    sent = stack.control.stats()["webhooks"]
    samples = stack.gateway.metrics()
    verified = metric_total(samples, "ig_outbound_webhooks_total", result="verified")
    refused = metric_total(samples, "ig_outbound_webhooks_total", result="refused")
    throttled = metric_total(samples, "ig_outbound_webhooks_total", result="throttled")
    events = Counter(e.type for e in tail.entries)
    duplicates = metric_total(samples, "ig_outbound_inbound_events_total", result="duplicate")
    _print(
        f"\nWebhooks   the emulator sent {sent['queued']:,} signed webhooks ({sent['delivered']:,} "
        f"delivered, {sent['retried']} retried, {sent['given_up']} given up); the gateway "
        f"verified {verified:,.0f}, refused {refused:,.0f}, throttled {throttled:,.0f}"
    )
    _print(
        f"Recorded   {len(tail.entries):,} events once each ("
        + ", ".join(f"{n:,} {t}" for t, n in events.most_common())
        + f"); {duplicates:,.0f} dropped as the same event again (identity seen before)"
    )
    if refused or sent["given_up"] or sent["dropped"]:
        books.problems.append(
            f"webhooks lost or refused: gateway refused {refused:.0f}, emulator gave up "
            f"{sent['given_up']}, dropped {sent['dropped']}"
        )


def _report_replies(stack: LoopStack, tail: InboundTail, books: LoopBooks, plan: LoopPlan) -> None:
    human = set(books.human_keys)
    auto = {k: o for k, o in books.outcomes.items() if k not in human}
    sent = [o for o in auto.values() if o is not None and o.status == "sent"]
    by_kind = Counter("private reply" if _is_private(o) else o.kind or "?" for o in sent)
    refused = stack.responder.counts
    window = refused.get("refused:window_closed", 0)
    follow = sum(_reason(r) == "window_closed" for r in books.follow_ups)
    graph_window = stack.control.stats()["rejected_by_error"].get(WINDOW_ERROR, 0)
    last_ms = max((o.finished_at.timestamp() * 1000 for o in sent), default=books.burst_at_ms)
    _print(
        f"Replies    {len(sent):,} auto-replies sent, the last "
        f"{(last_ms - books.burst_at_ms) / 1000:.1f} s after the burst began "
        f"({', '.join(f'{n:,} {k}' for k, n in by_kind.most_common())})"
    )
    _print(
        f"Window     {window + follow} refused at enqueue as outside the window ({window} "
        f"auto-replies to old messages, {follow} automated follow-ups); {graph_window} window "
        f"errors from Graph ({WINDOW_ERROR})"
    )
    due = len(auto) + len(books.refused_at_enqueue)
    _check_replies(due, auto, sent, refused, books, plan, graph_window)
    if follow != len(plan.closed):
        books.problems.append(f"{len(plan.closed) - follow} follow-ups were not refused")


def _check_replies(
    due: int,
    auto: dict[str, Outcome | None],
    sent: list[Outcome],
    refused: Counter[str],
    books: LoopBooks,
    plan: LoopPlan,
    graph_window: int,
) -> None:
    old = len(plan.closed) + len(plan.human)
    not_sent = [k for k, o in auto.items() if o is not None and o.status != "sent"]
    if not_sent:
        books.problems.append(f"{len(not_sent)} auto-replies not sent, e.g. {not_sent[:5]}")
    if refused.get("refused:window_closed", 0) != old:
        books.problems.append(f"auto-replies refused {dict(refused)}; expected {old} refusals")
    if len(sent) + old != due:
        books.problems.append(f"{due} auto-replies due, {len(sent)} sent, {old} refused")
    if graph_window:
        books.problems.append(f"{graph_window} sends reached Graph outside the window")


def _report_window(stack: LoopStack, books: LoopBooks, plan: LoopPlan) -> None:
    human = [books.outcomes.get(k) for k in books.human_keys]
    sent = sum(1 for o in human if o is not None and o.status == "sent")
    _print(
        f"HUMAN_AGENT {sent} of {len(plan.human)} sent to users who wrote 2 days ago (a person "
        "may answer for 7 days); the automated replies to them were refused"
    )
    if sent != len(plan.human):
        books.problems.append(f"{len(plan.human) - sent} HUMAN_AGENT messages not sent")


def _report_private_replies(tail: InboundTail, books: LoopBooks) -> None:
    comments = _comments(tail)
    keys = [f"{c['event_id']}:reply:0" for c in comments]
    replied = sum(1 for k in keys if (o := books.outcomes.get(k)) and o.status == "sent")
    again = sum(_reason(r) == "private_reply_already_sent" for r in books.second_tries)
    _print(
        f"Private    {len(comments)} comments, {replied} private replies sent (one each); "
        f"{again} of {len(books.second_tries)} second attempts refused at enqueue"
    )
    if replied != len(comments) or again != len(comments):
        books.problems.append(
            f"private replies: {len(comments)} comments, {replied} replied, {again} refused again"
        )


def _report_echoes(stack: LoopStack, tail: InboundTail, books: LoopBooks, plan: LoopPlan) -> None:
    delivered = sum(1 for c in stack.control.calls()["calls"] if c.get("message_id"))
    echoes = sum(1 for e in tail.entries if e.type == "echo") - plan.app_messages
    _print(
        f"Echoes     {echoes:,} of the {delivered:,} messages Graph delivered came back as echo "
        "webhooks through the gateway (sender actions and reactions are not echoed), besides "
        f"{plan.app_messages} written by a person in the Instagram app"
    )
    if echoes != delivered:
        books.problems.append(f"{delivered} messages delivered, {echoes} echoes recorded")


def _report_latency(tail: InboundTail, books: LoopBooks) -> None:
    started = {f"{e.event_id}:reply:0": e.timestamp_ms for e in user_events(tail.entries)}
    latencies = [
        o.finished_at.timestamp() * 1000 - started[k]
        for k, o in books.outcomes.items()
        if o is not None and o.status == "sent" and started.get(k, 0) >= books.burst_at_ms
    ]
    _print(
        f"Latency    user's message -> our reply's outcome p50 {_pct(latencies, 0.5):,.0f} ms, "
        f"p99 {_pct(latencies, 0.99):,.0f} ms ({len(latencies):,} replies to the burst)"
    )


# --- small helpers -------------------------------------------------------------------------------


def _pct(values: Iterable[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)] if ordered else 0.0


def _is_private(outcome: Outcome) -> bool:
    return (outcome.recipient or "").startswith(RECIPIENT_COMMENT_PREFIX)


def _reason(result: EnqueueResult) -> str | None:
    return getattr(result.error, "reason", None)


def _error(result: EnqueueResult) -> str:
    return str(result.error.as_dict() if result.error else result.status)
