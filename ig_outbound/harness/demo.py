"""`ig-outbound demo`: the whole product on embedded defaults.

A private Redis (or `IG_OUTBOUND_REDIS_URL`), the gateway, the Graph emulator over real HTTP
(its signed webhooks go to the gateway), worker processes, the example auto-responder, and
simulated accounts and users. First it enqueues a realistic mix of every kind (plus a few bad
intents) and prints a summary; then it runs the whole loop (`demo_loop`): users write, the
gateway records, the auto-responder answers, workers send, echoes come back. It leaves no
process behind and exits non-zero when a promise did not hold.
"""

from __future__ import annotations

import json
import secrets
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from ig_outbound.emulator import EmulatorConfig, EmulatorControl, run_emulator_process
from ig_outbound.emulator.config import (
    AccountConfig,
    CommentConfig,
    FaultSettings,
    MediaConfig,
    SimulatedUsersConfig,
    WebhookConfig,
)
from ig_outbound.harness.demo_loop import LoopPlan, LoopStack, run_loop
from ig_outbound.harness.demo_policy import (
    MEDIA_HOST,
    PolicyDemo,
    disclosure_settings,
    media_settings,
)
from ig_outbound.harness.env import client_view, gateway_settings, tuned
from ig_outbound.harness.errors import HarnessError, LocalStackError
from ig_outbound.harness.intents import make_intent, text_intent
from ig_outbound.harness.processes import GatewayProcess, RedisServer, WorkerProcess, free_port
from ig_outbound.harness.responder import ResponderThread
from ig_outbound.harness.wait import wait_registered
from ig_outbound.producers.connection import redis_params, sync_redis
from ig_outbound.producers.enqueue import EnqueueResult, SyncOutboundClient
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.outcome import Outcome
from ig_outbound.worker.settings import Settings

# Template images are not media intents (Graph fetches them; no probe): placeholders.
IMG = "https://cdn.example.com/img/{}.png"
# Users each account of the loop knows (simulated users pick among them, or are new).
LOOP_USERS = 40
# Webhook POSTs the emulator has in flight at once: more only adds contention on a small box
# (each event is its own signed POST, the emulator's default: no batching).
WEBHOOK_CONCURRENCY = 4


@dataclass(frozen=True)
class DemoMedia:
    """Real files on the emulator's media host, each probed once by the fleet (then cached)."""

    image: str
    audio: str
    video: str
    file: str

    @classmethod
    def on(cls, control: EmulatorControl) -> DemoMedia:
        return cls(
            image=control.media_url("jpeg", 350_000),
            audio=control.media_url("m4a", 1_200_000),
            video=control.media_url("mp4", 9_000_000),
            file=control.media_url("pdf", 120_000),
        )


@dataclass(frozen=True)
class DemoAccount:
    ig_id: str
    token: str
    users: list[str]
    comments: list[str]


def _accounts(n_accounts: int, conversations: int, first: int = 0) -> list[DemoAccount]:
    out = []
    for a in range(first, first + n_accounts):
        ig_id = f"1784140000000{a:04d}"
        users = [f"12544777{a:03d}{c:05d}" for c in range(conversations)]
        comments = [f"1790{a:03d}{c:08d}" for c in range(conversations)]
        # Random per run: the demo shows tokens never leave the worker, so they must be real
        # secrets, not fixtures someone could grep for.
        out.append(DemoAccount(ig_id, "IGAA" + secrets.token_urlsafe(24), users, comments))
    return out


