"""Any input, however odd, ends in a Graph error (never a crash) in the parsers."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ig_outbound.emulator.body import parse_body, parse_form
from ig_outbound.emulator.graph_errors import GraphError
from ig_outbound.emulator.validate import validate_send

_keys = st.sampled_from(
    ["recipient", "message", "sender_action", "payload", "text", "id", "[]", "[0]", "a[b]", "x"]
)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.text(alphabet='ab[]0id=&{}"', max_size=12), st.text(max_size=6))))
def test_parse_form_only_raises_graph_errors(pairs: list[tuple[str, str]]) -> None:
    text = "&".join(f"{k}={v}" for k, v in pairs)
    try:
        assert isinstance(parse_form(text), dict)
    except GraphError as error:
        assert error.code == 100


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_keys, _json, max_size=5))
def test_validate_only_raises_graph_errors(body: dict[str, Any]) -> None:
    try:
        validate_send(body)
    except GraphError as error:
        assert error.code == 100


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=40), st.sampled_from(["application/json", "", "text/plain"]))
def test_parse_body_only_raises_graph_errors(raw: bytes, content_type: str) -> None:
    try:
        parse_body(raw, content_type)
    except GraphError as error:
        assert error.code == 100
