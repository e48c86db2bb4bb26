"""Golden tests: each generated circuit, run on the integer reference's values, outputs exactly
the reference's statement (commitments of every tensor it produces, the loss), bit for bit."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from splitverify import model
from splitverify.circuits import KINDS, SplitCircuits
from splitverify.errors import WitnessError
from splitverify.model import Dense, SplitSpec

from split_cases import edge_case, random_case


def assert_golden(circuits: SplitCircuits, case, tmp_path: Path) -> None:
    tmp_path.mkdir(parents=True, exist_ok=True)
    for kind in KINDS:
        wtns = circuits.witness(kind, case.inputs[kind], tmp_path / f"{kind}.wtns")
        got = circuits.statement_of(kind, wtns)
        assert got.values == case.statements[kind].values, kind


def test_tiny_circuits_equal_the_reference(tiny_circuits, tiny_case, tmp_path):
    assert_golden(tiny_circuits, tiny_case, tmp_path)


def test_edge_values_equal_the_reference(tiny_circuits, tmp_path):
    case = edge_case(tiny_circuits.spec, seed=2)
    q = case.spec.quant
    # the case really holds the edges: zero row, both ends of the data range, extreme weights,
    # negative pre-activations with non-zero remainders
    assert int(case.x[0].abs().sum()) == 0
    assert int(case.x.max()) == (1 << q.input_bits) - 1 and int(case.x.min()) == -(1 << q.input_bits)
    top = (1 << q.value_bits) - 1
    assert int(case.server[0][0].max()) == top and int(case.forward.pre[0].min()) == -top
    assert int(case.server_result.backward.new_params[0][0].max()) == top
    acc = case.forward.acc[0]
    assert bool(((acc < 0) & (acc % q.scale != 0)).any())
    assert_golden(tiny_circuits, case, tmp_path)


def test_deeper_model_on_both_sides(tmp_path):
    """Generic in depth: two layers per half, a client half that ends without ReLU."""
    net = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.ReLU(), torch.nn.Linear(4, 3),
                              torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    spec = SplitSpec.from_sequential(net, cut=3, batch=3)
    assert spec.client == (Dense(5, 4, True), Dense(4, 3, False))
    assert_golden(SplitCircuits(spec), random_case(spec, seed=9), tmp_path)


@pytest.mark.slow
@pytest.mark.xdist_group("refnet")
def test_refnet_circuits_equal_the_reference(tmp_path):
    spec = SplitSpec.refnet()
    circuits = SplitCircuits(spec)
    assert_golden(circuits, random_case(spec, seed=1), tmp_path / "random")
    assert_golden(circuits, edge_case(spec, seed=3), tmp_path / "edge")


def test_a_wrong_claimed_product_cannot_be_witnessed(tiny_circuits, tiny_case, tmp_path):
    """The prover's claimed accumulator is checked (Freivalds) while the witness is computed."""
    inputs = dict(tiny_case.inputs["client_forward"])
    acc = [row[:] for row in inputs["acc0"]]
    acc[1][2] += 1
    inputs["acc0"] = acc
    with pytest.raises(WitnessError, match="MatMulCheck"):
        tiny_circuits.witness("client_forward", inputs, tmp_path / "bad.wtns")


def test_reference_step_matches_training_loop():
    """model.* is what refnet.train_fixed runs: one step by hand equals the same calls."""
    spec = SplitSpec.refnet()
    case = random_case(spec, seed=4)
    fwd = model.client_forward(spec, case.client, case.x, case.labels)
    assert torch.equal(fwd.output, case.forward.output)
    assert torch.equal(case.server_result.gradient, case.server_result.backward.input_grad)
