"""How `ig-outbound top` draws a `FleetView` with rich: a header line, the fleet's state in a
panel, the window's outcomes and the busiest accounts in tables. Everything that came from
Redis is put in as `Text`, never as markup (an account id or a reason is data)."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ig_outbound.ops.fleet_view import AccountRate, FleetView
from ig_outbound.producers.rate_class import RateClass

BAR_WIDTH = 20
TITLE = "ig-outbound top"


def format_age(seconds: float) -> str:
    """`42s`, `2m05s`, `1h02m`, `3d04h`: short and of steady width."""
    s = int(max(seconds, 0))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def redis_time(now_ms: int) -> str:
    return datetime.fromtimestamp(now_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _counts(mapping: dict[str, int]) -> str:
    """`cause 2, other 1` (most first), or `none`."""
    if not mapping:
        return "none"
    items = sorted(mapping.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{name} {n:,}" for name, n in items)


def header(view: FleetView, target: str) -> Text:
    return Text.assemble(
        (TITLE, "bold"),
        "  prefix ",
        (view.prefix, "cyan"),
        "  ",
        (target, "cyan"),
        "  Redis time ",
        redis_time(view.snapshot.now_ms),
        "  workers alive ",
        (str(view.snapshot.workers), "bold green" if view.snapshot.workers else "bold red"),
    )


def fleet_panel(view: FleetView) -> Panel:
    snap = view.snapshot
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim")
    grid.add_column()
    grid.add_row(
        "queue",
        Text(
            f"ready {snap.ready:,}   scheduled {snap.scheduled:,}   "
            f"oldest ready {format_age(snap.oldest_ready_age_s)}"
        ),
    )
    grid.add_row("dead letters", Text(f"{snap.dead_letters:,}", "red" if snap.dead_letters else ""))
    grid.add_row("paused", Text(_counts(snap.paused), "yellow" if snap.paused else ""))
    grid.add_row("slowed", Text(f"{snap.slowed:,}", "yellow" if snap.slowed else ""))
    grid.add_row("enqueued", Text(f"{snap.enqueued:,}   refused: {_counts(snap.refused)}"))
    return Panel(grid, title="fleet", title_align="left", expand=False)


def outcomes_table(view: FleetView) -> Table:
    table = Table(title=f"outcomes, last {view.measured_s:g}s", title_justify="left", expand=False)
    table.add_column("status")
    table.add_column("count", justify="right")
    table.add_column("per s", justify="right")
    for status, n in view.outcomes.items():
        style = "green" if status == "sent" else ("red" if n else "")
        table.add_row(Text(status, style), f"{n:,}", f"{n / view.measured_s:.2f}")
    return table


def outcomes_summary(view: FleetView) -> Text:
    """The send rate, latency and failure reasons, below the outcomes table."""
    p50, p99 = view.latency_p50_ms, view.latency_p99_ms
    latency = "-" if p50 is None or p99 is None else f"p50 {p50:,.0f} ms  p99 {p99:,.0f} ms"
    return Text.assemble(
        f"send rate {view.send_rate_per_s:.2f}/s   latency {latency}\n",
        "failure reasons: ",
        _counts(dict(view.failure_reasons)),
    )


def _limit(row: AccountRate) -> str:
    if row.rate_class is RateClass.PRIVATE_REPLY:
        return f"{row.limit_per_s * 3600:g}/h"
    return f"{row.limit_per_s:g}/s"


def _bar(pct: float) -> Text:
    filled = round(min(max(pct, 0.0), 100.0) / 100 * BAR_WIDTH)
    style = "green" if pct < 80 else ("yellow" if pct < 95 else "red")
    return Text.assemble(("█" * filled, style), ("░" * (BAR_WIDTH - filled), "dim"), f" {pct:.1f}%")


def busiest_table(view: FleetView) -> Table:
    table = Table(
        title=f"busiest accounts, last {view.measured_s:g}s", title_justify="left", expand=False
    )
    for name in ("account", "class", "sent", "sends/s", "limit", "use"):
        table.add_column(name, justify="right" if name in {"sent", "sends/s", "limit"} else "left")
    for row in view.busiest:
        table.add_row(
            Text(row.account_id),
            row.rate_class.value,
            f"{row.sent:,}",
            f"{row.per_s:.2f}",
            _limit(row),
            _bar(row.utilisation_pct),
        )
    if not view.busiest:
        table.add_row(Text("no sends in the window", "dim"), "", "", "", "", "")
    return table


def shards_table(view: FleetView) -> Table:
    """One row per shard (only drawn when there are shards); the panels above are totals."""
    table = Table(title="shards", title_justify="left", expand=False)
    for name in ("shard", "ready", "scheduled", "oldest ready", "dead letters", "workers"):
        table.add_column(name, justify="right")
    table.add_column("sends/s", justify="right")
    for row in view.shards:
        snap = row.snapshot
        table.add_row(
            str(row.shard),
            f"{snap.ready:,}",
            f"{snap.scheduled:,}",
            format_age(snap.oldest_ready_age_s),
            Text(f"{snap.dead_letters:,}", "red" if snap.dead_letters else ""),
            Text(str(snap.workers), "green" if snap.workers else "bold red"),
            f"{row.send_rate_per_s:.2f}",
        )
    return table


def footer(view: FleetView, interval_s: float | None) -> Text:
    parts = [f"read {view.read:,} outcomes, {view.skipped:,} skipped"]
    if view.truncated:
        parts.append(f"capped: rates over the newest {view.measured_s:g}s only")
    if interval_s is not None:
        parts.append(f"refresh every {interval_s:g}s, Ctrl-C quits")
    return Text("   ".join(parts), "dim")


def render(
    view: FleetView, target: str, *, error: str | None = None, interval_s: float | None = None
) -> RenderableType:
    """The whole view; `error` (Redis unavailable) shows above the last figures read."""
    parts: list[RenderableType] = [header(view, target)]
    if error is not None:
        parts.append(
            Text(
                f"Redis unavailable: {error}; retrying. Figures from "
                f"{redis_time(view.snapshot.now_ms)}",
                "bold red",
            )
        )
    parts.append(fleet_panel(view))
    if view.shards:
        parts.append(shards_table(view))
    parts += [
        outcomes_table(view),
        outcomes_summary(view),
        busiest_table(view),
        footer(view, interval_s),
    ]
    return Group(*parts)
