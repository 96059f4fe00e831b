"""Webhook intake: the gateway process under a paced load of signed webhooks.

    .venv/bin/python -m bench.webhooks [--rate 1000] [--seconds 10] [--connections 16]
                                       [--accounts 50] [--users 2000] [--json-out FILE]

One `ig-outbound gateway` process against a private `redis-server` (no persistence, data
loss allowed, as the other throughput benchmarks), its accounts registered as a worker
fleet would (no worker runs). A load generator in this process (asyncio, one
`httpx.AsyncClient` with `--connections` connections) POSTs signed webhook bodies at
`--rate` bodies per second, open loop (a body is sent when it is due, whatever the answers
before), for `--seconds`. Each body carries 1 to 4 entries, as Meta batches them: DMs (text,
an image now and then), postbacks, reactions, reads and comments, over `--accounts` accounts
and `--users` users.

Reported:

* the acknowledged rate (200s per second over the send window), the offered rate the
  generator managed, 429s (backlog full) and any other answer;
* ack latency, client side: from the request's start to its answer, p50/p99/max;
* exactly once: after the run, every event of every acknowledged body is on the inbound
  stream once (no event missing, none twice), then a tenth of the acknowledged bodies is sent
  again (Meta redelivers) and nothing new is recorded;
* the processor's lag: the largest backlog of acknowledged bodies not yet processed, the
  time from the last acknowledgement until the backlog was empty, and per event the time from
  its body's send to its stream entry (p50/p99/max);
* CPU seconds of the gateway, Redis and the generator (cores busy over the send window).

The last line of stdout is one JSON object (`--json-out FILE` appends it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis

from bench.harness import (
    _machine_busy_s,
    _proc_cpu_s,
    calibrate_ms,
    emit_json,
    exit_on_sigterm,
    git_revision,
    percentile,
)
from ig_outbound.emulator import webhooks as wh
from ig_outbound.harness.env import gateway_settings
from ig_outbound.harness.processes import (
    GatewayProcess,
    RedisServer,
    free_port,
    metric_total,
)
from ig_outbound.harness.wait import wait_until
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.settings import ClientSettings
from ig_outbound.producers.webhooks import SIGNATURE_HEADER, parse_webhook

PREFIX = "igo-bench-wh"
WAIT_S = 300.0
DEDUPE_SHARE = 10  # every tenth acknowledged body is sent again


@dataclass(frozen=True)
class Body:
    """One webhook delivery: its bytes, signature and the identities of its events."""

    content: bytes
    signature: str
    event_ids: tuple[str, ...]


@dataclass
class Sent:
    """What one POST got: when it started (epoch ms), how long the answer took, the status."""

    started_ms: float = 0.0
    latency_s: float = 0.0
    status: int | str = 0


@dataclass
class Load:
    sent: list[Sent]
    first_s: float  # perf_counter of the first request
    last_ack_s: float  # perf_counter of the last answer
    issued_s: float  # perf_counter when the last request was issued
    max_backlog: int = 0
    backlog_samples: list[int] = field(default_factory=list)


# --- bodies ---------------------------------------------------------------------------------


def make_bodies(n: int, accounts: Sequence[str], users: int, secret: str, seed: int) -> list[Body]:
    """`n` signed bodies of 1-4 entries each, every event distinct (its own mid or comment)."""
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:8]
    bodies = []
    for i in range(n):
        entries = [
            _entry(rng, rng.choice(accounts), users, f"bench-{run}-{i}-{j}")
            for j in range(rng.randint(1, 4))
        ]
        content = wh.render(entries)
        ids = tuple(e.event_id for e in parse_webhook(content).events)
        bodies.append(Body(content, wh.sign(secret, content), ids))
    return bodies


def _entry(rng: random.Random, account: str, users: int, mid: str) -> dict[str, Any]:
    user = f"52{rng.randrange(users):014d}"
    now = time.time()
    kind = rng.random()
    if kind < 0.1:
        comment_id = str(17_900_000_000_000_000 + rng.randrange(10**15))
        return wh.comment_entry(
            account, now, comment_id=comment_id, igsid=user, username=f"user{user[-6:]}",
            text="Price?", media_id=f"179{account[-10:]}0001",
        )  # fmt: skip
    if kind < 0.2:
        event = wh.postback(mid, "Track order", "TRACK")
    elif kind < 0.3:
        event = wh.reaction(f"ours-{mid}", rng.choice(sorted(wh.REACTION_EMOJI)))
    elif kind < 0.35:
        event = wh.seen(f"ours-{mid}")
    else:
        event = wh.user_message(mid, text="Is this still available?", image=rng.random() < 0.15)
    return wh.messaging_entry(account, now, user, account, now, event)


# --- the load ---------------------------------------------------------------------------------


async def run_load(
    url: str, bodies: Sequence[Body], rate: float, connections: int, r: Any, keys: Keys
) -> Load:
    """POST every body when it is due (open loop), at most `connections` at a time, while
    sampling the gateway's backlog of unprocessed bodies."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    sent = [Sent() for _ in bodies]
    load = Load(sent, 0.0, 0.0, 0.0)
    sampling = asyncio.Event()
    sampler = asyncio.create_task(_sample_backlog(r, keys, load, sampling))
    async with httpx.AsyncClient(limits=limits, timeout=30.0) as http:
        slots = asyncio.Semaphore(connections)
        loop = asyncio.get_running_loop()
        tasks = []
        load.first_s = time.perf_counter()
        start = loop.time()
        for i, body in enumerate(bodies):
            delay = start + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await slots.acquire()
            tasks.append(asyncio.create_task(_post(http, url, body, sent[i], slots)))
        load.issued_s = time.perf_counter()
        await asyncio.gather(*tasks)
        load.last_ack_s = time.perf_counter()
    sampling.set()
    await sampler
    return load


