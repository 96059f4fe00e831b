"""The wheel installs one import package, `ig_outbound`, and works outside the checkout.

A service that `pip install`s us next to its own `worker.py` or `producers/` must neither
shadow our modules nor be shadowed by them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
_SKIP = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "bench", "tests"
)


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of the checkout (links kept, as in a clone)."""
    src = tmp_path_factory.mktemp("src") / "ig-outbound"
    shutil.copytree(ROOT, src, symlinks=True, ignore=_SKIP)
    dist = tmp_path_factory.mktemp("dist")
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "-q", "-w", str(dist), str(src)],
        cwd=src,
    )  # fmt: skip
    (built,) = dist.glob("ig_outbound-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv outside the checkout with only the wheel installed (its dependencies are
    borrowed from the dev venv by path, without the dev venv's editable install)."""
    home = tmp_path_factory.mktemp("fresh") / "venv"
    _run([sys.executable, "-m", "venv", str(home)], cwd=home.parent)
    python = home / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], home)
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                     home).strip())  # fmt: skip
    # A plain path entry: the dev venv's `.pth` hooks (our editable finder) do not run.
    (site / "zz_dev_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    yield home


@pytest.fixture
def hostile_cwd(tmp_path: Path) -> Path:
    """A service's own checkout: generic top-level names that would collide with ours."""
    (tmp_path / "worker.py").write_text("raise SystemExit('the service worker.py was imported')\n")
    for name in ("producers", "emulator"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f"raise SystemExit('{name}/ imported')\n")
    return tmp_path


def test_the_wheel_holds_exactly_one_top_level_import_package(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        top_level = zf.read(next(n for n in names if n.endswith("top_level.txt"))).decode()
        metadata = zf.read(next(n for n in names if n.endswith("METADATA"))).decode()
    roots = {n.split("/", 1)[0] for n in names}
    assert {r for r in roots if not r.endswith(".dist-info")} == {"ig_outbound"}
    assert top_level.split() == ["ig_outbound"]
    for part in ("producers", "worker", "emulator", "gateway", "cli", "harness"):
        assert f"ig_outbound/{part}/__init__.py" in names
    assert "ig_outbound/producers/lua/enqueue.lua" in names
    assert "ig_outbound/py.typed" in names
    # The web stacks (emulator, gateway) are extras: a producer does not pull them in.
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    for web in ("starlette", "uvicorn", "fastapi"):
        assert all("extra ==" in r for r in requires if web in r), requires


def test_the_installed_package_imports_and_runs_beside_a_services_own_modules(
    venv: Path, hostile_cwd: Path
) -> None:
    python = str(venv / "bin" / "python")
    env = {**os.environ, "PYTHONPATH": ""}
    probe = (
        "import sys, ig_outbound.worker, ig_outbound.producers.enqueue as e; "
        "from ig_outbound.worker import WorkerSettings; "
        "print(ig_outbound.worker.__file__); print(e.__file__); "
        "print(sorted(m for m in ('starlette', 'uvicorn') if m in sys.modules))"
    )
    out = _run([python, "-c", probe], cwd=hostile_cwd, env=env).splitlines()
    assert all(line.startswith(str(venv)) for line in out[:2]), out
    assert out[2] == "[]", "the producer client imported the emulator's web stack"
    helptext = _run([str(venv / "bin" / "ig-outbound"), "--help"], cwd=hostile_cwd, env=env)
    assert "worker" in helptext and "send" in helptext
    schema = _run([str(venv / "bin" / "ig-outbound"), "schema"], cwd=hostile_cwd, env=env)
    assert '"idempotency_key"' in schema
    # ARQ's CLI puts the current directory on sys.path: the long spelling cannot collide.
    arq = _run(
        [python, "-c", "from arq.utils import import_string as i; "
         "print(i('ig_outbound.worker.WorkerSettings').__module__)"],
        cwd=hostile_cwd, env=env,
    )  # fmt: skip
    assert arq.strip() == "ig_outbound.worker.worker_settings"
