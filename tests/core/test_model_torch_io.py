"""A user's own halves and data (splitverify.model.torch_io): nn.Sequential ↔ fixed-point
parameters, model files that cannot run code, NPZ/CSV data, batches from any iterable."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from splitverify.errors import InputError
from splitverify.model import Dense, SplitSpec, torch_io
from splitverify.quant import QuantSpec

Q = QuantSpec()


def half() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU())


def test_encode_then_decode_gives_the_weights_back_at_fixed_point():
    module = half()
    params = torch_io.encode_half(Q, module)
    assert torch_io.half_layers(module) == (Dense(4, 3, True),)
    assert torch.equal(params[0][0], torch.floor(module[0].weight.double() * Q.scale).long())
    decoded = torch_io.decode_half(Q, module, params)
    assert decoded is not module and isinstance(decoded[1], nn.ReLU)
    assert torch.allclose(decoded[0].weight, module[0].weight, atol=1 / Q.scale)
    assert torch.equal(torch_io.encode_half(Q, decoded)[0][1], params[0][1])


def test_a_weight_the_fixed_point_cannot_hold_is_named():
    module = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 3))
    with torch.no_grad():
        module[2].bias[1] = 100.0
    with pytest.raises(InputError, match=r"module 2 \(Linear.*parameter b holds 100, outside"):
        torch_io.encode_half(Q, module)


def test_halves_of_other_modules_are_refused():
    with pytest.raises(InputError, match="module 1 is a Tanh"):
        torch_io.half_layers(nn.Sequential(nn.Linear(2, 2), nn.Tanh()))
    with pytest.raises(InputError, match="must be an nn.Sequential"):
        torch_io.half_layers(nn.Linear(2, 2))


def test_a_model_file_loads_only_a_sequential_of_known_modules(tmp_path):
    good = tmp_path / "client.pt"
    torch.save(half(), good)
    assert torch.equal(torch_io.load_half(good)[0].weight, half()[0].weight)
    other = tmp_path / "tanh.pt"
    torch.save(nn.Sequential(nn.Linear(2, 2), nn.Tanh()), other)
    with pytest.raises(InputError, match="does not load as a torch-saved nn.Sequential"):
        torch_io.load_half(other)
    state = tmp_path / "state.pt"
    torch.save(half().state_dict(), state)
    with pytest.raises(InputError, match="holds a OrderedDict, not an nn.Sequential"):
        torch_io.load_half(state)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    with pytest.raises(InputError, match="junk.pt does not load"):
        torch_io.load_half(junk)
    with pytest.raises(InputError, match="does not exist"):
        torch_io.load_half(tmp_path / "missing.pt")


def test_npz_and_csv_data_load_and_misfits_are_named(tmp_path):
    x = np.random.default_rng(0).uniform(0, 1, (6, 4))
    np.savez(tmp_path / "d.npz", x=x, y=np.array([0, 1, 2, 0, 1, 2]))
    data = torch_io.load_dataset(tmp_path / "d.npz")
    assert data.x.shape == (6, 4) and data.x_test is None
    data.check(4, 3, Q)
    with pytest.raises(InputError, match=r"d.npz: labels lie in \[0, 2\]; the model has 2"):
        data.check(4, 2, Q)
    with pytest.raises(InputError, match=r"d.npz: the features are \(6, 4\); .* takes 5"):
        data.check(5, 3, Q)
    np.savez(tmp_path / "big.npz", x=x * 10, y=np.zeros(6, dtype=np.int64))
    with pytest.raises(InputError, match="big.npz: a feature is 9.*scale the data"):
        torch_io.load_dataset(tmp_path / "big.npz").check(4, 3, Q)
    np.savez(tmp_path / "nolabels.npz", x=x)
    with pytest.raises(InputError, match="lacks array\\(s\\) y"):
        torch_io.load_dataset(tmp_path / "nolabels.npz")
    (tmp_path / "d.csv").write_text("a,b,label\n0.5,0.25,1\n0.1,0.2,0\n")
    rows = torch_io.load_dataset(tmp_path / "d.csv")
    assert rows.x.tolist() == [[0.5, 0.25], [0.1, 0.2]] and rows.y.tolist() == [1, 0]
    (tmp_path / "bad.csv").write_text("0.5,0.25,1\n0.1,x,0\n")
    with pytest.raises(InputError, match="bad.csv, line 2: not all numbers"):
        torch_io.load_dataset(tmp_path / "bad.csv")
    with pytest.raises(InputError, match="give a .npz"):
        (tmp_path / "d.txt").write_text("")
        torch_io.load_dataset(tmp_path / "d.txt")


def test_batches_from_a_data_loader_are_quantized_and_a_short_one_is_refused():
    x, y = torch.rand(5, 2, 2), torch.tensor([0, 1, 1, 0, 1])
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=2)
    batches = torch_io.fixed_point_batches(Q, 2, loader)
    first, _ = next(batches), next(batches)
    assert first[0].dtype == torch.int64 and torch.equal(first[0], Q.encode(x[:2].reshape(2, 4)))
    with pytest.raises(InputError, match="batch 2 has 1 rows.*drop_last=True"):
        next(batches)


def test_the_spec_of_a_client_module_and_the_server_shape():
    spec = torch_io.split_spec(half(), nn.Sequential(nn.Linear(3, 2)), batch=2)
    assert spec == SplitSpec((Dense(4, 3, True),), (Dense(3, 2, False),), 2)

