"""deploy/prometheus checked: promtool's checks and its unit tests of the alert rules
(alerts_test.yml), the rules' metric and label names against the code's catalogue (a renamed
metric or label fails here), the reason strings the rules match against the code that writes
them, and one runbook section per alert in docs/operations.md."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped, unused-ignore]

from ig_outbound.accounts.registry import REAUTH_PAUSE, STATES
from ig_outbound.graph.errors import ERROR_TABLE, TOKEN_MALFORMED, ErrorClass
from ig_outbound.ops.catalog import label_names, metric_series
from ig_outbound.producers.outcome import OutcomeStatus
from ig_outbound.producers.webhooks.errors import WebhookError
from ig_outbound.producers.webhooks.signature import signature_header, verify_signature
from ig_outbound.worker.fleet_metrics import FLEET_METRICS

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
ALERTS = PROMETHEUS / "alerts.yml"
ALERTS_TEST = PROMETHEUS / "alerts_test.yml"
CONFIG = PROMETHEUS / "prometheus.yml"
RUNBOOK = ROOT / "docs" / "operations.md"
RUNBOOK_URL = "https://github.com/ig-outbound/ig-outbound/blob/main/docs/operations.md#"

# Labels Prometheus adds (instance, job) or a histogram's buckets carry (le).
PROMETHEUS_LABELS = frozenset({"instance", "job", "le"})
SEVERITIES = frozenset({"page", "ticket"})

# --- promtool ----------------------------------------------------------------------------


def _promtool(*args: str) -> str:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed (scripts/setup.sh installs it)")
    run = subprocess.run(
        [promtool, *args], cwd=ROOT, capture_output=True, text=True, check=False, timeout=120
    )
    output = f"{run.stdout}\n{run.stderr}"
    assert run.returncode == 0, f"promtool {' '.join(args)} exited {run.returncode}:\n{output}"
    return output


def test_promtool_check_rules() -> None:
    output = _promtool("check", "rules", str(ALERTS.relative_to(ROOT)))
    assert f"SUCCESS: {len(_alerts())} rules found" in output, output


def test_promtool_test_rules() -> None:
    output = _promtool("test", "rules", str(ALERTS_TEST.relative_to(ROOT)))
    assert "SUCCESS" in output, output


def test_promtool_check_config() -> None:
    """The config names the rule file beside it: promtool checks that one too."""
    output = _promtool("check", "config", str(CONFIG.relative_to(ROOT)))
    assert "SUCCESS: 1 rule files found" in output, output
    assert f"SUCCESS: {len(_alerts())} rules found" in output, output


def test_the_config_scrapes_the_compose_stack() -> None:
    config = yaml.safe_load(CONFIG.read_text("utf-8"))
    assert config["global"]["scrape_interval"] == "15s"
    assert config["rule_files"] == ["alerts.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"ig-outbound-worker", "ig-outbound-gateway"}

    def targets(job: dict[str, Any]) -> list[str]:
        return [t for static in job["static_configs"] for t in static["targets"]]

    assert targets(jobs["ig-outbound-worker"]) == ["worker-1:9108", "worker-2:9108"]
    assert targets(jobs["ig-outbound-gateway"]) == ["gateway:8080"]
    assert jobs["ig-outbound-gateway"]["metrics_path"] == "/metrics"


# --- the rules' shape --------------------------------------------------------------------


@cache
def _alerts() -> tuple[dict[str, Any], ...]:
    groups = yaml.safe_load(ALERTS.read_text("utf-8"))["groups"]
    assert [g["name"] for g in groups] == ["ig-outbound"]
    rules = groups[0]["rules"]
    assert all("alert" in rule for rule in rules), "only alerting rules here"
    return tuple(rules)


def _alert(name: str) -> dict[str, Any]:
    (rule,) = (rule for rule in _alerts() if rule["alert"] == name)
    return rule


ALERT_NAMES = [rule["alert"] for rule in _alerts()]


def test_alert_names_are_unique() -> None:
    assert [n for n, c in Counter(ALERT_NAMES).items() if c > 1] == []


@pytest.mark.parametrize("name", ALERT_NAMES)
def test_every_alert_has_for_severity_and_annotations(name: str) -> None:
    rule = _alert(name)
    assert re.fullmatch(r"(\d+[smhd])+", str(rule.get("for", ""))), f"{name}: no `for:`"
    assert rule["labels"]["severity"] in SEVERITIES, name
    annotations = rule["annotations"]
    assert set(annotations) == {"summary", "description", "runbook_url"}, name
    assert all(str(value).strip() for value in annotations.values()), name
    assert annotations["runbook_url"].startswith(RUNBOOK_URL), name
    assert re.fullmatch(r"[a-z0-9-]+", _anchor_of(rule)), name


def _anchor_of(rule: dict[str, Any]) -> str:
    url: str = rule["annotations"]["runbook_url"]
    return url.removeprefix(RUNBOOK_URL)


# --- alerts_test.yml covers every alert --------------------------------------------------


def _rule_tests() -> list[dict[str, Any]]:
    suite = yaml.safe_load(ALERTS_TEST.read_text("utf-8"))
    assert suite["rule_files"] == ["alerts.yml"]
    return [case for test in suite["tests"] for case in test.get("alert_rule_test", [])]


@pytest.mark.parametrize("name", ALERT_NAMES)
def test_every_alert_is_tested_firing_and_silent(name: str) -> None:
    cases = [case for case in _rule_tests() if case["alertname"] == name]
    firing = [alert for case in cases for alert in case.get("exp_alerts") or []]
    assert any(not case.get("exp_alerts") for case in cases), f"{name}: no case where it is quiet"
    assert firing, f"{name}: no case where it fires"
    rule = _alert(name)
    for alert in firing:
        assert alert["exp_labels"]["severity"] == rule["labels"]["severity"], name
        assert set(alert["exp_annotations"]) == set(rule["annotations"]), name
        assert alert["exp_annotations"]["runbook_url"] == rule["annotations"]["runbook_url"]


def test_alerts_test_names_only_real_alerts() -> None:
    assert {case["alertname"] for case in _rule_tests()} <= set(ALERT_NAMES)


# --- metric and label names --------------------------------------------------------------

_METRIC = re.compile(r"(?<![\w:])ig_outbound_[\w:]*")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHER = re.compile(r'([A-Za-z_]\w*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*")')
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_ENCLOSING = re.compile(
    r"\b(sum|min|max|avg|group|stddev|stdvar|count|count_values|bottomk|topk|quantile"
    r"|absent|absent_over_time)\s*(?:(?:by|without)\s*\([^)]*\)\s*)?\("
)


def _blank_strings(expr: str) -> str:
    """The expression with every string literal's content blanked, positions kept: names
    and parentheses are found in the code only, never inside a label value."""
    return _STRING.sub(lambda m: m[0][0] + " " * (len(m[0]) - 2) + m[0][-1], expr)


def _closing(code: str, opening: int) -> int:
    """Index of the bracket closing the one at `opening` (strings already blanked)."""
    pairs = {"(": ")", "{": "}", "[": "]"}
    depth = 0
    for i in range(opening, len(code)):
        if code[i] == code[opening]:
            depth += 1
        elif code[i] == pairs[code[opening]]:
            depth -= 1
            if depth == 0:
                return i
    raise AssertionError(f"unbalanced {code[opening]!r} at {opening} in {code!r}")


def _skip_space(code: str, position: int) -> int:
    return position + len(code[position:]) - len(code[position:].lstrip())


def _metrics_in(code: str, start: int = 0, end: int | None = None) -> list[tuple[int, str]]:
    """(position, name) of every ig_outbound metric between start and end."""
    stop = len(code) if end is None else end
    return [(m.start(), m[0]) for m in _METRIC.finditer(code, start, stop)]


def _matchers(expr: str) -> list[tuple[str, str, str, str]]:
    """(metric, label, operator, value) of every label matcher on an ig_outbound metric."""
    code = _blank_strings(expr)
    found = []
    for m in _METRIC.finditer(code):
        brace = _skip_space(code, m.end())
        if code[brace : brace + 1] == "{":
            inside = expr[brace + 1 : _closing(code, brace)]
            for label, op, value in _MATCHER.findall(inside):
                found.append((m[0], label, op, value[1:-1]))
    return found


def _grouping_scope(code: str, clause: re.Match[str]) -> tuple[int, int]:
    """The span a `by (...)`/`without (...)` clause groups: the parenthesised argument after
    it (`sum by (x) (...)`) or before it (`sum (...) by (x)`)."""
    after = _skip_space(code, clause.end())
    if code[after : after + 1] == "(":
        return after, _closing(code, after)
    before = len(code[: clause.start()].rstrip()) - 1
    assert code[before] == ")", f"cannot tell what {clause[0]!r} groups in {code!r}"
    depth = 0
    for i in range(before, -1, -1):
        depth += {")": 1, "(": -1}.get(code[i], 0)
        if depth == 0:
            return i, before
    raise AssertionError(f"unbalanced ')' in {code!r}")


def _name_problems(expr: str) -> list[str]:
    """Metric names the product does not serve, and label names those metrics do not have."""
    series, labels = metric_series(), label_names()
    code = _blank_strings(expr)
    problems = [f"unknown metric {name}" for _, name in _metrics_in(code) if name not in series]

    def known(metric: str) -> set[str]:
        return labels.get(metric, set()) | PROMETHEUS_LABELS

    for metric, label, _, _ in _matchers(expr):
        if metric in series and label not in known(metric):
            problems.append(f"{metric} has no label {label!r}")
    everywhere = PROMETHEUS_LABELS.union(*(known(name) for _, name in _metrics_in(code)))
    for clause in _GROUPING.finditer(code):
        keyword = clause[1]
        names = [n.strip() for n in clause[2].split(",") if n.strip()]
        if keyword in ("by", "without"):
            start, end = _grouping_scope(code, clause)
            inside = [name for _, name in _metrics_in(code, start, end) if name in series]
            problems += [
                f"{keyword} ({label}): {metric} has no label {label!r}"
                for metric in inside
                for label in names
                if label not in known(metric)
            ]
        else:  # vector matching: the label must be on some metric of the expression
            problems += [
                f"{keyword} ({n}): no metric here has it" for n in names if n not in everywhere
            ]
    return problems


def _aggregation_problems(expr: str) -> list[str]:
    """Fleet series (one lease holder serves them; two at a handover) are aggregated with
    `max`, per-process series (every worker counts its own) with `sum`."""
    code = _blank_strings(expr)
    calls = []
    for m in _ENCLOSING.finditer(code):
        opening = m.end() - 1
        calls.append((opening, _closing(code, opening), m[1]))
    problems = []
    for position, name in _metrics_in(code):
        enclosing = [(start, op) for start, end, op in calls if start < position < end]
        op = max(enclosing)[1] if enclosing else None  # the innermost
        fleet = name in FLEET_METRICS
        if op in ("absent", "absent_over_time"):
            continue
        if fleet and op != "max":
            problems.append(f"{name} is a fleet series: aggregate it with max, not {op}")
        if not fleet and op != "sum":
            problems.append(f"{name} is per process: aggregate it with sum, not {op}")
    return problems


@pytest.mark.parametrize("name", ALERT_NAMES)
def test_alert_uses_only_metrics_and_labels_the_product_serves(name: str) -> None:
    assert _name_problems(_alert(name)["expr"]) == []


@pytest.mark.parametrize("name", ALERT_NAMES)
def test_alert_aggregates_fleet_series_with_max_and_the_rest_with_sum(name: str) -> None:
    assert _aggregation_problems(_alert(name)["expr"]) == []


def test_every_alert_reads_a_product_metric_or_up() -> None:
    for rule in _alerts():
        code = _blank_strings(rule["expr"])
        assert _metrics_in(code) or re.search(r"\bup\s*\{", code), rule["alert"]


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("sum(rate(ig_outbound_outcome_total[5m]))", "unknown metric ig_outbound_outcome_total"),
        (
            'sum(rate(ig_outbound_outcomes_total{stauts="failed"}[5m]))',
            "ig_outbound_outcomes_total has no label 'stauts'",
        ),
        (
            "sum by (cause) (rate(ig_outbound_outcomes_total[5m]))",
            "by (cause): ig_outbound_outcomes_total has no label 'cause'",
        ),
        (
            "sum(rate(ig_outbound_outcomes_total[5m])) without (cause)",
            "without (cause): ig_outbound_outcomes_total has no label 'cause'",
        ),
        (
            "sum(rate(ig_outbound_outcomes_total[5m])) / on (cause) sum(ig_outbound_queue_ready)",
            "on (cause): no metric here has it",
        ),
    ],
)
def test_the_name_check_catches_a_wrong_name(expr: str, problem: str) -> None:
    assert problem in _name_problems(expr)


def test_the_name_check_accepts_right_names() -> None:
    expr = (
        'sum by (reason, job) (rate(ig_outbound_outcomes_total{status="sent", instance!=""}'
        "[5m])) / ignoring (reason) group_left () sum(rate(ig_outbound_outcomes_total[5m]))"
        ' and sum(rate(ig_outbound_end_to_end_seconds_bucket{le="1"}[5m])) by (le)'
    )
    assert _name_problems(expr) == []


def test_the_aggregation_check_catches_sum_of_a_fleet_series() -> None:
    assert _aggregation_problems("sum(ig_outbound_dead_letters) > 0") == [
        "ig_outbound_dead_letters is a fleet series: aggregate it with max, not sum"
    ]
    assert _aggregation_problems("max(rate(ig_outbound_retries_total[5m])) > 0") == [
        "ig_outbound_retries_total is per process: aggregate it with sum, not max"
    ]
    assert _aggregation_problems("ig_outbound_queue_ready > 0") != []


# --- the values the rules match, against the code that writes them ------------------------


def _values(metric: str, label: str) -> set[str]:
    """Every value a rule's matcher on metric{label} names (a regex's alternatives)."""
    values: set[str] = set()
    for rule in _alerts():
        for name, lbl, op, value in _matchers(rule["expr"]):
            if (name, lbl) == (metric, label):
                assert op in ("=", "=~"), f"{rule['alert']}: {label}{op}{value!r}"
                alternatives = value.split("|") if op == "=~" else [value]
                assert all(re.fullmatch(r"[\w:]+", a) for a in alternatives), value
                values |= set(alternatives)
    assert values, f"no rule matches {metric}{{{label}}}"
    return values


def test_outcome_statuses_exist() -> None:
    assert _values("ig_outbound_outcomes_total", "status") == {"failed", "unknown"}
    assert {"failed", "unknown"} <= {s.value for s in OutcomeStatus}


def test_graph_error_class_exists() -> None:
    assert _values("ig_outbound_graph_requests_total", "error_class") <= {
        c.value for c in ErrorClass
    }


def test_account_state_exists() -> None:
    assert _values("ig_outbound_accounts", "state") == {REAUTH_PAUSE}
    assert REAUTH_PAUSE in STATES


def test_paused_account_causes_are_the_graph_tables_account_reasons() -> None:
    """A pause's cause is the Graph error's reason: the rule pages on every reason of the
    ACCOUNT class (token, permission, account: an operator must act) and on nothing else. A
    needs_reauth pause has its own alert; throttle pauses end by themselves."""
    account = {c.reason for c in ERROR_TABLE.values() if c.error_class is ErrorClass.ACCOUNT}
    account.add(TOKEN_MALFORMED.reason)
    assert {"token_invalid", "token_expired", "permission_denied", "permission_error"} <= account
    assert _values("ig_outbound_accounts_paused", "cause") == account
    assert REAUTH_PAUSE not in account


def _signature_refusals() -> set[str]:
    body, secret = b'{"object": "instagram"}', "app-secret"
    headers = [None, "sha256=not-hex", signature_header(body, "another-secret")]
    codes: set[str] = set()
    for header in headers:
        with pytest.raises(WebhookError) as refused:
            verify_signature(body, header, secret)
        codes.add(refused.value.code)
    return codes


def test_webhook_signature_reasons_are_the_gateways_codes() -> None:
    codes = _signature_refusals()
    assert codes == {"missing_signature", "malformed_signature", "bad_signature"}
    assert _values("ig_outbound_webhooks_total", "reason") == codes
    assert _values("ig_outbound_webhooks_total", "result") == {"refused"}


# --- the runbook ---------------------------------------------------------------------------


def _github_anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped (but '-' and '_'),
    spaces to '-'."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _runbook_sections() -> dict[str, str]:
    """Anchor -> the section's text (to the next heading of its level or above)."""
    lines = RUNBOOK.read_text("utf-8").splitlines()
    headings: list[tuple[int, int, str]] = []  # (line, level, anchor)
    seen: Counter[str] = Counter()
    fenced = False
    for i, line in enumerate(lines):
        if line.startswith("```"):
            fenced = not fenced
        m = None if fenced else re.match(r"(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if m:
            anchor = _github_anchor(m[2])
            suffix = f"-{seen[anchor]}" if seen[anchor] else ""
            seen[anchor] += 1
            headings.append((i, len(m[1]), anchor + suffix))
    sections = {}
    for n, (start, level, anchor) in enumerate(headings):
        end = next((h[0] for h in headings[n + 1 :] if h[1] <= level), len(lines))
        sections[anchor] = "\n".join(lines[start:end])
    return sections


def test_github_anchor() -> None:
    assert _github_anchor("Account paused (operator action)") == "account-paused-operator-action"
    assert _github_anchor("Queue: oldest `ready` age") == "queue-oldest-ready-age"


@pytest.mark.parametrize("name", ALERT_NAMES)
def test_every_alert_has_its_runbook_section(name: str) -> None:
    sections = _runbook_sections()
    anchor = _anchor_of(_alert(name))
    assert anchor in sections, f"{name}: docs/operations.md has no heading for #{anchor}"
    assert name in sections[anchor], f"{name}: its runbook section does not name it"


def test_runbook_anchors_are_distinct() -> None:
    anchors = [_anchor_of(rule) for rule in _alerts()]
    assert len(set(anchors)) == len(anchors)
