#!/usr/bin/env bash
# The test command: set-up (if needed), then the whole suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Keep the artifact cache inside the checkout unless the caller chose one (CI starts empty).
export SPLITVERIFY_CACHE="${SPLITVERIFY_CACHE:-$PWD/.cache/splitverify}"
exec .venv/bin/python -m pytest -n 2 --dist loadgroup "$@"
