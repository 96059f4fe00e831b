"""Turn a POST body into a dict the way Graph reads it.

Three encodings reach graph.instagram.com (fact sheet §0): JSON; form fields whose values are
JSON strings (``recipient={"id":"…"}&message={"text":"…"}``); and nested form params
(``recipient[id]=…&message[text]=…``, as Rails/HTTParty clients send them).
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

from ig_outbound.emulator.graph_errors import invalid_parameter

JsonDict = dict[str, Any]

# Top-level params whose form value is a JSON document.
_JSON_PARAMS = frozenset({"recipient", "message", "payload", "reply_to"})
_BRACKETS = re.compile(r"\[([^\[\]]*)\]")
_SEGMENTED = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])+)$")


def parse_body(raw: bytes, content_type: str) -> JsonDict:
    """Parse ``raw`` by its content type; raise ``GraphError`` (code 100) when it can't be read."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if not raw.strip():
        return {}
    if media_type == "application/json" or (media_type == "" and raw.lstrip()[:1] == b"{"):
        return _parse_json(raw)
    if media_type in ("application/x-www-form-urlencoded", "", "text/plain"):
        return parse_form(raw.decode("utf-8", errors="replace"))
    raise invalid_parameter(f"Unsupported content type: {media_type}")


def _parse_json(raw: bytes) -> JsonDict:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid_parameter("The request body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise invalid_parameter("The request body must be a JSON object")
    return data


def parse_form(text: str) -> JsonDict:
    """Form params -> dict: nested ``a[b][c]`` keys expand; JSON-string params are decoded."""
    result: JsonDict = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        match = _SEGMENTED.match(key)
        if match is None:
            result[key] = value
            continue
        path = _BRACKETS.findall(match.group(2))
        _assign(result, match.group(1), path, value)
    params: JsonDict = {key: _listify(value) for key, value in result.items()}
    for name in _JSON_PARAMS:
        if isinstance(params.get(name), str):
            params[name] = _decode_json_param(name, params[name])
    return params


def _decode_json_param(name: str, value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError as exc:
        raise invalid_parameter(f"param {name} must be a JSON object") from exc


def _assign(container: JsonDict, head: str, path: list[str], value: str) -> None:
    """Set ``container[head][path…] = value``; ``[]`` appends like Rails' param parser."""
    node: Any = container
    key: str | int = head
    for at, segment in enumerate(path):
        child = _child(node, key, segment == "")
        # Rails rule for "[]": start a new element unless the last one can still take this key.
        key = _array_slot(child, path, at) if segment == "" else segment
        node = child
    _set(node, key, value)


def _child(node: Any, key: str | int, want_list: bool) -> Any:
    existing = _get(node, key)
    if existing is None or not isinstance(existing, list | dict):
        existing = [] if want_list else {}
        _set(node, key, existing)
    elif want_list != isinstance(existing, list):
        raise invalid_parameter(f"param {key} mixes list and object syntax")
    return existing


def _array_slot(items: list[Any], path: list[str], at: int) -> int:
    rest = path[at + 1 :]
    if not rest:
        items.append(None)
        return len(items) - 1
    leaf = rest[0]
    if not items or not isinstance(items[-1], dict) or leaf in items[-1]:
        items.append({})
    return len(items) - 1


def _get(node: Any, key: str | int) -> Any:
    if isinstance(node, list):
        return node[key] if isinstance(key, int) and key < len(node) else None
    return node.get(key)


def _set(node: Any, key: str | int, value: Any) -> None:
    node[key] = value  # list nodes only ever get int keys from _array_slot


def _listify(value: Any) -> Any:
    """Dicts keyed ``0..n-1`` (``a[0][type]`` syntax) become lists."""
    if isinstance(value, list):
        return [_listify(item) for item in value]
    if not isinstance(value, dict):
        return value
    converted = {k: _listify(v) for k, v in value.items()}
    keys = list(converted)
    if (
        keys
        and all(k.isdigit() for k in keys)
        and sorted(int(k) for k in keys) == list(range(len(keys)))
    ):
        return [converted[str(i)] for i in range(len(keys))]
    return converted