async def _post(
    http: httpx.AsyncClient, url: str, body: Body, out: Sent, slots: asyncio.Semaphore
) -> None:
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: body.signature}
    out.started_ms = time.time() * 1000
    started = time.perf_counter()
    try:
        response = await http.post(url, content=body.content, headers=headers)
        out.status = response.status_code
    except httpx.HTTPError as exc:
        out.status = type(exc).__name__
    finally:
        out.latency_s = time.perf_counter() - started
        slots.release()


async def _sample_backlog(r: Any, keys: Keys, load: Load, done: asyncio.Event) -> None:
    while not done.is_set():
        backlog = int(await asyncio.to_thread(r.xlen, keys.webhooks))
        load.backlog_samples.append(backlog)
        load.max_backlog = max(load.max_backlog, backlog)
        with contextlib.suppress(TimeoutError):  # the next sample is due
            await asyncio.wait_for(done.wait(), 0.1)


# --- the books ---------------------------------------------------------------------------------


def wait_drained(r: Any, keys: Keys) -> float:
    """Seconds until the processor has recorded (and deleted) every acknowledged body."""
    return wait_until(lambda: int(r.xlen(keys.webhooks)) == 0, WAIT_S, "the backlog to drain", 0.01)


def read_inbound(r: Any, keys: Keys) -> dict[str, list[int]]:
    """event id -> the ms (Redis time, from the entry id) of each of its stream entries."""
    seen: dict[str, list[int]] = {}
    last = "-"
    while True:
        batch = r.xrange(keys.inbound, min=last if last == "-" else f"({last}", count=10_000)
        if not batch:
            return seen
        for entry_id, fields in batch:
            seen.setdefault(fields["event_id"], []).append(int(entry_id.split("-")[0]))
        last = batch[-1][0]


def exactly_once(
    bodies: Sequence[Body], load: Load, inbound: dict[str, list[int]]
) -> dict[str, Any]:
    """Every event of an acknowledged body recorded once; none of another body; the lag from
    each body's send to its events' entries."""
    acked = [(b, s) for b, s in zip(bodies, load.sent, strict=True) if s.status == 200]
    expected = {e for b, _ in acked for e in b.event_ids}
    missing = [e for e in expected if e not in inbound]
    twice = [e for e, at in inbound.items() if len(at) > 1]
    strangers = [e for e in inbound if e not in expected]
    lag = [inbound[e][0] - s.started_ms for b, s in acked for e in b.event_ids if e in inbound]
    return {
        "events_acknowledged": len(expected),
        "entries": sum(len(at) for at in inbound.values()),
        "missing": len(missing),
        "recorded_twice": len(twice),
        "not_acknowledged_but_recorded": len(strangers),
        "lag_ms": _spread_ms([v / 1000 for v in lag]),
    }


