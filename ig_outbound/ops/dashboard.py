"""The Grafana dashboard, built from code with Grafana's foundation SDK.

`.venv/bin/python -m ig_outbound.ops.dashboard > deploy/grafana/ig-outbound.json` regenerates
the committed JSON; tests/ops/test_dashboard.py fails when the two differ, when a query names
a metric or label the product does not serve, or when Prometheus cannot parse a query.

Fleet series (worker/fleet_metrics.py) are aggregated with `max`, never `sum`: across a lease
handover two workers may serve them at once.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dashboard_b
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

UID = "ig-outbound"
REGENERATE = ".venv/bin/python -m ig_outbound.ops.dashboard > deploy/grafana/ig-outbound.json"
RATE = "[$__rate_interval]"
# Every panel and query reads the data source the viewer picks in `${datasource}`.
DATASOURCE = model.DataSourceRef(type_val="prometheus", uid="${datasource}")


@dataclass(frozen=True)
class Q:
    """One query of a panel and its series' legend."""

    expr: str
    legend: str


def _rate(
    metric: str, by: str = "", agg: str = "sum", matchers: str = "", window: str = RATE
) -> str:
    """`agg by (by) (rate(metric{matchers}[$__rate_interval]))`."""
    grouping = f" by ({by}) " if by else ""
    return f"{agg}{grouping}(rate({metric}{matchers}{window}))"


def _quantiles(histogram: str) -> list[Q]:
    """p50 and p99 of a histogram over the whole fleet."""
    return [
        Q(f"histogram_quantile({q}, {_rate(histogram + '_bucket', 'le')})", f"p{round(q * 100)}")
        for q in (0.5, 0.99)
    ]


def _targets(queries: Sequence[Q]) -> list[Builder[Any]]:
    return [
        prometheus.Dataquery()
        .expr(q.expr)
        .legend_format(q.legend)
        .ref_id(chr(ord("A") + i))
        .datasource(DATASOURCE)
        for i, q in enumerate(queries)
    ]


def _timeseries(
    title: str, unit: str, queries: Sequence[Q], description: str, span: int = 8
) -> timeseries.Panel:
    return (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .min(0)
        .span(span)
        .height(8)
        .targets(_targets(queries))
        .legend(
            common_b.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .tooltip(
            common_b.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.DESCENDING)
        )
    )


def _stat(
    title: str, unit: str, queries: Sequence[Q], description: str, alert_at: float | None = None
) -> stat.Panel:
    """A stat of the last value; red from `alert_at` on when given."""
    steps = [model.Threshold(value=None, color="green")]
    if alert_at is not None:
        steps.append(model.Threshold(value=alert_at, color="red"))
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(4)
        .height(8)
        .targets(_targets(queries))
        .reduce_options(common_b.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .graph_mode(common.BigValueGraphMode.AREA)
        .color_mode(common.BigValueColorMode.VALUE)
        .thresholds(dashboard_b.ThresholdsConfig().mode(model.ThresholdsMode.ABSOLUTE).steps(steps))
    )


Row = tuple[str, list[Builder[model.Panel]]]


def _throughput() -> Row:
    outcomes = "ig_outbound_outcomes_total"
    failed = '{status!="sent"}'
    return "Throughput", [
        _timeseries(
            "Outcomes by status",
            "ops",
            [Q(_rate(outcomes, "status"), "{{status}}")],
            "Terminal outcomes per second over the fleet.",
            span=6,
        ),
        _timeseries(
            "Outcomes by kind",
            "ops",
            [Q(_rate(outcomes, "kind"), "{{kind}}")],
            "Terminal outcomes per second by message kind.",
            span=6,
        ),
        _timeseries(
            "Top failure reasons",
            "ops",
            [Q(f"topk(10, {_rate(outcomes, 'reason', matchers=failed)})", "{{reason}}")],
            "The ten most frequent reasons of outcomes other than sent.",
            span=6,
        ),
        _timeseries(
            "Failure ratio",
            "percentunit",
            [Q(f"{_rate(outcomes, matchers=failed)} / {_rate(outcomes)}", "not sent")],
            "Share of terminal outcomes other than sent.",
            span=6,
        ),
    ]


def _latency() -> Row:
    return "Latency", [
        _timeseries(
            "Queue wait",
            "s",
            _quantiles("ig_outbound_queue_wait_seconds"),
            "Enqueue (or not_before) to the first send attempt.",
        ),
        _timeseries(
            "End to end",
            "s",
            _quantiles("ig_outbound_end_to_end_seconds"),
            "Enqueue to terminal outcome.",
        ),
        _timeseries(
            "Graph request duration",
            "s",
            _quantiles("ig_outbound_graph_request_duration_seconds"),
            "One Graph API send request.",
        ),
    ]


