"""The Grafana dashboard: the committed JSON is what the code builds, every panel queries
Prometheus, every metric and label it names is one the product serves, and Prometheus
parses every query."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ig_outbound.harness.prometheus import PrometheusServer
from ig_outbound.ops import catalog
from ig_outbound.ops.dashboard import REGENERATE, UID, dashboard_panels, dashboard_queries, render

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "deploy" / "grafana" / "ig-outbound.json"
UNITS = {"reqps", "ops", "s", "percentunit", "short"}
# Labels Prometheus adds (job, instance) or a histogram has (le): not in the catalogue.
ALWAYS_LABELS = {"le", "instance", "job"}
# Grafana's variables as a query sees them -> values Prometheus can parse.
VARIABLES = {"$__rate_interval": "1m", "$account": ".*"}

METRIC = re.compile(r"\big_outbound_[a-z0-9_]+")
QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
SELECTOR = re.compile(r"\{([^}]*)\}")
MATCHER_LABEL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")


def _document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(COMMITTED.read_text(encoding="utf-8"))
    return document


def _unknown_metrics(expr: str) -> set[str]:
    return set(METRIC.findall(expr)) - catalog.metric_series()


def _labels_used(expr: str) -> set[str]:
    """Label names in `by (...)`, `without (...)` and `{...}` matchers (quoted values left
    out: a regex value may hold anything)."""
    bare = QUOTED.sub('""', expr)
    labels = {
        name.strip()
        for group in GROUPING.findall(bare)
        for name in group.split(",")
        if name.strip()
    }
    for selector in SELECTOR.findall(bare):
        labels |= set(MATCHER_LABEL.findall(selector))
    return labels


def _unknown_labels(expr: str) -> set[str]:
    """Labels `expr` uses that none of the product's metrics it names carries."""
    names = catalog.label_names()
    known = set(ALWAYS_LABELS)
    for metric in METRIC.findall(expr):
        known |= names.get(metric, set())
    return _labels_used(expr) - known


def _substituted(expr: str) -> str:
    for variable, value in VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def test_committed_json_is_what_the_code_builds() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == render(), (
        f"{COMMITTED.relative_to(ROOT)} is stale: regenerate it with `{REGENERATE}`"
    )


def test_every_panel_queries_prometheus_with_a_unit() -> None:
    document = _document()
    assert document["uid"] == UID
    assert document["title"] == "ig-outbound"
    panels = dashboard_panels(document)
    assert len(panels) > 20
    ids = [p["id"] for p in document["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        title = panel["title"]
        assert panel["fieldConfig"]["defaults"]["unit"] in UNITS, title
        targets = panel.get("targets") or []
        assert targets, f"{title}: no query"
        for target in targets:
            assert target.get("expr"), f"{title}: a query without an expr"
            assert target.get("datasource") == {"type": "prometheus", "uid": "${datasource}"}
        ref_ids = [t["refId"] for t in targets]
        assert len(ref_ids) == len(set(ref_ids)), title
    variables = {v["name"]: v for v in document["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["account"]["multi"] and variables["account"]["includeAll"]


def test_queries_name_only_metrics_and_labels_the_product_serves() -> None:
    document = _document()
    queries = dashboard_queries(document)
    assert queries
    unknown = {q: _unknown_metrics(q) for q in queries if _unknown_metrics(q)}
    assert not unknown, f"metrics not in ig_outbound.ops.catalog: {unknown}"
    unknown = {q: _unknown_labels(q) for q in queries if _unknown_labels(q)}
    assert not unknown, f"labels the metrics do not carry: {unknown}"
    # The account variable's `label_values(metric, label)` too.
    [account] = [v for v in document["templating"]["list"] if v["name"] == "account"]
    found = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", account["query"])
    assert found is not None, account["query"]
    metric, label = found.groups()
    assert metric in catalog.metric_series()
    assert label in catalog.label_names()[metric]


def test_the_name_checks_catch_a_rename() -> None:
    """The two checks above would fail on a renamed metric or label."""
    assert _unknown_metrics("sum(rate(ig_outbound_no_such_total[1m]))") == {
        "ig_outbound_no_such_total"
    }
    assert _unknown_labels('sum by (stat) (ig_outbound_outcomes_total{kind="x"})') == {"stat"}
    assert _unknown_labels('max(ig_outbound_rate_limit{windw="1s"})') == {"windw"}
    # A quoted value is no label, whatever it holds.
    assert not _unknown_labels('ig_outbound_outcomes_total{reason=~"a=b|by (x)"}')


@pytest.fixture(scope="module")
def prometheus() -> Iterator[PrometheusServer]:
    with PrometheusServer() as server:
        yield server


@pytest.mark.slow
def test_prometheus_parses_every_query(prometheus: PrometheusServer) -> None:
    # The check itself works: a broken expression is reported.
    assert prometheus.check_query(_substituted("sum(rate(x[$__rate_interval])")) is not None
    errors: dict[str, str] = {}
    for expr in dashboard_queries(_document()):
        query = _substituted(expr)
        assert "$" not in query, f"a Grafana variable the check does not know: {expr}"
        error = prometheus.check_query(query)
        if error is not None:
            errors[expr] = error
    assert not errors, errors