def _contents(conv: int, media: DemoMedia) -> list[dict[str, Any]]:
    """A realistic conversation that uses every kind once."""
    return [
        {"kind": "typing_on"},
        {"kind": "text", "text": f"Hi! Thanks for your message #{conv}. How can we help?"},
        {
            "kind": "text",
            "text": "Pick one:",
            "quick_replies": [
                {"title": "Order status", "payload": "ORDER"},
                {"title": "Talk to a human", "payload": "HUMAN"},
            ],
        },
        {"kind": "image", "url": media.image},
        {"kind": "images", "images": [{"url": media.image} for _ in range(3)]},
        {"kind": "audio", "url": media.audio},
        {"kind": "video", "url": media.video},
        {"kind": "file", "url": media.file},
        {"kind": "image", "attachment_id": "1857777774821032"},
        {"kind": "sticker"},
        {"kind": "media_share", "post_id": "17895695668004550"},
        {
            "kind": "generic_template",
            "elements": [
                {
                    "title": "Summer sale",
                    "subtitle": "Up to 50% off",
                    "image_url": IMG.format("sale"),
                    "default_action": {"type": "web_url", "url": "https://shop.example.com"},
                    "buttons": [
                        {"type": "web_url", "url": "https://shop.example.com", "title": "Shop"},
                        {"type": "postback", "title": "Remind me", "payload": "REMIND"},
                    ],
                }
            ],
        },
        {
            "kind": "button_template",
            "text": "What would you like to do?",
            "buttons": [{"type": "postback", "title": "Track order", "payload": "TRACK"}],
        },
        {
            "kind": "react",
            "message_id": f"aWdfZAG1faXRlbToxOklHTWVzc2FnZA{conv:06d}",
            "reaction": "love",
        },
        {"kind": "unreact", "message_id": f"aWdfZAG1faXRlbToxOklHTWVzc2FnZA{conv:06d}"},
        {"kind": "mark_seen"},
        {"kind": "typing_off"},
    ]


def _intents(
    accounts: list[DemoAccount], rounds: int, run: str, media: DemoMedia
) -> Iterator[dict[str, Any]]:
    for acc in accounts:
        for conv, user in enumerate(acc.users):
            steps = [c for _ in range(rounds) for c in _contents(conv, media)]
            for step, content in enumerate(steps):
                extra: dict[str, Any] = {"metadata": {"conversation": conv, "step": step}}
                if content["kind"] == "text" and step % 5 == 1:
                    extra["reply_to"] = f"aWdfZAG1faXRlbToxOklHTWVzc2FnZB{conv:06d}"
                if content["kind"] == "text" and step % 7 == 4:
                    extra.update(tag="HUMAN_AGENT", automated=False)
                key = f"{run}:{acc.ig_id}:{user}:{step}"
                yield make_intent(key, acc.ig_id, user, content, **extra)
            # A private reply to this user's comment on a post.
            yield text_intent(
                f"{run}:{acc.ig_id}:comment:{acc.comments[conv]}",
                acc.ig_id,
                {"comment_id": acc.comments[conv]},
                "Thanks for your comment! Details in DM.",
            )


def _bad_intents(acc: DemoAccount, run: str) -> list[Any]:
    """Bad input a real upstream might send; each is refused with every problem named."""
    base = {"account_id": acc.ig_id, "recipient": {"id": acc.users[0]}}
    return [
        {
            **base,
            "idempotency_key": f"{run}:bad:1",
            "content": {"kind": "text", "text": "x" * 1001},
        },
        {**base, "idempotency_key": f"{run}:bad:2", "content": {"kind": "gif", "url": "https://x"}},
        {
            **base,
            "idempotency_key": f"{run}:bad:3",
            "content": {
                "kind": "text",
                "text": "too many",
                "quick_replies": [{"title": f"option {i}", "payload": "P"} for i in range(14)],
            },
        },
        {
            **base,
            "idempotency_key": f"{run}:bad:4",
            "content": {"kind": "image", "url": "ftp://a/b"},
        },
        {
            "idempotency_key": f"{run}:bad:5",
            "account_id": acc.ig_id,
            "content": {"kind": "sticker"},
        },
        {
            **base,
            "idempotency_key": f"{run}:bad:6",
            "account_id": "99999999",
            "content": {"kind": "sticker"},
        },
        "not even an object",
    ]


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def _print(text: str = "") -> None:
    print(text, flush=True)


