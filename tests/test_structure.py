"""Dependencies point one way (docs/architecture.md), and the check that keeps it so works."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _importlinter_config() -> str:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    return text[text.index("[tool.importlinter]") :]


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(cwd / "pyproject.toml")],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(cwd)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_import_contracts_hold_for_the_tree() -> None:
    done = _lint(ROOT)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "broken" in done.stdout and "0 broken" in done.stdout


def test_a_contract_import_of_the_worker_breaks_the_check(tmp_path: Path) -> None:
    """A copy of the package layout where the contract imports the worker is refused."""
    pkg = tmp_path / "ig_outbound"
    for sub in (
        "producers",
        "worker",
        "accounts",
        "graph",
        "emulator",
        "gateway",
        "harness",
        "cli",
    ):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "producers" / "enqueue.py").write_text("from ig_outbound.worker import job\n")
    (pkg / "worker" / "job.py").write_text("")
    (tmp_path / "pyproject.toml").write_text(_importlinter_config(), encoding="utf-8")
    done = _lint(tmp_path)
    assert done.returncode != 0
    assert "the contract (producers) imports nothing else of ours BROKEN" in done.stdout
    assert "ig_outbound.producers.enqueue -> ig_outbound.worker.job" in done.stdout
