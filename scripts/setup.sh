#!/usr/bin/env bash
# Idempotent set-up on a fresh machine with python3 (≥ 3.11), node and npm:
# a virtual environment in .venv with the three distributions, editable — splitverify (the core,
# with its test tools), splitverify-client (client/) and splitverify-server (server/, with the
# peer benchmark's EZKL and onnx: extra `bench`, ~75 MB, seconds to install) — and the pinned
# npm toolchain (circom2, snarkjs, circomlib, solc, anvil) in node_modules via `npm ci`.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.splitverify-installed
want="$(cat pyproject.toml client/pyproject.toml server/pyproject.toml setup.py splitverify/zk/*.c \
        | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  # torch is pinned to the CPU wheel (2.13.0) in pyproject.toml; any other version pulls GBs of CUDA.
  .venv/bin/python -m pip install --quiet "torch==2.13.0"
  # extra `ray`: the Ray prover pool (--ray), which its tests run on a real local cluster
  .venv/bin/python -m pip install --quiet -e ".[test,ray]" -e ./client -e "./server[bench]"
  echo "$want" > "$stamp"
fi

lock_hash="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ ! -f node_modules/.splitverify-lock ] || [ "$(cat node_modules/.splitverify-lock)" != "$lock_hash" ]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_hash" > node_modules/.splitverify-lock
fi