def _spread_ms(seconds: Sequence[float]) -> dict[str, float]:
    return {
        "p50": round(percentile(seconds, 0.5) * 1000, 1),
        "p99": round(percentile(seconds, 0.99) * 1000, 1),
        "max": round(max(seconds, default=0.0) * 1000, 1),
    }


# --- CPU ---------------------------------------------------------------------------------------


def cpu_now(r: Any, gateway: GatewayProcess) -> dict[str, float]:
    """CPU seconds so far of the gateway, Redis, this generator and the whole box (the
    rest of the box, `other`, says whether something else disturbed the run)."""
    info = r.info("cpu")
    return {
        "gateway": _proc_cpu_s(gateway.pid or 0),
        "redis": float(info["used_cpu_user"]) + float(info["used_cpu_sys"]),
        "generator": time.process_time(),
        "machine": _machine_busy_s(),
    }


# --- the run ---------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    args = _args(argv)
    exit_on_sigterm()
    accounts = [f"1784160000{a:07d}" for a in range(args.accounts)]
    secret = uuid.uuid4().hex
    n = int(args.rate * args.seconds)
    bodies = make_bodies(n, accounts, args.users, secret, args.seed)
    print(
        f"{n:,} bodies, {sum(len(b.event_ids) for b in bodies):,} events, over "
        f"{args.accounts} accounts; {args.rate:g}/s for {args.seconds:g} s, "
        f"{args.connections} connections",
        flush=True,
    )
    with (
        tempfile.TemporaryDirectory(prefix="igo-bench-wh-") as tmp,
        RedisServer(persistent=False) as srv,
    ):
        r = redis.Redis.from_url(srv.url, decode_responses=True)
        keys = Keys(PREFIX)
        r.sadd(keys.accounts, *accounts)  # what workers publish: these accounts are served
        client = ClientSettings(
            redis_url=srv.url, key_prefix=PREFIX, redis_allow_data_loss=True, log_level="warning"
        )
        section = {"max_backlog": args.max_backlog} if args.max_backlog else {}
        conf = gateway_settings(client, port=free_port(), app_secrets=[secret], **section)
        with GatewayProcess.from_settings(conf, log_path=Path(tmp) / "gateway.log") as gateway:
            result = _measure(args, bodies, gateway, r, keys)
        r.close()
    result.update(
        {
            "bench": "webhooks",
            "rate_target": args.rate,
            "seconds": args.seconds,
            "connections": args.connections,
            "accounts": args.accounts,
            "calibration_ms": calibrate_ms(),
            "git": git_revision(),
        }
    )
    _summary(result)
    emit_json(result, args.json_out)
    return 0 if result["ok"] else 1


def _measure(
    args: argparse.Namespace, bodies: list[Body], gateway: GatewayProcess, r: Any, keys: Keys
) -> dict[str, Any]:
    before = cpu_now(r, gateway)
    load = asyncio.run(run_load(gateway.webhook_url, bodies, args.rate, args.connections, r, keys))
    after = cpu_now(r, gateway)
    drain_s = wait_drained(r, keys)
    books = exactly_once(bodies, load, read_inbound(r, keys))
    dedupe = _redeliver(args, bodies, load, gateway, r, keys, books["entries"])
    window = load.last_ack_s - load.first_s
    statuses = Counter(str(s.status) for s in load.sent)
    acked = [s for s in load.sent if s.status == 200]
    ok = (
        books["missing"] == 0
        and books["recorded_twice"] == 0
        and books["not_acknowledged_but_recorded"] == 0
        and dedupe["new_entries"] == 0
    )
    return {
        "ok": ok,
        "bodies": len(bodies),
        "acknowledged": len(acked),
        "statuses": dict(statuses),
        "throttled_429": statuses.get("429", 0),
        "ack_rate": round(len(acked) / window, 1),
        "events_rate": round(books["events_acknowledged"] / window, 1),
        "offered_rate": round(len(bodies) / max(load.issued_s - load.first_s, 1e-9), 1),
        "ack_latency_ms": _spread_ms([s.latency_s for s in acked]),
        "max_backlog": load.max_backlog,
        "drain_after_last_ack_s": round(drain_s, 2),
        "exactly_once": books,
        "redelivery": dedupe,
        "cpu_s": _cpu(before, after),
        "cores_busy": {k: round(v / window, 2) for k, v in _cpu(before, after).items()},
        "cpu_ms_per_body": {
            k: round(v * 1000 / len(bodies), 2)
            for k, v in _cpu(before, after).items()
            if k in ("gateway", "generator", "redis")
        },
        "window_s": round(window, 2),
    }


