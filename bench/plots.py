"""PNG plots of the benchmarks' figures (matplotlib, headless), for the README.

Each function takes plain numbers a benchmark measured and writes one PNG; the benchmarks
call them when given `--plots DIR` (the README's pictures live in docs/img/).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure

matplotlib.use("Agg")  # no display: write files only (before pyplot is imported)

import matplotlib.pyplot as plt

DPI = 110


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def per_second(arrivals: Sequence[float], start: float) -> tuple[list[float], list[int]]:
    """Calls in each Meta window of 1 s sliding by 0.1 s: (window end since `start`, calls)."""
    times = sorted(arrivals)
    if not times:
        return [], []
    ends: list[float] = []
    counts: list[int] = []
    lo = 0
    end = times[0] + 1.0
    last = times[-1] + 0.1
    hi = 0
    while end <= last:
        while hi < len(times) and times[hi] <= end:
            hi += 1
        while lo < hi and times[lo] <= end - 1.0:
            lo += 1
        ends.append(end - start)
        counts.append(hi - lo)
        end += 0.1
    return ends, counts


def rate_over_time(
    series: Mapping[str, Sequence[float]],
    limits: Mapping[str, float],
    title: str,
    path: Path,
) -> Path:
    """Calls in every 1-s window over time, one panel per series, with Meta's limit."""
    fig, axes = plt.subplots(len(series), 1, figsize=(9, 2.6 * len(series)), squeeze=False)
    start = min((min(t) for t in series.values() if t), default=0.0)
    for ax, (label, arrivals) in zip(axes[:, 0], series.items(), strict=True):
        ends, counts = per_second(arrivals, start)
        ax.plot(ends, counts, lw=1.0, label=f"{label}: calls in the last 1 s")
        ax.axhline(limits[label], color="tab:red", ls="--", lw=1.0, label="Meta's limit")
        ax.set_ylim(0, limits[label] * 1.15)
        ax.set_ylabel("calls / 1 s")
        ax.legend(loc="lower right", fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("seconds since the first call")
    axes[0, 0].set_title(title)
    return _save(fig, path)


def lanes_over_time(
    series: Mapping[str, Sequence[float]], limit: float, title: str, path: Path
) -> Path:
    """Calls in every 1-s window over time of each lane of one account, their sum, and
    Meta's limit, on one panel."""
    fig, ax = plt.subplots(figsize=(9, 4))
    start = min((min(t) for t in series.values() if t), default=0.0)
    everything = [t for times in series.values() for t in times]
    for label, arrivals in {**series, "both": everything}.items():
        ends, counts = per_second(arrivals, start)
        ax.plot(ends, counts, lw=1.0, label=f"{label}: calls in the last 1 s")
    ax.axhline(limit, color="tab:red", ls="--", lw=1.0, label="Meta's limit")
    ax.set_ylim(0, limit * 1.15)
    ax.set_ylabel("calls / 1 s")
    ax.set_xlabel("seconds since the first call")
    ax.legend(loc="center right", fontsize=8)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    return _save(fig, path)


def latency_cdf(samples: Mapping[str, Sequence[float]], title: str, path: Path) -> Path:
    """Empirical CDF of each latency sample (milliseconds), log x."""
    fig, ax = plt.subplots(figsize=(8, 4))
    for label, values in samples.items():
        ordered = sorted(values)
        if not ordered:
            continue
        ys = [(i + 1) / len(ordered) for i in range(len(ordered))]
        ax.step(ordered, ys, where="post", label=f"{label} (n={len(ordered)})")
    ax.set_xscale("log")
    ax.set_xlabel("milliseconds")
    ax.set_ylabel("fraction at or below")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return _save(fig, path)


def scaling_curve(
    points: Mapping[str, Sequence[tuple[float, float]]],
    xlabel: str,
    ylabel: str,
    title: str,
    path: Path,
) -> Path:
    """One line per series of (x, y) points, e.g. worker processes -> sends/s."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, pts in points.items():
        xs, ys = zip(*pts, strict=True) if pts else ((), ())
        ax.plot(xs, ys, marker="o", label=label)
        for x, y in pts:
            ax.annotate(f"{y:,.0f}", (x, y), textcoords="offset points", xytext=(0, 6),
                        ha="center", fontsize=8)  # fmt: skip
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def recovery_times(seconds: Sequence[float], baseline_s: float, path: Path) -> Path:
    """Each kill's takeover time, against what ARQ alone would take."""
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.plot(range(1, len(seconds) + 1), seconds, "o", label="picked up again (heartbeat reclaim)")
    ax.axhline(baseline_s, color="tab:red", ls="--", label=f"ARQ alone: {baseline_s:g} s")
    ax.axhline(5, color="tab:green", ls=":", label="target: 5 s")
    ax.set_xlabel("kill")
    ax.set_ylabel("seconds after SIGKILL")
    ax.set_ylim(0, baseline_s * 1.1)
    ax.set_title("Crash recovery: a SIGKILLed worker's send taken over")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def shard_scaling(
    rates: Mapping[int, float], redis_us: Mapping[int, Sequence[float]], path: Path
) -> Path:
    """Left: intents/s with 1 and 2 Redis shards. Right: each shard's Redis CPU per intent,
    with the intents/s one Redis core would sustain at that cost."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    xs = sorted(rates)
    left.plot(xs, [rates[x] for x in xs], marker="o", label="measured (same worker processes)")
    for x in xs:
        left.annotate(f"{rates[x]:,.0f}", (x, rates[x]), textcoords="offset points",
                      xytext=(0, 6), ha="center", fontsize=8)  # fmt: skip
    left.set_xticks(xs)
    left.set_xlabel("Redis shards")
    left.set_ylabel("intents/s")
    left.set_ylim(bottom=0)
    left.set_title("Throughput")
    left.grid(alpha=0.3)
    left.legend(fontsize=8, loc="lower right")
    labels, values = [], []
    for x in xs:
        for i, us in enumerate(redis_us[x]):
            labels.append(f"{x} shard{'s' if x > 1 else ''}\nshard {i}")
            values.append(us)
    bars = right.bar(range(len(values)), values, color="tab:orange")
    for bar, us in zip(bars, values, strict=True):
        per_core = 1e6 / us if us else 0
        right.annotate(f"{us:,.0f} µs\n{per_core:,.0f}/s per core",
                       (bar.get_x() + bar.get_width() / 2, us), textcoords="offset points",
                       xytext=(0, 4), ha="center", fontsize=8)  # fmt: skip
    right.set_xticks(range(len(values)), labels, fontsize=8)
    right.set_ylabel("Redis CPU µs per intent")
    right.set_ylim(0, max(values, default=1) * 1.35)
    right.set_title("Redis CPU per intent, per shard")
    right.grid(alpha=0.3, axis="y")
    return _save(fig, path)