def run_demo(
    *,
    accounts: int = 3,
    conversations: int = 8,
    rounds: int = 1,
    workers: int = 2,
    events: int = 1500,
    loop_accounts: int = 20,
    old_users: int = 20,
) -> int:
    """Run the demo; returns the process exit code (0 when every promise held: every good
    intent sent, and the loop's checks, see `demo_loop`)."""
    run = datetime.now(UTC).strftime("demo%H%M%S") + secrets.token_hex(2)
    kinds = _accounts(accounts, conversations)
    loop = _accounts(loop_accounts, LOOP_USERS, first=accounts)
    # One account whose media is refused, one that discloses it is automated.
    media_account, disclosing = _accounts(2, 8, first=accounts + loop_accounts)
    # The user's IG_OUTBOUND_* settings apply, under the demo's own choices below.
    user = Settings()
    with ExitStack() as stack:
        try:
            everyone = [*kinds, *loop, media_account, disclosing]
            demo = _start(stack, user, run, everyone, workers, disclosing.ig_id)
            if demo is None:
                return 1
            sent_ok = _drive(demo.client, kinds, run, demo.control, rounds)
            policy = PolicyDemo(
                run, demo.client, demo.control, demo.gateway, media_account.ig_id,
                media_account.users, disclosing.ig_id, disclosing.users,
            )  # fmt: skip
            policy_ok = policy.start()
            plan = _loop_plan(run, kinds + loop, loop, events, old_users, policy.app_messages)
            loop_ok = run_loop(demo.loop_stack(), plan)
            policy_ok = policy.finish() and policy_ok
        except (HarnessError, TimeoutError) as exc:  # a process died or never answered
            _print(f"\ndemo: {exc}")
            return 1
        return 0 if sent_ok and loop_ok and policy_ok else 1
    return 1


@dataclass
class _Demo:
    settings: Settings
    client: SyncOutboundClient
    control: EmulatorControl
    gateway: GatewayProcess
    responder: ResponderThread
    db: Any

    def loop_stack(self) -> LoopStack:
        keys = Keys(self.settings.key_prefix)
        return LoopStack(self.client, self.control, self.gateway, self.responder, self.db, keys)


def _start(
    stack: ExitStack,
    user: Settings,
    run: str,
    accounts: list[DemoAccount],
    workers: int,
    disclosing: str,
) -> _Demo | None:
    """Redis, the gateway, the emulator (its webhooks to the gateway, its media host), the
    workers (account `disclosing` discloses) and the auto-responder; each stopped by `stack`.
    None (after saying why) without a Redis."""
    redis_url = _redis(stack, user)
    if redis_url is None:
        return None
    workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="igo-demo-")))
    settings = tuned(
        user,
        redis_url=redis_url,
        key_prefix=f"igo-{run}",
        tokens={a.ig_id: SecretStr(a.token) for a in accounts},
        retry={"backoff_base_s": 0.2},
        # Echoes come back within a fraction of a second here (loopback): a send in doubt
        # (a 5xx Graph may have processed) waits 3 s for its echo, not the 15 s a real
        # network's webhooks may need, before it is resent.
        reconcile_grace_s=3.0,
        disclosure=disclosure_settings(disclosing),
        log_level="warning",
    )
    # Meta signs every webhook with the app secret; the gateway checks it.
    app_secret = secrets.token_urlsafe(24)
    gateway = _gateway(stack, settings, app_secret, workdir)
    config = _emulator(accounts, gateway.webhook_url, app_secret)
    graph_url = stack.enter_context(run_emulator_process(config))
    control = stack.enter_context(EmulatorControl(graph_url, timeout=60))
    _print(
        f"Emulator   Graph API emulator on {graph_url}, its webhooks signed to the gateway, "
        f"media files on {control.media_base_url()}"
    )
    settings = tuned(settings, graph={"base_url": graph_url}, media=media_settings(control))
    _workers(stack, settings, workers)
    client = stack.enter_context(SyncOutboundClient.connect(redis_url, client_view(settings)))
    wait_registered(settings, len(accounts))
    responder = stack.enter_context(ResponderThread(client_view(settings), consumer="demo"))
    _print("Responder  the example auto-responder reads the inbound stream (consumer group)")
    db = sync_redis(redis_params(client_view(settings)), decode_responses=True)
    stack.callback(db.close)
    return _Demo(settings, client, control, gateway, responder, db)


def _gateway(
    stack: ExitStack, settings: Settings, app_secret: str, workdir: Path
) -> GatewayProcess:
    gateway_conf = gateway_settings(settings, port=free_port(), app_secrets=[app_secret])
    gateway = GatewayProcess.from_settings(gateway_conf, log_path=workdir / "gateway.log")
    stack.enter_context(gateway)
    _print(f"Gateway    webhooks in on {gateway.webhook_url}")
    return gateway


def _workers(stack: ExitStack, settings: Settings, workers: int) -> None:
    procs = [WorkerProcess.from_settings(settings).start() for _ in range(workers)]
    stack.callback(lambda: [p.stop() for p in procs])
    _print(
        f"Workers    {workers} worker processes (ambiguous sends: {settings.ambiguous_policy}, "
        f"reconciled by echoes while the gateway runs, {settings.reconcile_grace_s:g} s grace)"
    )


