#!/usr/bin/env bash
# The whole test suite: lint (ruff), types (mypy --strict) and pytest against real Redis
# servers and the Graph emulator that the suite starts itself.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/lint-imports --no-cache >/dev/null || .venv/bin/lint-imports --no-cache
.venv/bin/pytest -q "$@"
