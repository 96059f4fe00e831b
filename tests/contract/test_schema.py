"""The published JSON Schema: well formed, lists every kind, and the CLI prints the same."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ig_outbound.producers.intent import ALL_KINDS, intent_json_schema

PROJECT_ROOT = Path(__file__).resolve().parents[2]
JSON_TYPES = {"object", "array", "string", "integer", "number", "boolean", "null"}
CONTENT_DEF = {
    "text": "TextContent",
    "image": "ImageContent",
    "audio": "AudioContent",
    "video": "VideoContent",
    "file": "FileContent",
    "images": "ImagesContent",
    "sticker": "StickerContent",
    "media_share": "MediaShareContent",
    "generic_template": "GenericTemplateContent",
    "button_template": "ButtonTemplateContent",
    "react": "ReactContent",
    "unreact": "UnreactContent",
    "typing_on": "TypingOnContent",
    "typing_off": "TypingOffContent",
    "mark_seen": "MarkSeenContent",
}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return intent_json_schema()


def _subschemas(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The child schemas of a schema node, found only at JSON Schema keyword positions."""
    for key in ("properties", "$defs"):
        yield from node.get(key, {}).values()
    for key in ("oneOf", "anyOf", "allOf", "prefixItems"):
        yield from node.get(key, [])
    for key in ("items", "additionalProperties", "not"):
        if isinstance(node.get(key), dict):
            yield node[key]


def _check_schema_node(node: Any, defs: dict[str, Any], path: str) -> int:
    """Assert one node is a well-formed schema; return how many nodes were checked."""
    assert isinstance(node, dict), path
    if "$ref" in node:
        assert node["$ref"].startswith("#/$defs/"), path
        assert node["$ref"].removeprefix("#/$defs/") in defs, path
    if "type" in node:
        assert node["type"] in JSON_TYPES, path
    if "properties" in node:
        assert node.get("type") == "object", path
        assert isinstance(node["properties"], dict), path
    if "required" in node:
        assert set(node["required"]) <= set(node.get("properties", {})), path
    if "additionalProperties" in node:
        assert isinstance(node["additionalProperties"], bool | dict), path
    if "enum" in node:
        assert isinstance(node["enum"], list) and node["enum"], path
    for key in ("oneOf", "anyOf", "allOf"):
        if key in node:
            assert isinstance(node[key], list) and node[key], path
    for key in ("minLength", "maxLength", "minItems", "maxItems"):
        if key in node:
            assert isinstance(node[key], int) and node[key] >= 0, path
    if "minItems" in node and "maxItems" in node:
        assert node["minItems"] <= node["maxItems"], path
    if "pattern" in node:
        re.compile(node["pattern"])
    return 1 + sum(
        _check_schema_node(child, defs, f"{path}/{i}") for i, child in enumerate(_subschemas(node))
    )


def test_schema_is_a_closed_object_with_the_envelope_fields(schema: dict[str, Any]) -> None:
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"idempotency_key", "account_id", "recipient", "content"}
    assert set(schema["properties"]) == {
        "v",
        "idempotency_key",
        "account_id",
        "recipient",
        "content",
        "reply_to",
        "tag",
        "automated",
        "not_before",
        "not_after",
        "window_hint",
        "metadata",
        "priority",
    }
    assert isinstance(schema["$defs"], dict) and schema["$defs"]


def test_schema_nodes_are_well_formed(schema: dict[str, Any]) -> None:
    checked = _check_schema_node(schema, schema["$defs"], "#")
    assert checked > 100  # the walk really descended into $defs and properties


def test_every_def_is_referenced(schema: dict[str, Any]) -> None:
    text = json.dumps(schema)
    for name in schema["$defs"]:
        assert f'"#/$defs/{name}"' in text, name


def test_content_discriminator_maps_all_15_kinds(schema: dict[str, Any]) -> None:
    content = schema["properties"]["content"]
    discriminator = content["discriminator"]
    assert discriminator["propertyName"] == "kind"
    mapping = discriminator["mapping"]
    assert set(mapping) == set(ALL_KINDS)
    assert len(mapping) == 15
    assert mapping == {kind: f"#/$defs/{name}" for kind, name in CONTENT_DEF.items()}
    assert sorted(option["$ref"] for option in content["oneOf"]) == sorted(mapping.values())


@pytest.mark.parametrize("kind", sorted(CONTENT_DEF))
def test_each_content_variant_pins_its_kind_and_forbids_extra_fields(
    schema: dict[str, Any], kind: str
) -> None:
    variant = schema["$defs"][CONTENT_DEF[kind]]
    assert variant["type"] == "object"
    assert variant["additionalProperties"] is False
    assert variant["properties"]["kind"]["const"] == kind


@pytest.mark.parametrize("kind", ["text", "image", "typing_on"])
def test_each_content_variant_requires_the_discriminator(schema: dict[str, Any], kind: str) -> None:
    assert "kind" in schema["$defs"][CONTENT_DEF[kind]].get("required", [])


def test_schema_limits_match_the_fact_sheet(schema: dict[str, Any]) -> None:
    defs = schema["$defs"]
    quick_replies = defs["TextContent"]["properties"]["quick_replies"]["anyOf"][0]
    assert quick_replies["maxItems"] == 13
    assert defs["QuickReply"]["properties"]["title"]["maxLength"] == 20
    assert defs["ImagesContent"]["properties"]["images"]["minItems"] == 2
    assert defs["ImagesContent"]["properties"]["images"]["maxItems"] == 10
    assert defs["GenericTemplateContent"]["properties"]["elements"]["maxItems"] == 10
    assert defs["TemplateElement"]["properties"]["title"]["maxLength"] == 80
    assert defs["ButtonTemplateContent"]["properties"]["text"]["maxLength"] == 640
    assert defs["ButtonTemplateContent"]["properties"]["buttons"]["maxItems"] == 3
    assert schema["properties"]["idempotency_key"]["maxLength"] == 200
    assert defs["Tag"]["enum"] == ["HUMAN_AGENT"]


def test_schema_is_json_serialisable_and_stable(schema: dict[str, Any]) -> None:
    assert json.loads(json.dumps(schema)) == schema
    assert intent_json_schema() == schema


def test_cli_schema_command_prints_the_same_schema(schema: dict[str, Any]) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-m", "ig_outbound.cli", "schema"],
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=PROJECT_ROOT,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == schema
