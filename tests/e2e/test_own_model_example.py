"""README's "Your own model and data" example, run as it is written (docs/examples/own_model.sh):
`serve --model` and `train --model --data` over loopback train a user's MLP on a user's NPZ;
the figures must be those of the integer reference from the same files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from splitverify import model
from splitverify.model import SplitSpec, torch_io
from splitverify_server.loopback import free_port

from split_cases import reference_weights, same_params

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "own_model.sh"


def test_the_readme_example_trains_the_users_mlp_on_the_users_npz(tmp_path):
    env = {**os.environ, "PORT": str(free_port()), "XDG_DATA_HOME": str(tmp_path / "data-home"),
           # this interpreter's `splitverify` and `python` first
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    run = subprocess.run(["bash", str(EXAMPLE)], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=240)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"] == 60 and summary["detected_step"] is None

    # the same training from the same files, in the integer reference
    client_half = torch_io.load_half(tmp_path / "client.pt")
    server_half = torch_io.load_half(tmp_path / "server.pt")
    data = torch_io.load_dataset(tmp_path / "data.npz")
    spec = torch_io.split_spec(client_half, server_half, batch=8)
    q = spec.quant
    batches = torch_io.fixed_point_batches(q, 8, torch_io.epochs_of(data, 8))
    start = (torch_io.encode_half(q, client_half), torch_io.encode_half(q, server_half))
    client, server = reference_weights(spec, 60, 0, [next(batches) for _ in range(60)],
                                       start=start)
    trained = torch_io.load_half(tmp_path / "run" / "client_model.pt")
    assert same_params(torch_io.encode_half(q, trained), client)
    full = SplitSpec(spec.client, spec.server, len(data.x_test), q)
    hidden = model.forward(full, spec.client, client, q.encode(data.x_test, data=True)).output
    logits = model.forward(full, spec.server, server, hidden).output
    accuracy = float((logits.argmax(1) == data.y_test).float().mean())
    assert summary["test_accuracy"] == round(accuracy, 4) and accuracy > 0.6
