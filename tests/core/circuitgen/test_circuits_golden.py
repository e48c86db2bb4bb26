"""Golden tests: each generated circuit, run on the integer reference's values, outputs exactly
the reference's statement (commitments of every tensor it produces, the loss), bit for bit."""

from __future__ import annotations


import pytest
import torch

from splitverify import model
from splitverify.circuitgen import SplitCircuits
from splitverify.errors import WitnessError
from splitverify.model import Dense, SplitSpec

from split_cases import assert_golden, edge_case, random_case


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


def test_one_steps_integer_gradients_are_autograds(tiny_case):
    """The integer reference's gradients (what the circuits prove) against torch.autograd on
    the same network in float64, each party at the values it actually has: the server at the
    received activations and its parameters, with L = ½·Σ(logits − onehot)² (the MSE whose
    gradient is logits − onehot; its 2/(B·C) is in the learning rate), the client at its data
    and parameters with the received gradient as upstream gradient. With u = 2^-F (one unit
    of the fixed point), each floor division is off by less than u, so:
      server dL/dlogits: < u (the logits' rescale); dL/dW: < u·Σ_b|a_b,i|; dL/db: < B·u;
      dL/da (the gradient sent): < u·(1 + Σ_j|W_j,i|) (the logits' error, then its own floor);
      client dL/dW, dL/db: exact (data and received gradient are exact; the ReLU masks agree
      because no accumulator lies in (0, 2^F), asserted), the SGD steps within u·lr."""
    spec, case = tiny_case.spec, tiny_case
    q = spec.quant
    u, s = 2.0 ** -q.frac_bits, float(q.scale)
    res = case.server_result
    (w_srv, b_srv), = case.server
    activations = (case.forward.output.double() / s).requires_grad_()
    w = (w_srv.double() / s).requires_grad_()
    b = (b_srv.double() / s).requires_grad_()
    logits = activations @ w.T + b
    onehot = torch.nn.functional.one_hot(case.labels, spec.classes).double()
    (0.5 * ((logits - onehot) ** 2).sum()).backward()
    dlogits = (logits - onehot).detach()
    assert (res.backward.grad_y[0].double() / s - dlogits).abs().max() < u
    bound_w = u * activations.detach().abs().sum(dim=0)                   # per input column
    assert ((res.backward.weight_grad_acc[0].double() / s**2 - w.grad).abs() <= bound_w).all()
    assert ((res.backward.grad_y[0].sum(dim=0).double() / s - b.grad).abs()
            < spec.batch * u).all()
    bound_a = u * (1 + w.detach().abs().sum(dim=0))
    assert ((res.gradient.double() / s - activations.grad).abs() < bound_a).all()

    (w_cl, b_cl), = case.client
    x = case.x.double() / s
    wc = (w_cl.double() / s).requires_grad_()
    bc = (b_cl.double() / s).requires_grad_()
    acc = case.forward.acc[0]
    assert not ((acc > 0) & (acc < q.scale)).any(), "a ReLU mask would differ by rounding"
    torch.relu(x @ wc.T + bc).backward(res.gradient.double() / s)
    bwd = case.backward
    assert torch.allclose(bwd.weight_grad_acc[0].double() / s**2, wc.grad, rtol=1e-12, atol=0)
    assert torch.allclose(bwd.grad_y[0].sum(dim=0).double() / s, bc.grad, rtol=1e-12, atol=0)
    new_w = bwd.new_params[0][0].double() / s
    assert ((new_w - (wc.detach() - q.lr * wc.grad)).abs() < u).all()