def _cpu(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    spent = {k: after[k] - before[k] for k in after}
    machine = spent.pop("machine")
    spent["other"] = max(machine - sum(spent.values()), 0.0)
    return {k: round(v, 2) for k, v in spent.items()}


def _redeliver(
    args: argparse.Namespace,
    bodies: list[Body],
    load: Load,
    gateway: GatewayProcess,
    r: Any,
    keys: Keys,
    entries: int,
) -> dict[str, Any]:
    """Send a tenth of the acknowledged bodies again, byte for byte: every event is a
    duplicate (counted by the gateway), the stream gets nothing new."""
    again = [b for b, s in zip(bodies, load.sent, strict=True) if s.status == 200][::DEDUPE_SHARE]
    events = sum(len(b.event_ids) for b in again)
    name = "ig_outbound_inbound_events_total"
    duplicates = metric_total(gateway.metrics(), name, result="duplicate")
    resent = asyncio.run(run_load(gateway.webhook_url, again, args.rate, args.connections, r, keys))
    wait_until(
        lambda: metric_total(gateway.metrics(), name, result="duplicate") >= duplicates + events,
        WAIT_S,
        "the gateway to process the redeliveries",
    )
    acked = sum(1 for s in resent.sent if s.status == 200)
    return {
        "bodies": len(again),
        "acknowledged": acked,
        "events": events,
        "new_entries": int(r.xlen(keys.inbound)) - entries,
    }


def _summary(res: dict[str, Any]) -> None:
    lat, once, dup = res["ack_latency_ms"], res["exactly_once"], res["redelivery"]
    print(
        f"acknowledged {res['acknowledged']:,}/{res['bodies']:,} bodies: {res['ack_rate']:,.0f}/s "
        f"({res['events_rate']:,.0f} events/s; offered {res['offered_rate']:,.0f}/s); "
        f"429s {res['throttled_429']}; statuses {res['statuses']}"
    )
    print(f"ack latency (client): p50 {lat['p50']} ms, p99 {lat['p99']} ms, max {lat['max']} ms")
    print(
        f"exactly once: {once['entries']:,} stream entries for {once['events_acknowledged']:,} "
        f"acknowledged events; missing {once['missing']}, twice {once['recorded_twice']}; "
        f"{dup['bodies']} bodies ({dup['events']} events) sent again -> "
        f"{dup['new_entries']} new entries"
    )
    print(
        f"processor: backlog at most {res['max_backlog']:,} bodies; empty "
        f"{res['drain_after_last_ack_s']} s after the last ack; send -> recorded p50 "
        f"{once['lag_ms']['p50']} ms, p99 {once['lag_ms']['p99']} ms"
    )
    print(
        f"cores busy: {res['cores_busy']}; CPU ms per body {res['cpu_ms_per_body']} "
        f"(calibration {res['calibration_ms']} ms)"
    )
    if not res["ok"]:
        print("FAILED: an acknowledged event was lost, recorded twice, or recorded again")


def _args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.webhooks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--rate", type=float, default=1000.0, help="bodies per second (default 1000)")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--accounts", type=int, default=50)
    p.add_argument("--users", type=int, default=2000)
    p.add_argument("--max-backlog", type=int, default=0, help="the gateway's (default: its own)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--json-out", metavar="FILE", help="also append the JSON line to FILE")
    return p.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
