"""Settings objects to process environments and back: the one place that writes IG_OUTBOUND_*.

Demo, tests and benchmarks describe a worker (or a CLI run) as a `Settings` object, typed and
validated, and hand it to a process as environment variables, the way production configures
it. `settings_env` writes only what differs from the defaults, so a process's environment
reads like the list of choices a stack made; nested sections use `__`, tokens and other
dicts or lists are JSON (tokens with their secret values: the worker must be able to read
them back).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, SecretBytes, SecretStr
from pydantic_settings import BaseSettings

from ig_outbound.gateway.settings import GatewaySection, GatewaySettings
from ig_outbound.graph.settings import GraphSettings
from ig_outbound.harness.errors import HarnessError
from ig_outbound.producers.settings import ClientSettings
from ig_outbound.worker.settings import Settings

S = TypeVar("S", bound=BaseSettings)
M = TypeVar("M", bound=BaseModel)

ENV_PREFIX = "IG_OUTBOUND_"
_NO_DEFAULT = object()


def settings_env(settings: BaseSettings) -> dict[str, str]:
    """`settings` as the environment variables that make a process read it back.

    Only fields that differ from their defaults are written; a nested section becomes one
    variable per changed field (`IG_OUTBOUND_GRAPH__READ_TIMEOUT_S`)."""
    config = settings.model_config
    prefix = str(config.get("env_prefix") or "")
    delimiter = str(config.get("env_nested_delimiter") or "__")
    env: dict[str, str] = {}
    _collect(settings, _model_defaults(settings), prefix, delimiter, env)
    return env


def process_env(settings: BaseSettings) -> dict[str, str]:
    """The environment of a child process that runs exactly `settings`, whatever the
    caller's shell exports: this process's environment without IG_OUTBOUND_*, plus them."""
    return {**inherited_env(), **settings_env(settings)}


def inherited_env() -> dict[str, str]:
    """This process's environment without any IG_OUTBOUND_* variable."""
    return {k: v for k, v in os.environ.items() if not k.upper().startswith(ENV_PREFIX)}


def tuned(settings: M, **changes: Any) -> M:
    """A validated copy of `settings` with `changes`; a nested section takes a mapping of its
    own changes (`graph={"read_timeout_s": 3}`) and keeps its other values."""
    values = dict(settings)
    for name, change in changes.items():
        if name not in type(settings).model_fields:
            raise HarnessError(f"{type(settings).__name__} has no setting {name!r}")
        current = values[name]
        if isinstance(current, BaseModel) and isinstance(change, Mapping):
            change = tuned(current, **change)
        values[name] = change
    if isinstance(settings, BaseSettings):
        # Every field is given, so nothing is read from the environment here.
        return type(settings)(**values)
    return type(settings).model_validate(values)


def fleet_settings(
    *, redis_url: str, key_prefix: str, graph_url: str, tokens: Mapping[str, str], **changes: Any
) -> Settings:
    """Worker settings of a local fleet: its Redis and key prefix, the emulator as Graph, the
    accounts' tokens, and `changes` (as for `tuned`)."""
    base = Settings(
        redis_url=redis_url,
        key_prefix=key_prefix,
        graph=GraphSettings(base_url=graph_url),
        tokens={account: SecretStr(token) for account, token in tokens.items()},
    )
    return tuned(base, **changes)


def gateway_settings(
    settings: ClientSettings, *, port: int, app_secrets: Sequence[str], **section: Any
) -> GatewaySettings:
    """The settings of a stack's gateway: the Redis, key prefix and logging of `settings` (a
    fleet's or a producer's), listening on loopback `port`, verifying webhooks signed with
    `app_secrets` (the emulator's `webhooks.app_secret`), plus `section` changes of its
    `gateway` section (as for `tuned`)."""
    own = GatewaySection(
        host="127.0.0.1", port=port, app_secrets=[SecretStr(s) for s in app_secrets]
    )
    base = GatewaySettings(**dict(client_view(settings)), gateway=own)
    return tuned(base, gateway=section) if section else base


def client_view(settings: ClientSettings) -> ClientSettings:
    """Only the producer side of `settings` (no tokens): what a CLI run or a producer gets."""
    return ClientSettings(**{name: getattr(settings, name) for name in ClientSettings.model_fields})


def _model_defaults(model: BaseModel) -> dict[str, Any]:
    fields = type(model).model_fields.items()
    return {
        name: _NO_DEFAULT if field.is_required() else field.get_default(call_default_factory=True)
        for name, field in fields
    }


def _collect(
    model: BaseModel, defaults: Mapping[str, Any], prefix: str, delimiter: str, env: dict[str, str]
) -> None:
    for name in type(model).model_fields:
        value, default = getattr(model, name), defaults.get(name, _NO_DEFAULT)
        if value == default:
            continue
        var = (prefix + name).upper()
        if isinstance(value, BaseModel):
            # A changed section is read back from its class's defaults plus its variables
            # (not from the field's default instance), so compare with those.
            _collect(value, _model_defaults(value), var + delimiter, delimiter, env)
        else:
            env[var] = _encode(value, var)


def _encode(value: Any, var: str) -> str:
    if value is None:
        # pydantic-settings reads no "null" for a scalar unless configured to.
        raise HarnessError(f"{var} cannot be set to None through the environment")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list | tuple | set | frozenset | BaseModel):
        return json.dumps(_plain(value), separators=(",", ":"))
    return str(_plain(value))


def _plain(value: Any) -> Any:
    """`value` as plain JSON data, secrets revealed (the child process must read them)."""
    if isinstance(value, SecretStr | SecretBytes):
        secret = value.get_secret_value()
        return secret.decode() if isinstance(secret, bytes) else secret
    if isinstance(value, BaseModel):
        return {name: _plain(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, Enum):
        return _plain(value.value)
    if isinstance(value, Path):
        return str(value)
    return value
