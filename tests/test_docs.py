"""The README's settings table is the settings model: every variable, nothing else."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from ig_outbound.gateway.settings import GatewaySettings
from ig_outbound.worker.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def _env_names(model: type[BaseModel], prefix: str = "IG_OUTBOUND_") -> set[str]:
    names: set[str] = set()
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            names |= _env_names(ann, f"{prefix}{name.upper()}__")
        else:
            names.add(f"{prefix}{name.upper()}")
    return names


def test_readme_settings_table_lists_every_setting_and_no_other() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = set(re.findall(r"^\| `(IG_OUTBOUND_[A-Z_]+)` \|", readme, flags=re.M))
    assert table == _env_names(Settings) | _env_names(GatewaySettings)