def _queue() -> Row:
    return "Queue and fleet", [
        _timeseries(
            "Queue depth",
            "short",
            [
                Q("sum(max by (shard) (ig_outbound_queue_ready))", "ready"),
                Q("sum(max by (shard) (ig_outbound_queue_scheduled))", "scheduled"),
            ],
            "Intents due now (waiting for a worker) and due later (backoff, not_before, a "
            "rate slot ahead).",
        ),
        _timeseries(
            "Oldest ready intent",
            "s",
            [Q("max(ig_outbound_queue_oldest_ready_age_seconds)", "age")],
            "How long the oldest ready intent has been due: grows when workers fall behind.",
        ),
        _stat(
            "Dead letters",
            "short",
            [Q("sum(max by (shard) (ig_outbound_dead_letters))", "dead letters")],
            "Entries in the dead-letter stream.",
            alert_at=1,
        ),
        _stat(
            "Live workers",
            "short",
            [
                Q("sum(max by (shard) (ig_outbound_workers_live))", "heartbeat"),
                Q('count(up{job="ig-outbound-worker"} == 1)', "scraped"),
            ],
            "Workers with a fresh heartbeat in Redis, and worker targets Prometheus scrapes.",
        ),
        _timeseries(
            "Jobs in flight",
            "short",
            [Q("sum(ig_outbound_jobs_in_flight)", "in flight")],
            "Send jobs running now over the fleet (a per-process gauge: summed).",
        ),
        _stat(
            "Fleet gauges age",
            "s",
            [
                Q(
                    "time() - min(max by (shard) (ig_outbound_fleet_metrics_timestamp_seconds))",
                    "age",
                )
            ],
            "Since the fleet's gauges were last computed: more than a few intervals means "
            "no worker holds the fleet-metrics lease.",
            alert_at=60,
        ),
    ]


def _rate_limits() -> Row:
    return "Rate limits", [
        _timeseries(
            "Sends per account against Meta's limit",
            "reqps",
            [
                Q(
                    # A fixed 1m: a longer window would smooth away the bursts the
                    # limit is about.
                    _rate(
                        "ig_outbound_account_sends_total",
                        "account, rate_class",
                        matchers='{account=~"$account"}',
                        window="[1m]",
                    ),
                    "{{account}} {{rate_class}}",
                ),
                Q(
                    'max by (rate_class) (ig_outbound_rate_limit{window="1s"})',
                    "limit {{rate_class}}",
                ),
            ],
            "Requests Graph accepted per second, per allow-listed account and rate class, "
            "with Meta's per-second limit as a dashed line (private replies are limited per "
            "hour: not drawn).",
            span=24,
        ).override_by_regexp(
            "^limit .*",
            [
                model.DynamicConfigValue(
                    id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]}
                ),
                model.DynamicConfigValue(id_val="custom.fillOpacity", value=0),
            ],
        ),
    ]


def _accounts() -> Row:
    return "Accounts", [
        _timeseries(
            "Accounts by state",
            "short",
            [Q("sum by (state) (max by (state, shard) (ig_outbound_accounts))", "{{state}}")],
            "Registry accounts: active, paused, needs_reauth, removed, corrupt.",
        ),
        _timeseries(
            "Paused accounts by cause",
            "short",
            [
                Q(
                    "sum by (cause) (max by (cause, shard) (ig_outbound_accounts_paused))",
                    "{{cause}}",
                )
            ],
            "Accounts paused fleet-wide now, by the Graph error's reason.",
        ),
        _stat(
            "Slowed accounts",
            "short",
            [Q("sum(max by (shard) (ig_outbound_accounts_slowed))", "slowed")],
            "Accounts sending at a reduced rate (Meta's usage header neared 100 %).",
            alert_at=1,
        ),
        _stat(
            "Tokens expiring soon",
            "short",
            [Q("sum(max by (shard) (ig_outbound_tokens_expiring_soon))", "expiring")],
            "Accounts whose token expires within accounts.expiring_soon_s.",
            alert_at=1,
        ),
        _timeseries(
            "Pauses started by reason",
            "ops",
            [Q(_rate("ig_outbound_account_pauses_total", "reason"), "{{reason}}")],
            "Fleet-wide account pauses started.",
            span=12,
        ),
        _timeseries(
            "Token refreshes by result",
            "ops",
            [Q(_rate("ig_outbound_token_refreshes_total", "result"), "{{result}}")],
            "ok, refused (retried), invalid (needs re-authorisation), error (retried).",
            span=12,
        ),
    ]


def _graph() -> Row:
    requests = "ig_outbound_graph_requests_total"
    return "Graph API", [
        _timeseries(
            "Requests by result",
            "reqps",
            [Q(_rate(requests, "error_class, code"), "{{error_class}} {{code}}")],
            "Graph API send requests by result class and Graph error code.",
            span=12,
        ),
        _timeseries(
            "Throttled requests",
            "reqps",
            [Q(_rate(requests, "code", matchers='{error_class="throttled"}'), "{{code}}")],
            "Requests Graph refused for a rate limit, by error code.",
            span=12,
        ),
    ]


def _retries() -> Row:
    return "Retries and waits", [
        _timeseries(
            "Retries by reason",
            "ops",
            [Q(_rate("ig_outbound_retries_total", "reason"), "{{reason}}")],
            "Deferred re-runs of an intent.",
        ),
        _timeseries(
            "Ambiguous sends by decision",
            "ops",
            [Q(_rate("ig_outbound_ambiguous_sends_total", "decision"), "{{decision}}")],
            "Sends whose fate was unknown, by what the policy decided.",
        ),
        _timeseries(
            "Rate waits by rate class",
            "ops",
            [Q(_rate("ig_outbound_rate_waits_total", "rate_class"), "{{rate_class}}")],
            "Short in-process waits for a reserved rate slot.",
        ),
    ]


