"""Rates: limiter precision, burst drain, latency at half load, priority lanes, fairness,
worker scaling.

    .venv/bin/python -m bench.rates [--only NAME[,NAME...]] [--workers K] [--json-out FILE]

Every sub-benchmark runs against its own private Redis and one Graph emulator process with
Meta's per-account limits ON (100/s light, 10/s audio/video, private replies per hour), with
real `ig-outbound worker` processes, and prints a human summary and one JSON line:

* precision: three accounts flooded at once, one per rate class (light text, audio/video,
  private replies to registered comments), with requests delayed in transit by a random
  0..`--transit-jitter-ms` (the emulator's arrival time moves); per class the sustained rate
  the emulator saw against the limit, the most calls in any of Meta's windows, violations.
* burst: 20,000 text replies across 200 accounts (100 each, each to its own recipient)
  enqueued at once; drain time against what the limits allow and against the CPU floor.
* latency: a paced producer offers half of one account's limit to a few accounts for ~20 s;
  enqueue->outcome and enqueue->arrival-at-Graph percentiles.
* priority: one account drains 20,000 bulk intents while interactive replies arrive at 5/s:
  the replies' enqueue->arrival percentiles, the bulk rate against what the replies leave.
* fairness: one account with a 20,000-intent backlog sending at full rate; single intents of
  another account, a few seconds apart: their latency and how many busy sends overtook them.
* scaling: the same N (rate limit not binding) with 1, 2 and 4 worker processes.

Stack start-up, CPU accounting and the output conventions come from bench/harness.py, the
`ours`/`floor` phases from bench/throughput.py. Every wait is bounded (`--timeout`); every
process is stopped at the end, also on errors and SIGTERM. See bench/README.md.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import threading
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict, replace
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

from bench import plots
from bench.harness import (
    BenchAccount,
    BenchError,
    BenchRun,
    Snapshot,
    WorkerGroup,
    account_configs,
    add_common_args,
    calibrate_ms,
    delta,
    emit_json,
    enqueue_chunked,
    exit_on_sigterm,
    git_revision,
    make_accounts,
    percentile,
    read_outcomes,
    snapshot,
    start_stack,
    start_workers,
    sync_reply,
    text_intent,
    wait_for,
    wait_outcomes,
)
from bench.throughput import PhaseResult, run_floor, run_ours
from ig_outbound.emulator import EmulatorConfig, EmulatorControl
from ig_outbound.emulator.config import CommentConfig, RateLimitConfig
from ig_outbound.producers.enqueue import SyncOutboundClient
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.outcome import Outcome
from ig_outbound.producers.rate_class import RateClass
from ig_outbound.worker.limiter import budgets
from ig_outbound.worker.settings import RateSettings, WorkerTuning

# Sends that let every worker measure its round trips (worker/transit.py skips its first 16
# and needs 32 more; a steady fleet has hundreds).
WARMUP_SENDS = 900
SUB_BENCHMARKS = ("precision", "burst", "latency", "priority", "fairness", "scaling")
META_WINDOW_S = {"light": 1.0, "media": 1.0, "private_reply": 3600.0}


# --- the stack -----------------------------------------------------------------------------


def _start_stack(
    stack: ExitStack,
    args: argparse.Namespace,
    accounts: Sequence[BenchAccount],
    *,
    comments: Sequence[CommentConfig] = (),
    rate_limits: RateLimitConfig | None = None,
) -> BenchRun:
    """Private Redis + one emulator process (Meta's limits on, any recipient) -> a `BenchRun`."""
    config = EmulatorConfig(
        accounts=account_configs(accounts, "rates"),
        allow_any_recipient=True,
        comments=list(comments),
        rate_limits=rate_limits or RateLimitConfig(enabled=True),
    )
    return start_stack(
        stack, args, accounts, config, log_prefix="igo-rates-", control_timeout_s=60.0
    )


def _all_sent(outcomes: Mapping[str, Outcome], n: int, tag: str) -> None:
    not_sent = {k: o.status.value for k, o in outcomes.items() if o.status.value != "sent"}
    if len(outcomes) != n or not_sent:
        sample = dict(list(not_sent.items())[:5])
        raise BenchError(f"{tag}: {len(outcomes)} outcomes for {n} intents, not sent: {sample}")


def _call_key(call: Mapping[str, Any]) -> str | None:
    """The idempotency key our intents put first in their text (None for other calls)."""
    text = call["body"].get("message", {}).get("text")
    return text.split(" ", 1)[0] if isinstance(text, str) else None


def _ms_stats(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "p50": round(percentile(values, 0.50), 1),
        "p90": round(percentile(values, 0.90), 1),
        "p99": round(percentile(values, 0.99), 1),
        "max": round(max(values), 1),
    }


def _meta(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git_revision(),
        "cpus": os.cpu_count(),
        "calibration_ms": args.calibration_ms,
        "loadavg_before": [round(v, 2) for v in os.getloadavg()],
        "log_level": args.log_level or "default",
    }


def _our_pace(rate: RateSettings, transit_ms: int | None = None) -> dict[str, dict[str, float]]:
    """Per class what our limiter allows (with a transit allowance of `transit_ms`, default
    the maximum): sends per window, window, and the steady pace."""
    return {
        cls.value: {
            "limit": b.limit,
            "window_s": b.window_ms / 1000,
            "interval_ms": round(b.interval_ms, 3),
            "pace_per_s": round(1000 / b.interval_ms, 3),
        }
        for cls, b in budgets(rate, transit_ms).items()
    }


def replace_rate(rate: RateSettings, **changes: Any) -> RateSettings:
    return RateSettings.model_validate({**rate.model_dump(), **changes})


def _fleet_transit_ms(run: BenchRun, keys: Keys) -> int | None:
    """The transit allowance the fleet's windows use now (the largest a live worker measured)."""
    raw = sync_reply(run.r.hvals(keys.transit))
    values = [int(v) for v in raw]
    return max(values) if values else None


def _warm_up(
    run: BenchRun,
    client: SyncOutboundClient,
    keys: Keys,
    procs: WorkerGroup,
    account: BenchAccount,
    args: argparse.Namespace,
) -> int:
    """A running fleet has measured its transit allowance before a flood comes (the enqueue
    script spaces a backlog by the allowance it knows then): `WARMUP_SENDS` sends on an
    account of their own, then until the published spacing has settled (the allowance
    narrows a step per heartbeat). Returns the warm-up's intents."""
    warmup = [
        text_intent(f"w-{run.run_id}-{i}", account.ig_id, f"39{i:08d}", f"w-{i} warm-up")
        for i in range(WARMUP_SENDS)
    ]
    enqueue_chunked(client, warmup, args.chunk)
    wait_outcomes(run, keys, len(warmup), procs, "the warm-up outcomes")
    last, stable_since, deadline = None, time.monotonic(), time.monotonic() + 30
    while time.monotonic() < deadline:
        spacing = sync_reply(run.r.hget(keys.rates, "light_interval_ms"))
        if spacing != last:
            last, stable_since = spacing, time.monotonic()
        elif time.monotonic() - stable_since >= 3 * WorkerTuning().heartbeat_interval_s:
            break
        time.sleep(0.25)
    return len(warmup)


def _after_warmup(times: Sequence[float], warmup_s: float) -> int:
    """How many of `times` fall within `warmup_s` of the first (the limiter's windows start at
    the maximum transit allowance until the workers have measured one)."""
    ordered = sorted(times)
    return bisect_left(ordered, ordered[0] + warmup_s) if ordered else 0


# --- 1. precision --------------------------------------------------------------------------


def _sustained(times: Sequence[float], skip: int) -> tuple[float, float]:
    """(sends per second after the first `skip` sends, seconds first->last send)."""
    ordered = sorted(times)
    if len(ordered) < 2:
        return 0.0, 0.0
    k = min(skip, len(ordered) - 2)
    span = ordered[-1] - ordered[k]
    return ((len(ordered) - 1 - k) / span if span > 0 else 0.0), ordered[-1] - ordered[0]


def _slot_gaps(times: Sequence[float], skip: int, interval_s: float) -> tuple[int, int]:
    """After the first `skip` sends: (gaps longer than 1.5 slot intervals, slots they span)."""
    ordered = sorted(times)[skip:]
    gaps = [b - a for a, b in pairwise(ordered) if b - a > 1.5 * interval_s]
    return len(gaps), sum(round(g / interval_s) - 1 for g in gaps)


def _overtaken(calls: Sequence[Mapping[str, Any]], skip: int) -> list[int]:
    """Per send, in arrival order: how many intents enqueued after it reached Graph first.
    The enqueue index is the recipient id without its first `skip` digits."""
    seen: list[int] = []
    out = []
    for call in sorted(calls, key=lambda c: c["arrived_at"]):
        i = int(call["recipient_id"][skip:])
        pos = bisect_left(seen, i)
        out.append(len(seen) - pos)
        seen.insert(pos, i)
    return out


def _job_runs(before: Snapshot, after: Snapshot) -> int:
    """ARQ job runs between two `snapshot`s: every run counts the job's try, by the claim's
    INCR (arq_claim.lua) or, when ARQ fetches the job itself, redis-py's INCRBY."""
    return int(
        sum(after.commands.get(c, 0) - before.commands.get(c, 0) for c in ("incr", "incrby"))
    )


def bench_precision(args: argparse.Namespace) -> dict[str, Any]:
    meta = _meta(args)
    light, media, pr, warm_account = make_accounts(4, 0)
    now = time.time()
    comments = [
        CommentConfig(
            comment_id=f"1790{i:010d}",
            ig_id=pr.ig_id,
            commenter_igsid=f"1255{i:010d}",
            created_at=now - 60,
        )
        for i in range(args.pr_n)
    ]
    rate = RateSettings(private_replies_per_h=args.pr_per_h)
    if args.transit_fixed_ms is not None:
        fixed = args.transit_fixed_ms
        rate = replace_rate(rate, transit_measured=False, transit_min_ms=0, transit_max_ms=fixed)
    with ExitStack() as stack:
        run = _start_stack(
            stack,
            args,
            [light, media, pr, warm_account],
            comments=comments,
            rate_limits=RateLimitConfig(enabled=True, private_replies_per_h=args.pr_per_h),
        )
        env = {"IG_OUTBOUND_RATE__PRIVATE_REPLIES_PER_H": str(args.pr_per_h)}
        if args.transit_fixed_ms is not None:
            env["IG_OUTBOUND_RATE__TRANSIT_MEASURED"] = "false"
            env["IG_OUTBOUND_RATE__TRANSIT_MIN_MS"] = "0"
            env["IG_OUTBOUND_RATE__TRANSIT_MAX_MS"] = str(args.transit_fixed_ms)
        procs, client, keys = start_workers(stack, run, args.workers, "precision", env)
        if args.transit_ms or args.transit_jitter_ms:
            # Requests reach Graph late by a random amount: what the allowance must cover.
            run.control.set_faults(
                transit_ms=args.transit_ms, transit_jitter_ms=args.transit_jitter_ms, seed=13
            )
        tag = f"p-{run.run_id}"
        warmed = _warm_up(run, client, keys, procs, warm_account, args)
        intents: list[dict[str, Any]] = [
            text_intent(f"{tag}-l{i}", light.ig_id, f"30{i:08d}", f"{tag}-l{i} light flood")
            for i in range(args.light_n)
        ]
        intents += [
            {
                "idempotency_key": f"{tag}-m{i}",
                "account_id": media.ig_id,
                "recipient": {"id": f"31{i:08d}"},
                "content": {
                    "kind": "audio" if i % 2 else "video",
                    "url": f"https://cdn.example.com/{tag}/{i}.mp4",
                },
            }
            for i in range(args.media_n)
        ]
        intents += [
            {
                "idempotency_key": f"{tag}-r{i}",
                "account_id": pr.ig_id,
                "recipient": {"comment_id": c.comment_id},
                "content": {"kind": "text", "text": f"{tag}-r{i} thanks for your comment"},
            }
            for i, c in enumerate(comments)
        ]
        total = len(intents)
        before = snapshot(run.r, procs.pids(), run.emulator_pid)
        enqueue_chunked(client, intents, args.chunk)
        wait_outcomes(run, keys, total + warmed, procs, "the precision outcomes")
        after = snapshot(run.r, procs.pids(), run.emulator_pid)
        transit_ms = _fleet_transit_ms(run, keys)
        elapsed = after.at - before.at
        _all_sent(read_outcomes(run.r, keys, tag), total, "precision")
        stats = run.control.stats()
        calls = run.control.calls()["calls"]
        procs.stop()
    pace = _our_pace(rate, transit_ms)
    limits = {"light": 100.0, "media": 10.0, "private_reply": float(args.pr_per_h)}
    accounts = {"light": light.ig_id, "media": media.ig_id, "private_reply": pr.ig_id}
    if args.plots is not None:
        series = {
            cls: [c["arrived_at"] for c in calls if c["ig_id"] == accounts[cls]]
            for cls in ("light", "media")
        }
        plots.rate_over_time(
            {"text (light)": series["light"], "audio/video (media)": series["media"]},
            {"text (light)": limits["light"], "audio/video (media)": limits["media"]},
            f"Per-account sends at Graph, {args.workers} workers (emulator arrival times)",
            args.plots / "rates-precision.png",
        )
    classes: dict[str, dict[str, Any]] = {}
    for cls, account in accounts.items():
        mine = [c for c in calls if c["ig_id"] == account]
        times = [c["arrived_at"] for c in mine]
        # Recipients are <2-4 digit class marker><index>: the index is the enqueue order.
        skip = 4 if cls == "private_reply" else 2
        overtaken = _overtaken(mine, skip)
        warm = max(rate.burst, _after_warmup(times, args.warmup_s)) if cls != "private_reply" else 0
        sustained, span = _sustained(times, warm)
        gaps, lost = _slot_gaps(times, rate.burst, pace[cls]["interval_ms"] / 1000)
        limit_per_s = limits[cls] / META_WINDOW_S[cls]
        classes[cls] = {
            "account": account,
            "sent": len(times),
            "first_to_last_s": round(span, 3),
            "sustained_per_s": round(sustained, 3),
            "meta_limit": limits[cls],
            "meta_window_s": META_WINDOW_S[cls],
            "ratio_to_meta": round(sustained / limit_per_s, 4),
            "ours": pace[cls],
            "ratio_to_our_pace": round(sustained / pace[cls]["pace_per_s"], 4),
            "max_calls_in_any_window": stats["max_calls_in_any_window"].get(account, {}).get(cls),
            "violations": stats["violations_by_account_class"].get(account, {}).get(cls, 0),
            # Sends that reached Graph after >= 10 intents enqueued after them (a refused
            # send is re-reserved at the end of the account's schedule).
            "sent_behind_10_or_more_later": sum(1 for o in overtaken if o >= 10),
            "max_overtaken_by": max(overtaken, default=0),
            "gaps_over_1_5_slots": gaps,
            "slots_skipped_in_gaps": lost,
        }
    result = {
        "bench": "rates.precision",
        **meta,
        "workers": args.workers,
        "intents": total,
        "elapsed_s": round(elapsed, 3),
        "pr_per_h": args.pr_per_h,
        "utilization": rate.utilization,
        "transit_injected_ms": [args.transit_ms, args.transit_ms + args.transit_jitter_ms],
        "transit_allowance_ms": transit_ms,
        "transit_max_ms": rate.transit_max_ms,
        "sustained_after_s": args.warmup_s,
        "burst": rate.burst,
        "classes": classes,
        "violations": stats["violations"],
        "rejected": stats["rejected"],
        "reruns_per_intent": round(_job_runs(before, after) / total - 1, 3),
        "cpu_util": delta(before, after, total, {}).cpu_util,
        "loadavg_after": [round(v, 2) for v in os.getloadavg()],
    }
    print(
        f"precision  {total} intents, {args.workers} workers, {elapsed:.1f} s; "
        f"violations {stats['violations']}, rejected {stats['rejected']}, "
        f"ARQ re-runs/intent {result['reruns_per_intent']:g}"
    )
    print(
        f"  transit injected {args.transit_ms:g}..{args.transit_ms + args.transit_jitter_ms:g} ms;"
        f" the fleet's measured allowance {transit_ms} ms (max {rate.transit_max_ms}); "
        f"rates sustained after the first {args.warmup_s:g} s"
    )
    for cls, c in classes.items():
        window = "1 s" if c["meta_window_s"] == 1.0 else "1 h"
        print(
            f"  {cls:<13} {c['sent']:>5} sent  sustained {c['sustained_per_s']:8.3f}/s  "
            f"Meta {c['meta_limit']:g}/{window} -> ratio {c['ratio_to_meta']:.3f}  "
            f"(our pace {c['ours']['pace_per_s']:g}/s, ratio {c['ratio_to_our_pace']:.3f})  "
            f"max in any {window} window {c['max_calls_in_any_window']}  "
            f"violations {c['violations']}"
        )
        print(
            f"  {'':<13} gaps > 1.5 slot intervals after the first {rate.burst}: "
            f"{c['gaps_over_1_5_slots']} (spanning {c['slots_skipped_in_gaps']} unused slots); "
            f"sent behind >= 10 later intents: {c['sent_behind_10_or_more_later']} "
            f"(max overtaken by {c['max_overtaken_by']})"
        )
    return result


# --- 2. burst ------------------------------------------------------------------------------


def bench_burst(args: argparse.Namespace) -> dict[str, Any]:
    meta = _meta(args)
    per_account = math.ceil(args.burst_n / args.burst_accounts)
    accounts = make_accounts(args.burst_accounts, per_account)
    rate = RateSettings()
    light = budgets(rate)[RateClass.LIGHT]
    with ExitStack() as stack:
        run = _start_stack(stack, args, accounts)
        ours = run_ours(run, args.burst_n, args.workers)
        stats = run.control.stats()
        calls = run.control.calls()["calls"]
        floor: PhaseResult | None = None
        if args.floor_n:
            floor = run_floor(replace(run, run_id=run.run_id + "f"), args.floor_n, args.workers)
    counts = Counter(c["ig_id"] for c in calls)
    most = max(counts.values())
    arrivals = sorted(c["arrived_at"] for c in calls)
    # Meta's limit alone: at most L calls in any 1 s window. Fluid: most / L seconds; exact:
    # the (L+1)-th call must come a full window after the first, so floor((most-1)/L) windows.
    meta_fluid_s = most / 100.0
    meta_exact_s = math.floor((most - 1) / 100) * 1.0
    # Our limiter: `burst` slots at once, then one per interval (GCRA), per account.
    ours_schedule_s = max(most - rate.burst, 0) * light.interval_ms / 1000
    floor_s = args.burst_n / floor.rate if floor else None
    busiest_window = max(v.get("light", 0) for v in stats["max_calls_in_any_window"].values())
    result = {
        "bench": "rates.burst",
        **meta,
        "n": args.burst_n,
        "accounts": args.burst_accounts,
        "per_account_max": most,
        "workers": args.workers,
        "drain_s": ours.elapsed_s,
        "enqueue_s": ours.enqueue_s,
        "sends_per_s": ours.rate,
        "first_to_last_arrival_s": round(arrivals[-1] - arrivals[0], 3),
        "theoretical_min_s": {
            "meta_fluid": round(meta_fluid_s, 3),
            "meta_exact": meta_exact_s,
            "our_limiter_schedule": round(ours_schedule_s, 3),
            "cpu_floor_bare_arq": round(floor_s, 1) if floor_s else None,
        },
        "floor_rate": floor.rate if floor else None,
        "floor_n": args.floor_n,
        "violations": stats["violations"],
        "rejected": stats["rejected"],
        "max_light_calls_in_any_1s_window": busiest_window,
        "latency_ms": ours.latency_ms,
        "cpu_util": ours.cpu_util,
        "worker_cpu_ms_per_intent": ours.worker_cpu_ms_per_intent,
        "redis_cmds_per_intent": ours.redis_cmds_per_intent,
        "deferrals_per_intent": ours.deferrals_per_intent,
        "floor": asdict(floor) if floor else None,
        "ours": asdict(ours),
        "loadavg_after": [round(v, 2) for v in os.getloadavg()],
    }
    util = ours.cpu_util
    print(
        f"burst      {args.burst_n} replies over {args.burst_accounts} accounts "
        f"(max {most}/account), {args.workers} workers"
    )
    print(
        f"  drain {ours.elapsed_s:.1f} s ({ours.rate:,.0f} sends/s; enqueue took "
        f"{ours.enqueue_s:.1f} s); violations {stats['violations']}, rejected "
        f"{stats['rejected']}, busiest 1 s window {busiest_window}"
    )
    floor_text = (
        f"; bare-ARQ CPU floor {floor_s:.1f} s ({floor.rate:,.0f}/s on {args.floor_n})"
        if floor and floor_s
        else ""
    )
    print(
        f"  theoretical minimum: Meta's limits {meta_fluid_s:.2f} s fluid / {meta_exact_s:.0f} s "
        f"exact, our limiter's schedule {ours_schedule_s:.2f} s{floor_text}"
    )
    print(
        f"  CPU (cores busy): workers {util['workers']:.2f}, redis {util['redis']:.2f}, "
        f"emulator {util['emulator']:.2f}, driver {util['driver']:.2f}, other "
        f"{util['other']:.2f}, total {util['total']:.2f} of {os.cpu_count()}; "
        f"worker {ours.worker_cpu_ms_per_intent:.2f} ms/intent"
    )
    print(
        f"  enqueue->outcome p50 {ours.latency_ms['p50']:,.0f} ms, p99 "
        f"{ours.latency_ms['p99']:,.0f} ms; re-runs/intent {ours.deferrals_per_intent:g}"
    )
    return result


# --- 3. latency at half load ---------------------------------------------------------------


class _PacedProducer(threading.Thread):
    """Enqueues (due time, intent) pairs at their time, batching whatever is due."""

    def __init__(self, client: SyncOutboundClient, schedule: Sequence[tuple[float, Any]]) -> None:
        super().__init__(name="paced-producer", daemon=True)
        self.client = client
        self.schedule = schedule
        self.stop_flag = threading.Event()
        self.error: BaseException | None = None
        self.max_late_s = 0.0
        self.batches = 0
        self.elapsed_s = 0.0

    def run(self) -> None:
        try:
            t0 = time.perf_counter()
            i, n = 0, len(self.schedule)
            while i < n and not self.stop_flag.is_set():
                now = time.perf_counter() - t0
                due = self.schedule[i][0]
                if due > now:
                    time.sleep(min(due - now, 0.05))
                    continue
                j = i
                while j < n and self.schedule[j][0] <= now and j - i < 500:
                    j += 1
                self.max_late_s = max(self.max_late_s, now - due)
                enqueue_chunked(self.client, [s[1] for s in self.schedule[i:j]], 500)
                self.batches += 1
                i = j
            self.elapsed_s = time.perf_counter() - t0
        except BaseException as exc:
            self.error = exc


def bench_latency(args: argparse.Namespace) -> dict[str, Any]:
    meta = _meta(args)
    accounts = make_accounts(args.latency_accounts, 0)
    per_account = int(args.latency_rate * args.latency_s)
    n = per_account * len(accounts)
    with ExitStack() as stack:
        run = _start_stack(stack, args, accounts)
        procs, client, keys = start_workers(stack, run, args.workers, "latency")
        tag = f"lt-{run.run_id}"
        warm = [
            text_intent(f"{tag}-w{i}", a.ig_id, f"39{i:08d}", f"{tag}-w{i} warm-up")
            for i, a in enumerate(accounts * 10)
        ]
        enqueue_chunked(client, warm, args.chunk)
        wait_outcomes(run, keys, len(warm), procs, "the warm-up outcomes")
        time.sleep(1.5)  # let the warm-up leave every rate window
        run.control.reset()
        spacing = 1.0 / args.latency_rate
        schedule = sorted(
            (
                i * spacing + a * spacing / len(accounts),
                text_intent(
                    f"{tag}-{a}-{i}", acc.ig_id, f"4{a}{i:08d}", f"{tag}-{a}-{i} half load"
                ),
            )
            for a, acc in enumerate(accounts)
            for i in range(per_account)
        )
        producer = _PacedProducer(client, schedule)
        before = snapshot(run.r, procs.pids(), run.emulator_pid)
        producer.start()
        producer.join(args.latency_s * 2 + 30)
        if producer.is_alive():
            producer.stop_flag.set()
            raise BenchError(f"latency: the producer did not finish in {args.latency_s * 2 + 30} s")
        if producer.error is not None:
            raise BenchError(f"latency: the producer failed: {producer.error!r}")
        wait_outcomes(run, keys, len(warm) + n, procs, "the latency outcomes")
        after = snapshot(run.r, procs.pids(), run.emulator_pid)
        outcomes = read_outcomes(run.r, keys, f"{tag}-")
        measured = {k: o for k, o in outcomes.items() if not k.startswith(f"{tag}-w")}
        _all_sent(measured, n, "latency")
        stats = run.control.stats()
        calls = run.control.calls()["calls"]
        procs.stop()
    _, _, cpu, util = delta(before, after, n, {})
    to_outcome = [o.latency_ms for o in measured.values() if o.latency_ms is not None]
    to_arrival = []
    for call in calls:
        outcome = measured.get(_call_key(call) or "")
        if outcome is not None and outcome.enqueued_at is not None:
            to_arrival.append((call["arrived_at"] - outcome.enqueued_at.timestamp()) * 1000)
    offered = n / producer.elapsed_s
    if args.plots is not None:
        plots.latency_cdf(
            {"enqueue -> arrival at Graph": to_arrival, "enqueue -> outcome": to_outcome},
            f"Latency at half of Meta's limit ({len(accounts)} accounts, {args.workers} workers)",
            args.plots / "rates-latency-cdf.png",
        )
    result = {
        "bench": "rates.latency",
        **meta,
        "workers": args.workers,
        "accounts": len(accounts),
        "rate_per_account": args.latency_rate,
        "duration_s": args.latency_s,
        "n": n,
        "offered_per_s": round(offered, 1),
        "producer_max_late_ms": round(producer.max_late_s * 1000, 1),
        "producer_batches": producer.batches,
        "enqueue_to_outcome_ms": _ms_stats(to_outcome),
        "enqueue_to_arrival_ms": _ms_stats(to_arrival),
        "matched_arrivals": len(to_arrival),
        "violations": stats["violations"],
        "rejected": stats["rejected"],
        "cpu_s": cpu,
        "cpu_util": util,
        "loadavg_after": [round(v, 2) for v in os.getloadavg()],
    }
    o, a = result["enqueue_to_outcome_ms"], result["enqueue_to_arrival_ms"]
    print(
        f"latency    {len(accounts)} accounts x {args.latency_rate:g}/s for {args.latency_s:g} s "
        f"({n} intents, offered {offered:.0f}/s, producer late <= "
        f"{producer.max_late_s * 1000:.0f} ms), {args.workers} workers"
    )
    print(
        f"  enqueue->outcome p50 {o['p50']:.0f} ms, p90 {o['p90']:.0f}, p99 {o['p99']:.0f}, "
        f"max {o['max']:.0f}; enqueue->arrival at Graph p50 {a.get('p50', 0):.0f} ms, "
        f"p99 {a.get('p99', 0):.0f}, max {a.get('max', 0):.0f} ({len(to_arrival)} matched)"
    )
    print(
        f"  violations {stats['violations']}, rejected {stats['rejected']}; CPU total "
        f"{util['total']:.2f} cores (other {util['other']:.2f})"
    )
    return result


# --- 3b. priority lanes ----------------------------------------------------------------------


def bench_priority(args: argparse.Namespace) -> dict[str, Any]:
    """One account drains a bulk backlog while interactive replies arrive at a steady rate."""
    meta = _meta(args)
    account, warm_account = make_accounts(2, 0)
    rate = RateSettings()
    with ExitStack() as stack:
        run = _start_stack(stack, args, [account, warm_account])
        procs, client, keys = start_workers(stack, run, args.workers, "priority")
        if args.transit_ms or args.transit_jitter_ms:
            run.control.set_faults(
                transit_ms=args.transit_ms, transit_jitter_ms=args.transit_jitter_ms, seed=17
            )
        warmed = _warm_up(run, client, keys, procs, warm_account, args)
        tag = f"pr-{run.run_id}"
        bulk = [
            {
                **text_intent(f"{tag}-b{i}", account.ig_id, f"5{i:09d}", f"{tag}-b{i} bulk"),
                "priority": "bulk",
            }
            for i in range(args.priority_bulk)
        ]
        # Interactive replies at a steady rate for about as long as the bulk drain lasts.
        spacing = 1.0 / args.priority_rate
        expected_s = args.priority_bulk / (0.9 * rate.light_per_s)
        replies = [
            (i * spacing, text_intent(f"{tag}-i{i}", account.ig_id, f"6{i:09d}", f"{tag}-i{i}"))
            for i in range(int(expected_s * args.priority_rate))
        ]
        before = snapshot(run.r, procs.pids(), run.emulator_pid)
        enqueue_chunked(client, bulk, args.chunk)
        producer = _PacedProducer(client, replies)
        producer.start()
        total = len(bulk) + len(replies) + warmed
        wait_outcomes(run, keys, total, procs, "the priority outcomes")
        producer.join(30)
        if producer.error is not None:
            raise BenchError(f"priority: the producer failed: {producer.error!r}")
        after = snapshot(run.r, procs.pids(), run.emulator_pid)
        transit_ms = _fleet_transit_ms(run, keys)
        outcomes = read_outcomes(run.r, keys, f"{tag}-")
        _all_sent(outcomes, len(bulk) + len(replies), "priority")
        stats = run.control.stats()
        calls = [c for c in run.control.calls()["calls"] if c["ig_id"] == account.ig_id]
        procs.stop()
    arrivals: dict[str, float] = {}
    for call in calls:
        key = _call_key(call)
        if key is not None:
            arrivals[key] = call["arrived_at"]
    bulk_times = sorted(arrivals[b["idempotency_key"]] for b in bulk)
    last_bulk = bulk_times[-1]
    waits_ms, during = [], 0
    for _, reply in replies:
        outcome = outcomes[reply["idempotency_key"]]
        if outcome.enqueued_at is None:
            continue
        enqueued = outcome.enqueued_at.timestamp()
        if enqueued < last_bulk:  # the bulk backlog was still queued
            during += 1
            waits_ms.append((arrivals[reply["idempotency_key"]] - enqueued) * 1000)
    first_reply = min(
        (o.enqueued_at.timestamp() for k, o in outcomes.items() if "-i" in k and o.enqueued_at),
        default=bulk_times[0],
    )
    bulk_during = [t for t in bulk_times if t >= first_reply]
    span = bulk_during[-1] - bulk_during[0] if len(bulk_during) > 1 else 0.0
    bulk_rate = (len(bulk_during) - 1) / span if span > 0 else 0.0
    interactive_rate = during / span if span > 0 else 0.0
    limit = rate.light_per_s
    pace = _our_pace(rate, transit_ms)["light"]["pace_per_s"]
    if args.plots is not None:
        reply_times = [arrivals[r["idempotency_key"]] for _, r in replies]
        plots.lanes_over_time(
            {"bulk": bulk_times, "interactive": reply_times},
            limit,
            f"One account: {len(bulk):,} bulk intents drain while replies arrive at "
            f"{args.priority_rate:g}/s ({args.workers} workers)",
            args.plots / "rates-priority.png",
        )
    result = {
        "bench": "rates.priority",
        **meta,
        "workers": args.workers,
        "bulk": len(bulk),
        "interactive": len(replies),
        "interactive_while_bulk_queued": during,
        "interactive_rate_per_s": round(interactive_rate, 3),
        "interactive_enqueue_to_arrival_ms": _ms_stats(waits_ms),
        "bulk_per_s": round(bulk_rate, 3),
        "bulk_ratio_to_meta": round(bulk_rate / limit, 4),
        "bulk_ratio_to_budget_left": round(bulk_rate / (pace - interactive_rate), 4),
        "total_ratio_to_meta": round((bulk_rate + interactive_rate) / limit, 4),
        "our_pace_per_s": pace,
        "transit_allowance_ms": transit_ms,
        "transit_injected_ms": [args.transit_ms, args.transit_ms + args.transit_jitter_ms],
        "max_calls_in_any_window": stats["max_calls_in_any_window"].get(account.ig_id, {}),
        "violations": stats["violations"],
        "rejected": stats["rejected"],
        "reruns_per_intent": round(_job_runs(before, after) / (len(bulk) + len(replies)) - 1, 3),
        "loadavg_after": [round(v, 2) for v in os.getloadavg()],
    }
    w = result["interactive_enqueue_to_arrival_ms"]
    print(
        f"priority   {len(bulk):,} bulk + {len(replies)} interactive at "
        f"{args.priority_rate:g}/s on one account, {args.workers} workers; violations "
        f"{stats['violations']}, rejected {stats['rejected']}"
    )
    print(
        f"  interactive (while bulk was queued: {during}) enqueue->arrival p50 "
        f"{w.get('p50', 0):.0f} ms, p99 {w.get('p99', 0):.0f} ms, max {w.get('max', 0):.0f} ms"
    )
    print(
        f"  bulk {bulk_rate:.2f}/s = {result['bulk_ratio_to_meta']:.3f} of Meta's {limit:g}/s, "
        f"{result['bulk_ratio_to_budget_left']:.3f} of our pace ({pace:g}/s, transit allowance "
        f"{transit_ms} ms) less the replies ({interactive_rate:.2f}/s); bulk + interactive = "
        f"{result['total_ratio_to_meta']:.3f} of Meta's limit; max in any 1 s "
        f"{result['max_calls_in_any_window'].get('light')}"
    )
    return result


# --- 4. fairness ---------------------------------------------------------------------------


def _busy_accepted(control: EmulatorControl, account: str) -> int:
    return int(control.stats()["accepted_by_account"].get(account, 0))


def bench_fairness(args: argparse.Namespace) -> dict[str, Any]:
    meta = _meta(args)
    busy, quiet = make_accounts(2, 0)
    with ExitStack() as stack:
        run = _start_stack(stack, args, [busy, quiet])
        procs, client, _ = start_workers(stack, run, args.workers, "fairness")
        tag = f"fa-{run.run_id}"
        backlog = [
            text_intent(f"{tag}-b{i}", busy.ig_id, f"50{i:08d}", f"{tag}-b{i} backlog")
            for i in range(args.fair_backlog)
        ]
        before = snapshot(run.r, procs.pids(), run.emulator_pid)
        started = time.perf_counter()
        enqueue_chunked(client, backlog, 2000)
        enqueue_s = time.perf_counter() - started

        def going() -> tuple[bool, str]:
            have = _busy_accepted(run.control, busy.ig_id)
            return have >= 200, f"{have}/200 busy sends"

        wait_for("the busy account to reach full rate", going, run.args.timeout, procs)
        reps: list[dict[str, Any]] = []
        for rep in range(args.fair_reps):
            time.sleep(args.fair_gap)
            key = f"{tag}-q{rep}"
            mark = int(run.control.calls(since=10**12)["next_since"])
            enqueued = time.time()
            client.enqueue(text_intent(key, quiet.ig_id, f"51{rep:08d}", f"{key} quiet"))
            try:
                outcome = client.wait(key, timeout=run.args.timeout)
            except TimeoutError as exc:
                raise BenchError(f"fairness: {exc}\n{procs.log_tail()}") from None
            calls = run.control.calls(since=mark)["calls"]
            mine = [c for c in calls if _call_key(c) == key]
            if outcome.status.value != "sent" or len(mine) != 1:
                raise BenchError(f"fairness: {key} ended {outcome.status}, {len(mine)} calls")
            arrived = mine[0]["arrived_at"]
            during = [
                c["arrived_at"]
                for c in calls
                if c["ig_id"] == busy.ig_id and enqueued <= c["arrived_at"] <= arrived
            ]
            enq_at = outcome.enqueued_at.timestamp() if outcome.enqueued_at else enqueued
            reps.append(
                {
                    "latency_ms": round(outcome.latency_ms or 0.0, 1),
                    "to_arrival_ms": round((arrived - enq_at) * 1000, 1),
                    "busy_sends_meanwhile": len(during),
                    "window": (enqueued, arrived),
                }
            )
        first, last = reps[0]["window"][0], reps[-1]["window"][1]
        after = snapshot(run.r, procs.pids(), run.emulator_pid)
        stats = run.control.stats()
        all_calls = run.control.calls()["calls"]
        procs.stop()
    busy_times = [
        c["arrived_at"] for c in all_calls if c["ig_id"] == busy.ig_id and first <= c["arrived_at"]
    ]
    busy_times = [t for t in busy_times if t <= last]
    busy_rate = len(busy_times) / (last - first) if last > first else 0.0
    latencies = [r["latency_ms"] for r in reps]
    meanwhile = [r["busy_sends_meanwhile"] for r in reps]
    for r in reps:
        del r["window"]
    result = {
        "bench": "rates.fairness",
        **meta,
        "workers": args.workers,
        "backlog": args.fair_backlog,
        "backlog_enqueue_s": round(enqueue_s, 2),
        "busy_rate_per_s": round(busy_rate, 1),
        "reps": reps,
        "quiet_latency_ms": {
            "p50": round(percentile(latencies, 0.5), 1),
            "max": round(max(latencies), 1),
        },
        "busy_sends_meanwhile_max": max(meanwhile),
        # Job runs beyond one per send (approximate: jobs in flight at the end count as runs).
        "reruns_per_send": round(_job_runs(before, after) / max(stats["accepted"], 1) - 1, 3),
        "violations": stats["violations"],
        "rejected": stats["rejected"],
        "busy_max_in_any_1s_window": stats["max_calls_in_any_window"]
        .get(busy.ig_id, {})
        .get("light"),
        "loadavg_after": [round(v, 2) for v in os.getloadavg()],
    }
    print(
        f"fairness   busy account: {args.fair_backlog} queued (enqueue {enqueue_s:.1f} s), "
        f"sending {busy_rate:.1f}/s during the probes; {args.workers} workers"
    )
    print(
        "  quiet intent latency (ms): "
        + ", ".join(f"{r['latency_ms']:.0f}" for r in reps)
        + f"  -> p50 {result['quiet_latency_ms']['p50']:.0f}, max "
        f"{result['quiet_latency_ms']['max']:.0f}"
    )
    print(
        "  busy sends that reached Graph meanwhile: "
        + ", ".join(str(m) for m in meanwhile)
        + f"; violations {stats['violations']}, rejected {stats['rejected']}"
    )
    return result


# --- 5. scaling ----------------------------------------------------------------------------


def bench_scaling(args: argparse.Namespace) -> dict[str, Any]:
    meta = _meta(args)
    per_account = math.ceil(args.scaling_n / args.scaling_accounts)
    accounts = make_accounts(args.scaling_accounts, per_account)
    ks = [int(k) for k in args.scaling_workers.split(",")]
    phases: list[dict[str, Any]] = []
    with ExitStack() as stack:
        run = _start_stack(stack, args, accounts)
        for k in ks:
            p = run_ours(replace(run, run_id=f"{run.run_id}k{k}"), args.scaling_n, k)
            stats = run.control.stats()
            phases.append(
                {
                    "workers": k,
                    "rate": p.rate,
                    "elapsed_s": p.elapsed_s,
                    "worker_cpu_ms_per_intent": p.worker_cpu_ms_per_intent,
                    "cpu_util": p.cpu_util,
                    "latency_ms": p.latency_ms,
                    "deferrals_per_intent": p.deferrals_per_intent,
                    "violations": stats["violations"],
                    "rejected": stats["rejected"],
                }
            )
            print(f"[scaling K={k}: {p.rate:,.0f} intents/s]", file=sys.stderr)
    if args.plots is not None:
        plots.scaling_curve(
            {"sends/s (Meta's limits on)": [(ph["workers"], ph["rate"]) for ph in phases]},
            "worker processes",
            "intents/s",
            f"Worker scaling on {os.cpu_count()} cores ({args.scaling_n} intents per phase)",
            args.plots / "rates-scaling.png",
        )
    result = {
        "bench": "rates.scaling",
        **meta,
        "n": args.scaling_n,
        "accounts": args.scaling_accounts,
        "phases": phases,
        "loadavg_after": [round(v, 2) for v in os.getloadavg()],
    }
    print(
        f"scaling    {args.scaling_n} text intents over {args.scaling_accounts} accounts, "
        "emulator limits on"
    )
    for ph in phases:
        u = ph["cpu_util"]
        print(
            f"  K={ph['workers']}: {ph['rate']:>6,.0f} sends/s  worker CPU "
            f"{ph['worker_cpu_ms_per_intent']:.2f} ms/intent  cores busy: workers "
            f"{u['workers']:.2f}, redis {u['redis']:.2f}, emulator {u['emulator']:.2f}, other "
            f"{u['other']:.2f}, total {u['total']:.2f}  p50 {ph['latency_ms']['p50']:,.0f} ms  "
            f"violations {ph['violations']}"
        )
    return result


# --- main ----------------------------------------------------------------------------------

BENCHES: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "precision": bench_precision,
    "burst": bench_burst,
    "latency": bench_latency,
    "priority": bench_priority,
    "fairness": bench_fairness,
    "scaling": bench_scaling,
}


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.rates", description=__doc__.split("\n")[0])
    p.add_argument("--only", default=",".join(SUB_BENCHMARKS), help="comma list (default: all)")
    p.add_argument("--workers", type=int, default=3, help="worker processes (not scaling): 3")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds allowed per wait")
    p.add_argument("--chunk", type=int, default=500, help="intents per enqueue round trip")
    p.add_argument("--warmup", type=int, default=100, help="warm-up intents (burst, scaling)")
    p.add_argument("--light-n", type=int, default=1500, help="precision: light intents")
    p.add_argument("--media-n", type=int, default=150, help="precision: audio/video intents")
    p.add_argument("--pr-n", type=int, default=40, help="precision: private replies")
    p.add_argument(
        "--pr-per-h", type=int, default=7200, help="precision: private-reply limit per hour"
    )
    p.add_argument("--transit-ms", type=float, default=0.0, help="precision: injected transit")
    p.add_argument(
        "--transit-jitter-ms", type=float, default=20.0, help="precision: transit jitter (0..N)"
    )
    p.add_argument(
        "--transit-fixed-ms",
        type=int,
        default=None,
        help="precision: a fixed transit allowance instead of the measured one",
    )
    p.add_argument(
        "--warmup-s", type=float, default=2.0, help="precision: sustained rate after this"
    )
    p.add_argument("--burst-n", type=int, default=20_000, help="burst: replies")
    p.add_argument("--burst-accounts", type=int, default=200, help="burst: accounts")
    p.add_argument("--floor-n", type=int, default=2000, help="burst: bare-ARQ floor N (0: skip)")
    p.add_argument("--latency-accounts", type=int, default=3, help="latency: accounts")
    p.add_argument("--latency-rate", type=float, default=47.0, help="latency: intents/s/account")
    p.add_argument("--latency-s", type=float, default=20.0, help="latency: seconds of load")
    p.add_argument("--priority-bulk", type=int, default=20_000, help="priority: bulk backlog")
    p.add_argument(
        "--priority-rate", type=float, default=5.0, help="priority: interactive replies per s"
    )
    p.add_argument("--fair-backlog", type=int, default=20_000, help="fairness: busy backlog")
    p.add_argument("--fair-reps", type=int, default=5, help="fairness: quiet probes")
    p.add_argument("--fair-gap", type=float, default=3.0, help="fairness: seconds between probes")
    p.add_argument("--scaling-n", type=int, default=3000, help="scaling: intents per phase")
    p.add_argument("--scaling-accounts", type=int, default=40, help="scaling: accounts")
    p.add_argument("--scaling-workers", default="1,2,4", help="scaling: worker counts")
    p.add_argument("--plots", type=Path, default=None, help="write PNG plots into this folder")
    add_common_args(p)
    p.set_defaults(profile=None)  # bench.throughput's phases read it (no --profile here)
    args = p.parse_args(argv)
    only = args.only.split(",")
    unknown = set(only) - set(SUB_BENCHMARKS)
    if unknown:
        p.error(f"--only takes {', '.join(SUB_BENCHMARKS)}; not {', '.join(sorted(unknown))}")
    args.only = [name for name in SUB_BENCHMARKS if name in only]
    try:
        ks = [int(k) for k in args.scaling_workers.split(",")]
    except ValueError:
        p.error("--scaling-workers takes a comma list of integers")
    sizes = [args.workers, args.chunk, args.warmup, args.light_n, args.media_n, args.pr_n]
    sizes += [args.pr_per_h, args.burst_n, args.burst_accounts, args.latency_accounts]
    sizes += [args.fair_backlog, args.fair_reps, args.scaling_n, args.scaling_accounts, *ks]
    if args.priority_bulk < 2 or args.priority_rate <= 0:
        p.error("--priority-bulk must be >= 2 and --priority-rate > 0")
    if args.transit_ms < 0 or args.transit_jitter_ms < 0 or args.warmup_s < 0:
        p.error("--transit-ms, --transit-jitter-ms and --warmup-s must be >= 0")
    if min(sizes) < 1 or args.floor_n < 0 or args.latency_rate <= 0 or args.latency_s <= 0:
        p.error("sizes, counts and rates must be >= 1 (--floor-n >= 0)")
    if args.latency_accounts > 9:
        p.error("--latency-accounts is at most 9")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    exit_on_sigterm()
    args.calibration_ms = calibrate_ms()
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(
        f"box: {os.cpu_count()} cores, load average {load}, calibration {args.calibration_ms} ms",
        file=sys.stderr,
    )
    failed = []
    for name in args.only:
        try:
            result = BENCHES[name](args)
        except BenchError as exc:
            print(f"bench.rates {name}: {exc}", file=sys.stderr)
            failed.append(name)
            continue
        emit_json(result, args.json_out)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
