"""Convolutional layers (issue 21) in the generated circuits: golden (circuit == integer
reference, bit for bit, random and edge values), the reference against torch's autograd, cheats
in every claimed product and in the update failing the constraint check, and the cost model
against the compiled circuits."""

from __future__ import annotations

import pytest
import torch

from splitverify import zk
from splitverify.circuitgen import KINDS, circuit_path, generator
from splitverify.circuitgen.emit import conv
from splitverify.errors import InputError
from splitverify.model import Conv2d
from splitverify.quant import QuantSpec
from splitverify.zk.curve import R

from conftest import (TINY_CONV_SPEC, assert_wrong_claim_fails_only_its_freivalds_identity,
                      step_bit_wire, tamper_witness, tamper_witness_many, wire_of)
from split_cases import _params, assert_golden, build_case


def test_conv_circuits_equal_the_reference(tiny_conv_circuits, tiny_conv_case, tmp_path):
    assert_golden(tiny_conv_circuits, tiny_conv_case, tmp_path)


def conv_edge_case(spec, seed: int):
    """A zero data sample, data at both ends of the input range, a client channel whose
    pre-activation is the most negative the spec allows (its ReLU output and masks are 0), a
    server weight at 2^value_bits − 1 (reading that channel), negative accumulators with
    non-zero remainders; the rest drawn until the step stays inside the spec's bounds."""
    q = spec.quant
    g = torch.Generator().manual_seed(seed)
    top_x, top_v = (1 << q.input_bits) - 1, (1 << q.value_bits) - 1
    for _ in range(200):
        x = q.encode(torch.rand(spec.batch, spec.features, generator=g) * 2 - 1, data=True)
        x[0] = 0
        x[-1, 0], x[-1, 5] = top_x, -top_x - 1
        client = _params(spec, spec.client, g, 0.3)
        server = _params(spec, spec.server, g, 0.3)
        (w1, b1), (w2, _) = client[0], server[0]
        w1[0], b1[0] = 0, -top_v
        w2[0, 0] = top_v
        labels = torch.full((spec.batch,), spec.classes - 1)
        try:
            case = build_case(spec, client, server, x, labels)
        except InputError:
            continue
        acc = case.forward.acc[0]
        if bool(((acc < 0) & (acc % q.scale != 0)).any()):
            return case
    raise AssertionError("no edge case inside the bounds")


def test_conv_edge_values_equal_the_reference(tiny_conv_circuits, tmp_path):
    spec = TINY_CONV_SPEC
    case = conv_edge_case(spec, seed=2)
    q, top = spec.quant, (1 << spec.quant.value_bits) - 1
    assert int(case.x[0].abs().sum()) == 0
    assert int(case.x.max()) == (1 << q.input_bits) - 1 and int(case.x.min()) == -(1 << q.input_bits)
    assert int(case.forward.pre[0].min()) == -top and int(case.server[0][0].max()) == top
    assert_golden(tiny_conv_circuits, case, tmp_path)


def test_conv_reference_equals_autograd(tiny_conv_case):
    """The integer accumulators are torch's conv2d and its autograd gradients in float64,
    exactly (every value is an integer times a power of two below 2^53): the client's forward
    and weight gradient, the server convolution's input gradient (what the cut receives, before
    its rescale)."""
    case, s = tiny_conv_case, float(TINY_CONV_SPEC.quant.scale)
    layer, server_conv = TINY_CONV_SPEC.client[0], TINY_CONV_SPEC.server[0]

    def image(t, layer_):
        return t.double().reshape(len(t), layer_.in_channels, layer_.height, layer_.width) / s

    def kernels(w, layer_):
        return (w.double() / s).reshape(layer_.out_channels, layer_.in_channels, layer_.kernel,
                                        layer_.kernel).requires_grad_()

    (w, b), = case.client
    wk = kernels(w, layer)
    y = torch.nn.functional.conv2d(image(case.x, layer), wk, b.double() / s,
                                   stride=layer.stride, padding=layer.padding)
    assert torch.equal(y.reshape(len(y), -1) * s * s, case.forward.acc[0].double())
    y.backward(case.backward.grad_y[0].double().reshape(y.shape) / s)
    assert torch.equal(wk.grad.reshape(w.shape) * s * s, case.backward.weight_grad_acc[0].double())

    ws, _ = case.server[0]
    h = image(case.forward.output, server_conv).requires_grad_()
    z = torch.nn.functional.conv2d(h, kernels(ws, server_conv), stride=server_conv.stride,
                                   padding=server_conv.padding)
    z.backward(case.server_result.backward.grad_y[0].double().reshape(z.shape) / s)
    assert torch.equal(h.grad.reshape(len(h.grad), -1) * s * s,
                       case.server_result.backward.input_grad_acc[0].double())


def test_honest_conv_witnesses_pass(tiny_conv_circuits, tiny_conv_witnesses):
    for kind, wtns in tiny_conv_witnesses.items():
        ok, report = zk.check_witness(tiny_conv_circuits.circuit(kind), wtns)
        assert ok, (kind, report)


