"""CLI commands that need the `[emulator]` extra say so when it is missing."""

from __future__ import annotations

import importlib.util
import json
from typing import Any

import pytest
from typer.testing import CliRunner

from ig_outbound.cli import app


@pytest.mark.parametrize("command", ["emulator", "demo"])
def test_a_missing_emulator_extra_is_named_not_a_traceback(
    command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name in ("starlette", "uvicorn") else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    result = CliRunner().invoke(app, [command])
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    assert report["error"] == "missing_extra"
    assert "ig-outbound[emulator]" in report["message"]


def test_send_refuses_json_nested_too_deeply_without_a_traceback() -> None:
    result = CliRunner().invoke(app, ["send", "-"], input="[" * 100_000)
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"] == "invalid_json"
