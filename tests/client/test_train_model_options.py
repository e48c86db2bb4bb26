"""`train --model/--data` and `serve --model` refuse what does not load or fit, with a message
naming the file and what to do, before any session is made (no server needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from splitverify.cli import app
from splitverify.errors import InputError
from splitverify_client import SplitClient

runner = CliRunner()
NOWHERE = "http://127.0.0.1:9"      # never reached: each case fails before a request


@pytest.fixture
def files(tmp_path):
    torch.save(nn.Sequential(nn.Linear(4, 3), nn.ReLU()), tmp_path / "client.pt")
    torch.save(nn.Sequential(nn.Linear(4, 3), nn.Tanh()), tmp_path / "tanh.pt")
    np.savez(tmp_path / "data.npz", x=np.zeros((8, 5)), y=np.zeros(8, dtype=np.int64))
    return tmp_path


@pytest.mark.parametrize("args,message", [
    (["--model", "client.pt"], "--model needs --server-layers"),
    (["--model", "client.pt", "--server-layers", "3:2", "--client-layers", "4:3"],
     "leave out --client-layers"),
    (["--model", "missing.pt", "--server-layers", "3:2"], "missing.pt does not exist"),
    (["--model", "tanh.pt", "--server-layers", "3:2"], "does not load as a torch-saved"),
    (["--model", "client.pt", "--server-layers", "5:2"], "do not chain"),
    (["--model", "client.pt", "--server-layers", "3:2", "--data", "data.npz"],
     "the features are (8, 5); the model's first layer takes 4"),
    (["--data", "data.txt"], "give a .npz"),
    (["--model", "cnn", "--server-layers", "64:10"], "cnn is a whole reference model"),
])
def test_train_refuses_a_model_or_data_that_does_not_fit(files, monkeypatch, args, message):
    monkeypatch.chdir(files)
    (files / "data.txt").write_text("")
    result = runner.invoke(app, ["train", "--server", NOWHERE, "--retry-seconds", "0",
                                 "--identity", str(files / "id"), "--out", "out", *args])
    assert result.exit_code == 1, result.output
    assert message in " ".join(result.output.split())


def test_serve_refuses_a_model_file_that_does_not_load(files):
    result = runner.invoke(app, ["serve", "--model", str(files / "tanh.pt"),
                                 "--db", str(files / "s.db")])
    assert result.exit_code == 1 and "does not load as a torch-saved" in \
        " ".join(result.output.split())


def test_the_sdk_refuses_a_client_weight_out_of_range_before_any_session():
    module = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    with torch.no_grad():
        module[0].weight[2, 1] = -70.0
    with pytest.raises(InputError, match=r"module 0 \(Linear.*parameter w holds -70, outside"):
        SplitClient("http://127.0.0.1:9", model=module,
                    server_layers=nn.Sequential(nn.Linear(3, 2)), batch=2)


def test_train_takes_a_reference_model_by_name(files, monkeypatch):
    """--model cnn (no such file): the reference CNN's spec; a file of that name stays a file."""
    from splitverify.model import SplitSpec
    from splitverify_client.cli import _client_model

    monkeypatch.chdir(files)
    assert _client_model(Path("cnn"), None, None, 16) == (None, SplitSpec.refcnn(16))
    torch.save(nn.Sequential(nn.Linear(4, 3), nn.ReLU()), files / "cnn")
    half, spec = _client_model(Path("cnn"), None, ["3:2"], 4)
    assert half is not None and spec.features == 4