@pytest.mark.parametrize("kind,claim", [
    ("client_forward", "acc0"),      # a wrong output entry of the convolution
    ("client_backward", "gw0"),      # a wrong weight gradient
    ("server_step", "gx0"),          # a wrong input gradient (the server's convolution)
    ("server_step", "gw0")])
def test_a_wrong_conv_product_fails_only_its_freivalds_identity(
        tiny_conv_circuits, tiny_conv_case, tiny_conv_witnesses, tmp_path, kind, claim):
    """As the dense test: the cheating prover computes around the wrong claim (transcript,
    challenge, every product); only one Freivalds identity is left violated."""
    assert_wrong_claim_fails_only_its_freivalds_identity(
        tiny_conv_circuits.circuit(kind), tiny_conv_case.inputs[kind], claim,
        tiny_conv_witnesses[kind], tmp_path / "t.wtns")


@pytest.mark.parametrize("kind", ["server_step", "client_backward"])
def test_conv_weights_after_not_the_update(tiny_conv_circuits, tiny_conv_witnesses, tmp_path,
                                           kind):
    """A different SGD step for one convolution weight (one bit of the step flipped)."""
    c = tiny_conv_circuits.circuit(kind)
    w = step_bit_wire(c, TINY_CONV_SPEC.quant, 1)
    values = zk.read_witness(tiny_conv_witnesses[kind])
    ok, _ = tamper_witness_many(c, tiny_conv_witnesses[kind], {w: 1 - values[w]},
                                tmp_path / "t.wtns")
    assert not ok


def test_conv_cost_model_equals_compiled_circuits(tiny_conv_circuits):
    for kind in KINDS:
        breakdown = generator.cost_breakdown(TINY_CONV_SPEC, kind)
        assert sum(breakdown.values()) == tiny_conv_circuits.circuit(kind).info.n_constraints, \
            kind


def test_conv_naive_cost_counts_one_constraint_per_product():
    layer = Conv2d(1, 4, 3, 1, 0, 8, 8, False)
    assert conv.conv_naive_cost(layer, 16) == 16 * 36 * 4 * 9
    # padding taps are no products: per axis 4 positions × 3 taps, 2 of them outside
    padded = Conv2d(1, 2, 3, 1, 1, 4, 4, False)
    assert conv.conv_naive_cost(padded, 1) == 2 * 10 * 10


def test_conv_optimized_meets_the_ratio_on_a_28x28_image():
    """The forward check against one constraint per product, at a 28×28 image with 16 kernels
    of 3×3 (MNIST's usual first layer), batch 16: the ratio ≈ 1/out + 1/(in·k²)."""
    layer = Conv2d(1, 16, 3, 1, 0, 28, 28, False)
    ratio = conv.conv_optimized_cost(layer, 16) / conv.conv_naive_cost(layer, 16)
    assert ratio <= 0.2, ratio


def test_conv_peer_templates_compile_to_the_cost_model_and_compute_the_reference(
        isolated_cache, tmp_path):
    """circuits/conv.circom (bench's convolution peer) on a padded, strided layer: ConvNaive
    and ConvOptimized compile to conv_naive_cost and conv_optimized_cost, ConvNaive's output is
    the reference accumulator (Conv2d.forward), ConvOptimized accepts it and rejects it with
    one entry wrong."""
    layer, batch, quant = Conv2d(2, 3, 3, 2, 1, 5, 5, False), 2, QuantSpec()
    params = conv.peer_template_params(layer, batch, quant.scale)
    naive, optimized = (zk.compile_circuit(circuit_path("conv.circom"), template=t,
                                           params=params, optimize="O2")
                        for t in ("ConvNaive", "ConvOptimized"))
    assert naive.info.n_constraints == conv.conv_naive_cost(layer, batch)
    assert optimized.info.n_constraints == conv.conv_optimized_cost(layer, batch)
    g = torch.Generator().manual_seed(5)
    x = torch.randint(-50, 50, (batch, layer.n_in), generator=g)
    w = torch.randint(-50, 50, (layer.out_channels, layer.patch_size), generator=g)
    b = torch.randint(-50, 50, (layer.out_channels,), generator=g)
    _y, acc = layer.forward(quant, x, (w, b))
    wtns = zk.calculate_witness(naive, {"x": x.tolist(), "w": w.tolist(), "bias": b.tolist()},
                                tmp_path / "naive.wtns")
    n_out = batch * layer.n_out
    assert zk.read_witness(wtns)[1:1 + n_out] == [int(v) % R for v in acc.reshape(-1).tolist()]
    ours = zk.calculate_witness(optimized, {"x": x.tolist(), "w": w.tolist(), "bias": b.tolist(),
                                            "acc": acc.tolist(), "commitments": [1, 2, 3]},
                                tmp_path / "ours.wtns")
    wire = wire_of(optimized, "acc[1][4]")
    ok, _ = tamper_witness(optimized, ours, wire, int(acc[1, 4]) + 1, tmp_path / "bad.wtns")
    assert not ok
