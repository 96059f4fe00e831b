"""Settings objects become a process's environment and read back the same."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pydantic import BaseModel, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from ig_outbound.graph.settings import GraphSettings
from ig_outbound.harness.env import (
    client_view,
    fleet_settings,
    process_env,
    settings_env,
    tuned,
)
from ig_outbound.harness.errors import HarnessError
from ig_outbound.harness.processes import WorkerProcess
from ig_outbound.producers.settings import ClientSettings
from ig_outbound.worker.settings import (
    RateSettings,
    RetrySettings,
    Settings,
    WorkerTuning,
)

TOKEN = "IGAA-very-secret-token"


@pytest.fixture(autouse=True)
def _no_settings_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings() reads the environment: start every test from none of ours."""
    for name in list(os.environ):
        if name.upper().startswith("IG_OUTBOUND_"):
            monkeypatch.delenv(name)


def _rich() -> Settings:
    return Settings(
        redis_url="redis://10.0.0.7:6380/2",
        key_prefix="round-trip",
        ambiguous_policy="fail",
        graph=GraphSettings(
            base_url="http://127.0.0.1:9", read_timeout_s=1.5, use_me_endpoint=True
        ),
        retry=RetrySettings(backoff_base_s=0.05, max_attempts=3),
        rate=RateSettings(transit_max_ms=250, transit_measured=False, utilization=0.5),
        worker=WorkerTuning(max_jobs=7),
        tokens={"17841400000000001": SecretStr(TOKEN), "17841400000000002": SecretStr("IGAA-2")},
        tokens_file=Path("/run/secrets/tokens"),
        metrics_port=9100,
        log_level="debug",
    )


def test_a_settings_object_reads_back_equal_from_its_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _rich()
    env = settings_env(settings)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Settings() == settings
    assert Settings().tokens["17841400000000001"].get_secret_value() == TOKEN


def test_only_changed_fields_are_written_nested_with_double_underscores() -> None:
    env = settings_env(_rich())
    assert env["IG_OUTBOUND_GRAPH__READ_TIMEOUT_S"] == "1.5"
    assert env["IG_OUTBOUND_GRAPH__USE_ME_ENDPOINT"] == "true"
    assert env["IG_OUTBOUND_WORKER__MAX_JOBS"] == "7"
    assert json.loads(env["IG_OUTBOUND_TOKENS"]) == {
        "17841400000000001": TOKEN,
        "17841400000000002": "IGAA-2",
    }
    # Defaults are left out, inside sections too.
    assert "IG_OUTBOUND_GRAPH__API_VERSION" not in env
    assert "IG_OUTBOUND_WORKER__POLL_DELAY_S" not in env
    assert not any(name.startswith("IG_OUTBOUND_OUTCOMES") for name in env)
    assert settings_env(Settings()) == {}


class _Section(BaseModel):
    hosts: list[str] = Field(default_factory=list)
    weight: float = 1.0


class _AnySettings(BaseSettings):
    """Field shapes the product may grow: lists, dicts of secrets, lists inside sections."""

    model_config = SettingsConfigDict(env_prefix="IGO_TEST_", env_nested_delimiter="__")

    sentinels: list[str] = Field(default_factory=list)
    limits: dict[str, int] = Field(default_factory=dict)
    secrets: dict[str, SecretStr] = Field(default_factory=dict)
    section: _Section = _Section(weight=2.0)
    enabled: bool = True


def test_lists_dicts_and_changed_sections_read_back_equal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _AnySettings(
        sentinels=["10.0.0.1:26379", "10.0.0.2:26379"],
        limits={"light": 100},
        secrets={"a": SecretStr("s3cr3t")},
        section=_Section(hosts=["h1"], weight=2.0),
        enabled=False,
    )
    env = settings_env(settings)
    # A changed section is read back from its class's defaults (weight 1.0), so the field's
    # default instance's weight 2.0 is written too.
    assert env == {
        "IGO_TEST_SENTINELS": '["10.0.0.1:26379","10.0.0.2:26379"]',
        "IGO_TEST_LIMITS": '{"light":100}',
        "IGO_TEST_SECRETS": '{"a":"s3cr3t"}',
        "IGO_TEST_SECTION__HOSTS": '["h1"]',
        "IGO_TEST_SECTION__WEIGHT": "2.0",
        "IGO_TEST_ENABLED": "false",
    }
    assert settings_env(_AnySettings(section=_Section(weight=2.0))) == {}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert _AnySettings() == settings


def test_client_settings_have_their_own_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    client = client_view(_rich())
    assert type(client) is ClientSettings
    env = settings_env(client)
    assert env == {
        "IG_OUTBOUND_REDIS_URL": "redis://10.0.0.7:6380/2",
        "IG_OUTBOUND_KEY_PREFIX": "round-trip",
        "IG_OUTBOUND_LOG_LEVEL": "debug",  # processes' logging is a client setting too
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert ClientSettings() == client


def test_tuned_changes_a_section_field_and_keeps_the_rest() -> None:
    base = _rich()
    changed = tuned(base, graph={"read_timeout_s": 3}, ambiguous_policy="resend")
    assert changed.graph.read_timeout_s == 3
    assert changed.graph.base_url == base.graph.base_url and changed.graph.use_me_endpoint
    assert changed.ambiguous_policy == "resend"
    assert changed.tokens == base.tokens and base.graph.read_timeout_s == 1.5


def test_tuned_validates_and_refuses_unknown_settings() -> None:
    with pytest.raises(ValidationError):
        tuned(_rich(), worker={"max_jobs": 0})
    with pytest.raises(HarnessError):
        tuned(_rich(), no_such_setting=1)


def test_a_fleet_is_its_redis_prefix_emulator_and_tokens() -> None:
    settings = fleet_settings(
        redis_url="redis://127.0.0.1:1/0",
        key_prefix="fleet",
        graph_url="http://127.0.0.1:2",
        tokens={"17841400000000001": TOKEN},
        log_level="warning",
    )
    assert settings.graph.base_url == "http://127.0.0.1:2"
    assert settings.tokens["17841400000000001"].get_secret_value() == TOKEN
    assert settings.log_level == "warning"


def test_a_child_runs_exactly_its_settings_whatever_the_shell_exports(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IG_OUTBOUND_WORKER__MAX_JOBS", "3")
    monkeypatch.setenv("IG_OUTBOUND_UNRELATED", "x")
    settings = Settings(key_prefix="child", worker=WorkerTuning())
    env = process_env(settings)
    assert env["IG_OUTBOUND_KEY_PREFIX"] == "child"
    assert not any(k in env for k in ("IG_OUTBOUND_WORKER__MAX_JOBS", "IG_OUTBOUND_UNRELATED"))
    assert env["PATH"] == os.environ["PATH"]
    worker = WorkerProcess.from_settings(settings)
    assert worker.isolated and dict(worker.env) == settings_env(settings)
    # The old way stays: an env mapping on top of this process's environment.
    assert not WorkerProcess({"IG_OUTBOUND_KEY_PREFIX": "x"}).isolated