def _refusals() -> Row:
    return "Refusals and disclosures", [
        _timeseries(
            "Window refusals",
            "ops",
            [
                Q(
                    _rate("ig_outbound_window_refusals_total", "stage, reason"),
                    "{{stage}} {{reason}}",
                ),
                # A fleet counter (one worker serves it): max, not sum.
                Q(
                    _rate("ig_outbound_intents_refused_total", "reason", agg="max"),
                    "enqueue {{reason}}",
                ),
            ],
            "Intents ended unsent because their conversation window had closed, and intents "
            "refused at enqueue (any reason).",
        ),
        _timeseries(
            "Media refusals by reason",
            "ops",
            [Q(_rate("ig_outbound_media_refusals_total", "reason"), "{{reason}}")],
            "Intents refused unsent because a media URL broke the rules.",
        ),
        _timeseries(
            "Disclosures by trigger",
            "ops",
            [Q(_rate("ig_outbound_disclosures_total", "trigger"), "{{trigger}}")],
            "Bot disclosures sent before an automated message.",
        ),
    ]


def _intake() -> Row:
    return "Intake", [
        _timeseries(
            "Intents enqueued",
            "ops",
            [Q(_rate("ig_outbound_intents_enqueued_total", agg="max"), "enqueued")],
            "Intents producers enqueued (any language), counted by the enqueue script.",
            span=12,
        ),
        _timeseries(
            "HTTP intake by status",
            "ops",
            [Q(_rate("ig_outbound_intake_intents_total", "status"), "{{status}}")],
            "Intents received on the gateway's HTTP intake.",
            span=12,
        ),
    ]


def _webhooks() -> Row:
    return "Webhooks (gateway)", [
        _timeseries(
            "Webhook deliveries",
            "reqps",
            [Q(_rate("ig_outbound_webhooks_total", "result, reason"), "{{result}} {{reason}}")],
            "verified (acknowledged), refused (signature, body, size), throttled (backlog full).",
        ),
        _timeseries(
            "Inbound events",
            "ops",
            [Q(_rate("ig_outbound_inbound_events_total", "type, result"), "{{type}} {{result}}")],
            "Events of acknowledged webhooks, by type and what recording did.",
        ),
        _timeseries(
            "Webhook ack latency",
            "s",
            _quantiles("ig_outbound_webhook_ack_seconds"),
            "A delivery's arrival to its answer (Meta retries slow answers).",
        ),
    ]


ROWS = (
    _throughput,
    _latency,
    _queue,
    _rate_limits,
    _accounts,
    _graph,
    _retries,
    _refusals,
    _intake,
    _webhooks,
)


def _variables() -> list[Builder[model.VariableModel]]:
    return [
        dashboard_b.DatasourceVariable("datasource").label("Data source").type("prometheus"),
        dashboard_b.QueryVariable("account")
        .label("Account")
        .datasource(DATASOURCE)
        .query("label_values(ig_outbound_account_sends_total, account)")
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        # Queries match `=~"$account"`: "All" is any account, not just those listed.
        .all_value(".*")
        .current(model.VariableOption(selected=True, text=["All"], value=["$__all"])),
    ]


def build() -> model.Dashboard:
    builder = (
        dashboard_b.Dashboard("ig-outbound")
        .uid(UID)
        .description("Outbound Instagram messages: throughput, latency, queue, limits, webhooks.")
        .tags(["ig-outbound", "instagram", "messaging"])
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("browser")
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .variables(_variables())
    )
    for row in ROWS:
        title, panels = row()
        builder = builder.with_row(dashboard_b.Row(title))
        for panel in panels:
            builder = builder.with_panel(panel)
    built = builder.build()
    # Stable ids: Grafana would number the panels itself, differently on each import.
    for number, placed in enumerate(built.panels or [], start=1):
        placed.id_val = number
    return built


def render() -> str:
    """The dashboard's JSON as committed: sorted keys, indented, a trailing newline."""
    return json.dumps(build(), cls=JSONEncoder, sort_keys=True, indent=2) + "\n"


def _panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every panel that is not a row, with those inside collapsed rows."""
    found: list[dict[str, Any]] = []
    for panel in panels:
        if panel.get("type") == "row":
            found.extend(_panels(panel.get("panels") or []))
        else:
            found.append(panel)
    return found


def dashboard_panels(document: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The panels (rows left out) of `document`, the built dashboard's JSON by default."""
    doc = json.loads(render()) if document is None else document
    return _panels(doc.get("panels") or [])


def dashboard_queries(document: dict[str, Any] | None = None) -> list[str]:
    """Every panel query's PromQL, as Grafana sends it (variables not substituted)."""
    return [
        str(target["expr"])
        for panel in dashboard_panels(document)
        for target in panel.get("targets") or []
        if "expr" in target
    ]


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
