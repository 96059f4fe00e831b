"""Usage headers: the fact sheet's examples, garbage, and a never-raises property."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from ig_outbound.graph.usage import (
    AppUsage,
    BucUsage,
    max_usage_pct,
    parse_app_usage,
    parse_buc_usage,
    regain_access_s,
)

IG_ID = "17841400000000001"


def test_buc_example_from_fact_sheet() -> None:
    header = json.dumps(
        {
            IG_ID: [
                {
                    "type": "instagram",
                    "call_count": 28,
                    "total_cputime": 25,
                    "total_time": 25,
                    "estimated_time_to_regain_access": 0,
                }
            ]
        }
    )
    with capture_logs() as logs:
        usage = parse_buc_usage(header)
    assert logs == []
    assert usage == {IG_ID: BucUsage("instagram", 28.0, 25.0, 25.0, 0.0)}
    assert max_usage_pct(usage) == 28.0
    assert regain_access_s(usage) == 0.0


def test_buc_throttled_with_regain_time_and_several_objects() -> None:
    header = (
        '{"17841400000000001":[{"type":"instagram","call_count":100,"total_cputime":12.5,'
        '"total_time":40,"estimated_time_to_regain_access":7}],'
        '"17841400000000002":[{"type":"instagram","call_count":3,"total_cputime":1,'
        '"total_time":2,"estimated_time_to_regain_access":0}]}'
    )
    usage = parse_buc_usage(header)
    assert set(usage) == {"17841400000000001", "17841400000000002"}
    assert usage["17841400000000001"].total_cputime == 12.5
    assert usage["17841400000000001"].max_pct == 100.0
    assert max_usage_pct(usage) == 100.0
    assert regain_access_s(usage) == 420.0


def test_buc_keeps_the_most_constrained_entry_of_an_object() -> None:
    header = json.dumps(
        {
            IG_ID: [
                {"type": "messenger", "call_count": 10, "total_cputime": 5, "total_time": 5},
                {"type": "instagram", "call_count": 90, "total_cputime": 5, "total_time": 5},
            ]
        }
    )
    assert parse_buc_usage(header)[IG_ID].type == "instagram"


def test_buc_missing_counters_count_as_zero() -> None:
    usage = parse_buc_usage('{"1": [{"type": "instagram", "call_count": 5}]}')
    assert usage == {"1": BucUsage("instagram", 5.0, 0.0, 0.0, 0.0)}


def test_app_usage_example_from_fact_sheet() -> None:
    app = parse_app_usage('{"call_count":28,"total_time":25,"total_cputime":25}')
    assert app == AppUsage(call_count=28.0, total_cputime=25.0, total_time=25.0)
    assert app.max_pct == 28.0


@pytest.mark.parametrize("value", [None, "", "   "])
def test_absent_headers_are_empty_and_silent(value: str | None) -> None:
    with capture_logs() as logs:
        assert parse_buc_usage(value) == {}
        assert parse_app_usage(value) is None
    assert logs == []
    assert max_usage_pct({}) == 0.0
    assert regain_access_s({}) == 0.0


HUGE = '{"1": [{"type": "' + "x" * 1_000_000 + '", "call_count": 1}]}'

GARBAGE_BUC = [
    "not json",
    "{",
    "[]",
    "null",
    "42",
    '"a string"',
    '{"1": {}}',  # object instead of a list
    '{"1": []}',
    '{"1": [42]}',
    '{"1": [{"call_count": "28"}]}',
    '{"1": [{"call_count": true}]}',
    '{"1": [{"call_count": null}]}',
    '{"1": [{"call_count": -1}]}',
    '{"1": [{"estimated_time_to_regain_access": -5}]}',
    '{"1": [{"call_count": NaN}]}',
    '{"1": [{"call_count": Infinity}]}',
    '{"1": [{"call_count": 1e999}]}',
    '{"1": [{"call_count": ' + "9" * 400 + "}]}",  # an int too big for a float
    '{"1": [{"type": 5, "call_count": 1}]}',
    '{"1": [{"type": "instagram", "call_count": 1}], "2": "oops"}',
    "[" * 50_000,
    HUGE,
]


@pytest.mark.parametrize("value", GARBAGE_BUC, ids=lambda v: v[:40])
def test_garbage_buc_is_empty_and_logged_briefly(value: str) -> None:
    with capture_logs() as logs:
        assert parse_buc_usage(value) == {}
    assert len(logs) == 1
    assert logs[0]["log_level"] == "warning"
    assert logs[0]["event"] == "graph.usage_header_invalid"
    assert len(logs[0]["value"]) <= 200
    assert logs[0]["value_len"] == len(value)


@pytest.mark.parametrize(
    "value", ["nope", "[]", '{"call_count": "1"}', '{"call_count": -3}', '{"total_time": NaN}']
)
def test_garbage_app_usage_is_none_and_logged(value: str) -> None:
    with capture_logs() as logs:
        assert parse_app_usage(value) is None
    assert [entry["event"] for entry in logs] == ["graph.usage_header_invalid"]


@settings(database=None, max_examples=200, deadline=None)
@given(st.text())
def test_parse_buc_usage_never_raises_on_text(value: str) -> None:
    with capture_logs():  # keeps the warnings off the terminal; printing them is the slow part
        usage = parse_buc_usage(value)
        parse_app_usage(value)
    assert isinstance(usage, dict)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=20), children, max_size=4)
    ),
    max_leaves=25,
)
ENTRY = st.fixed_dictionaries(
    {},
    optional={
        key: JSON_VALUES | st.floats(min_value=0, max_value=1000)
        for key in (
            "type",
            "call_count",
            "total_cputime",
            "total_time",
            "estimated_time_to_regain_access",
        )
    },
)


@settings(database=None, max_examples=150, deadline=None)
@given(st.dictionaries(st.text(max_size=20), st.lists(ENTRY, max_size=3) | JSON_VALUES, max_size=3))
def test_parse_buc_usage_never_raises_on_json_shapes(data: dict[str, Any]) -> None:
    with capture_logs():
        usage = parse_buc_usage(json.dumps(data))
    for item in usage.values():
        for number in (
            item.call_count,
            item.total_cputime,
            item.total_time,
            item.estimated_time_to_regain_access_min,
        ):
            assert 0.0 <= number < float("inf")
    assert max_usage_pct(usage) >= 0.0
