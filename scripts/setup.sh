#!/usr/bin/env bash
# Idempotent set-up on a fresh machine with python3 (≥ 3.11), node and npm:
# a virtual environment in .venv with the three distributions, editable — splitverify (the core,
# with its test tools), splitverify-client (client/) and splitverify-server (server/, with the
# peer benchmark's EZKL and onnx: extra `bench`, ~75 MB, seconds to install; and Playwright,
# extra `test`, which drives the dashboard's browser test) — the pinned npm toolchain (circom2,
# snarkjs, circomlib, solc, anvil) and the dashboard's charting library (uplot) in node_modules
# via `npm ci`, and Debian's chromium (the browser the dashboard's test opens; Playwright
# downloads no browser of its own).
#
# `setup.sh --demo` (the main job's) installs only what `splitverify demo` runs: the three
# distributions without the test, Ray and peer-benchmark extras, the npm toolchain, no chromium.
# A later plain `setup.sh` adds the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  --demo) demo_only=1 ;;
  "") demo_only=0 ;;
  *) echo "setup.sh: unknown option '$1' (use no option for everything, or --demo)" >&2; exit 1 ;;
esac

# The three parts are independent: the npm toolchain and chromium install in the background
# while pip installs the Python side (on a fresh machine this saves the shorter two's time).
background=$(mktemp -d)
trap 'rm -rf "$background"' EXIT
jobs_started=()
in_background() {       # NAME COMMAND...: run COMMAND in the background, its output kept
  local name=$1; shift
  "$@" >"$background/$name.log" 2>&1 &
  jobs_started+=("$!:$name")
}

install_toolchain() {
  local lock_hash
  lock_hash="$(sha256sum package-lock.json | cut -d' ' -f1)"
  if [ ! -f node_modules/.splitverify-lock ] || \
     [ "$(cat node_modules/.splitverify-lock)" != "$lock_hash" ]; then
    npm ci --no-audit --no-fund --loglevel=error
    echo "$lock_hash" > node_modules/.splitverify-lock
  fi
}

# Debian's chromium, for the dashboard's browser test (tests/server/test_dashboard.py): apt as
# root (CI), through sudo otherwise; skipped once installed.
install_chromium() {
  command -v chromium >/dev/null 2>&1 && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: chromium is not installed and there is no apt-get here: install a chromium at" \
         "/usr/bin/chromium, or the dashboard's browser test fails" >&2
    return 0
  fi
  local as_root=""
  [ "$(id -u)" -eq 0 ] || as_root="sudo"
  $as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq --no-install-recommends \
    chromium >/dev/null
}

in_background toolchain install_toolchain
[ "$demo_only" = 1 ] || in_background chromium install_chromium

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# one stamp per level: "full" satisfies the demo's, the demo's not the full one
want="$(cat pyproject.toml client/pyproject.toml server/pyproject.toml setup.py server/setup.py \
        splitverify/zk/*.c \
        | sha256sum | cut -d' ' -f1)"
installed() { [ -f ".venv/.splitverify-installed-$1" ] && \
              [ "$(cat ".venv/.splitverify-installed-$1")" = "$want" ]; }
if installed full || { [ "$demo_only" = 1 ] && installed demo; }; then
  :
else
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  # torch is pinned to the CPU wheel (2.13.0) in pyproject.toml; any other version pulls GBs of CUDA.
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
  if [ "$demo_only" = 1 ]; then
    core="." server="./server" level=demo
  else
    # extra `ray`: the Ray prover pool (--ray), which its tests run on a real local cluster
    core=".[test,ray]" server="./server[bench,test]" level=full
  fi
  # setuptools prints a generic notice for every editable install; it says nothing about ours
  PYTHONWARNINGS="ignore:Editable installation" \
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$core" \
      -e ./client -e "$server"
  echo "$want" > ".venv/.splitverify-installed-$level"
fi

failed=0
for started in "${jobs_started[@]}"; do
  pid=${started%%:*} name=${started#*:}
  if wait "$pid"; then
    cat "$background/$name.log"
  else
    echo "setup: installing the $name failed:" >&2
    cat "$background/$name.log" >&2
    failed=1
  fi
done
exit "$failed"
