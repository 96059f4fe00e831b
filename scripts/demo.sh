#!/usr/bin/env bash
# The main job: worker + Graph emulator + simulated users on embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/ig-outbound demo "$@"
