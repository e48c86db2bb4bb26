#!/usr/bin/env bash
# The main job: set-up (if needed), then `splitverify demo` on the embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --demo
exec .venv/bin/splitverify demo "$@"