def _loop_plan(
    run: str,
    everyone: list[DemoAccount],
    loop: list[DemoAccount],
    events: int,
    old_users: int,
    app_messages: int,
) -> LoopPlan:
    """Users act on every account; users who wrote long ago write to the loop's accounts
    (new users: the emulator knows them only from that old message)."""

    hosts = loop or everyone

    def users(kind: int) -> list[tuple[str, str]]:
        return [(hosts[i % len(hosts)].ig_id, f"53{kind}{i:012d}") for i in range(old_users)]

    return LoopPlan(
        run=run,
        events=events,
        accounts=[a.ig_id for a in everyone],
        closed=users(0),
        human=users(1),
        app_messages=app_messages,
    )


def _redis(stack: ExitStack, user: Settings) -> str | None:
    """The user's Redis (IG_OUTBOUND_REDIS_URL), else a private redis-server that `stack`
    stops; None (after saying why) when there is neither."""
    if "redis_url" in user.model_fields_set and user.redis_url:
        _print("Redis      IG_OUTBOUND_REDIS_URL (keys under a fresh prefix)")
        return user.redis_url
    try:
        server = stack.enter_context(RedisServer())
    except LocalStackError as exc:
        _print(f"demo: {exc}")
        return None
    _print(f"Redis      private redis-server on {server.url}")
    return server.url


def _emulator(accounts: list[DemoAccount], webhook_url: str, app_secret: str) -> EmulatorConfig:
    now = time.time()
    return EmulatorConfig(
        accounts=[
            AccountConfig(ig_id=a.ig_id, token=a.token, username=f"shop{i}")
            for i, a in enumerate(accounts)
        ],
        users={a.ig_id: a.users for a in accounts},
        comments=[
            CommentConfig(comment_id=c, ig_id=a.ig_id, commenter_igsid=u, created_at=now - 3600)
            for a in accounts
            for c, u in zip(a.comments, a.users, strict=True)
        ],
        # A realistic network: some latency, and Graph failing 3% of calls with a 5xx.
        faults=FaultSettings(latency_ms=15, latency_jitter_ms=30, error_5xx_rate=0.03, seed=7),
        webhooks=WebhookConfig(
            url=webhook_url, app_secret=SecretStr(app_secret), concurrency=WEBHOOK_CONCURRENCY
        ),
        simulated_users=SimulatedUsersConfig(seed=7),
        media=MediaConfig(enabled=True, host=MEDIA_HOST),
    )


def _drive(
    client: SyncOutboundClient,
    accounts: list[DemoAccount],
    run: str,
    control: EmulatorControl,
    rounds: int,
) -> bool:
    """The first half: every kind, bad intents and duplicates; True when every good intent
    was sent."""
    good = list(_intents(accounts, rounds, run, DemoMedia.on(control)))
    # One conversation whose user does not exist at Graph: a permanent failure, reported.
    ghost = {**good[1], "idempotency_key": f"{run}:ghost", "recipient": {"id": "4040404040"}}
    started = time.monotonic()
    results = client.enqueue_many([*good, ghost])
    refused = client.enqueue_many(_bad_intents(accounts[0], run))
    again = client.enqueue_many(good[:5])  # a producer retrying: duplicates, nothing re-queued
    accepted = [r for r in results if r.accepted]
    _print(
        f"Enqueued   {len(accepted)} intents in one batch; "
        f"{sum(r.status == 'duplicate' for r in again)} re-sent duplicates ignored; "
        f"{sum(not r.accepted for r in refused)} bad intents refused:"
    )
    for r in refused:
        _print(f"           - {_refusal(r)}")
    outcomes = _progress(client, [r.key for r in accepted if r.key], started)
    elapsed = max(o.finished_at.timestamp() for o in outcomes) - (
        min(o.enqueued_at.timestamp() for o in outcomes if o.enqueued_at)
    )
    _summary(outcomes, elapsed, control)
    _order_report(control, [i for i in good if i["recipient"].get("id")])
    return all(o.status == "sent" for o in outcomes if o.key != f"{run}:ghost")


