#!/usr/bin/env bash
# Your own MLP and your own data, trained split and verified (README, "Your own model and data").
# Run in an empty folder; PORT (default 8000) is where the server listens.
set -euo pipefail
PORT="${PORT:-8000}"

# 1. The model, cut after its first ReLU: each half saved on its own (the server's weights
#    stay with the server), and the data as an NPZ: x (rows × features), y (class indices).
python - <<'PY'
import numpy as np
import torch
from torch import nn

torch.manual_seed(0)
net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
torch.save(net[:2], "client.pt")
torch.save(net[2:], "server.pt")

rng = np.random.default_rng(0)
x = rng.uniform(0, 1, (240, 4))
y = (x[:, :3].argmax(axis=1)).astype(np.int64)    # the class: the largest of the first three
np.savez("data.npz", x=x[:192], y=y[:192], x_test=x[192:], y_test=y[192:])
PY

# 2. The server with its half; the client with its half, the server half's shape and the data.
#    --proof-mode commit: every statement committed and signed, checked in seconds; `every`
#    proves each message too (this model: a few minutes of one-time key set-up, ~3 s a step).
splitverify serve --model server.pt --port "$PORT" --db sessions.db &
SERVER=$!
trap 'kill $SERVER' EXIT
until curl -sf "http://127.0.0.1:$PORT/docs" >/dev/null; do sleep 0.5; done
splitverify train --server "http://127.0.0.1:$PORT" --model client.pt --server-layers 16:3 \
    --data data.npz --batch 8 --steps 60 --proof-mode commit --out run
# run/summary.json: test_accuracy and the proofs verified; run/client_model.pt: the trained half