def _refusal(result: EnqueueResult) -> str:
    err = result.error.as_dict() if result.error else {}
    if "problems" in err:
        probs = "; ".join(f"{p['loc']}: {p['msg'][:90]}" for p in err["problems"])
        return f"{result.key or '(no key)'}: {probs}"
    return f"{result.key or '(no key)'}: {err.get('error')}: {err.get('message')}"


def _progress(client: SyncOutboundClient, keys: list[str], started: float) -> list[Outcome]:
    pending = set(keys)
    done: dict[str, Outcome] = {}
    last = 0.0
    while pending and time.monotonic() - started < 300:
        for key in list(pending):
            found = client.outcome(key)
            if found is not None:
                done[key] = found
                pending.discard(key)
        if time.monotonic() - last > 0.5 or not pending:
            last = time.monotonic()
            counts = Counter(o.status.value for o in done.values())
            bar = "#" * int(30 * len(done) / len(keys))
            sys.stdout.write(
                f"\rProgress   [{bar:<30}] {len(done)}/{len(keys)} "
                + " ".join(f"{k}={v}" for k, v in sorted(counts.items()))
                + "   "
            )
            sys.stdout.flush()
        time.sleep(0.1)
    _print()
    return list(done.values())


def _summary(outcomes: list[Outcome], elapsed_s: float, control: EmulatorControl) -> None:
    by_kind: dict[str, Counter[str]] = {}
    for o in outcomes:
        by_kind.setdefault(o.kind or "?", Counter())[o.status.value] += 1
    _print("\nOutcomes per kind")
    statuses = ["sent", "failed", "rejected", "expired", "unknown"]
    _print(f"  {'kind':<18}" + "".join(f"{s:>9}" for s in statuses))
    for kind in sorted(by_kind):
        _print(f"  {kind:<18}" + "".join(f"{by_kind[kind][s]:>9}" for s in statuses))
    latencies = [o.latency_ms for o in outcomes if o.latency_ms is not None]
    retried = sum(1 for o in outcomes if o.attempts > 1)
    stats = control.stats()
    _print(
        f"\nThroughput {len(outcomes) / elapsed_s:,.0f} intents/s "
        f"({len(outcomes)} in {elapsed_s:.2f} s)"
    )
    _print(
        f"Latency    enqueue->outcome p50 {_pct(latencies, 0.5):.0f} ms, "
        f"p99 {_pct(latencies, 0.99):.0f} ms, mean {statistics.fmean(latencies):.0f} ms"
    )
    _print(f"Retries    {retried} intents needed more than one attempt (injected 5xx)")
    failed = [o for o in outcomes if o.status != "sent"]
    for o in failed:
        err = o.error
        _print(
            f"Not sent   {o.key}: {o.status.value} ({o.reason}"
            + (f", Graph code {err.code}/{err.subcode}" if err else "")
            + ")"
        )
    busiest = stats.get("max_calls_in_any_window", {})
    light = max((c.get("light", 0) for c in busiest.values()), default=0)
    media = max((c.get("media", 0) for c in busiest.values()), default=0)
    _print(
        f"Graph      {stats['accepted']} calls accepted, {stats.get('violations', 0)} rate-limit "
        f"violations; busiest 1-s window of any account: {light}/100 light, {media}/10 media"
    )


def _order_report(control: EmulatorControl, intents: list[dict[str, Any]]) -> None:
    """Check, from what Graph received, that every conversation arrived in enqueue order."""
    from ig_outbound.producers.validation import parse_intent
    from ig_outbound.worker.payloads import build_body

    expected: dict[tuple[str, str], list[str]] = {}
    for item in intents:
        if "id" in item["recipient"]:
            body = json.dumps(build_body(parse_intent(item)), sort_keys=True)
            expected.setdefault((item["account_id"], item["recipient"]["id"]), []).append(body)
    arrived: dict[tuple[str, str], list[str]] = {}
    for call in sorted(control.calls()["calls"], key=lambda c: c["arrived_at"]):
        conv = (call["ig_id"], call["recipient_id"])
        if conv in expected and not call.get("comment_id"):
            arrived.setdefault(conv, []).append(json.dumps(call["body"], sort_keys=True))
    # Retried sends arrive once (no doubles); compare each conversation's arrival sequence.
    in_order = sum(1 for conv, bodies in expected.items() if arrived.get(conv) == bodies)
    _print(
        f"Order      {in_order} of {len(expected)} conversations arrived at Graph exactly in "
        "the order their intents were enqueued"
    )
