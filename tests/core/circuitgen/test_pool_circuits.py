"""AvgPool2d (issue 21): sum-pool then its rescale by log2(kernel²). The integer reference
against torch's avg_pool2d and autograd, golden (circuit == reference bit for bit), a wrong
pooled entry failing the constraint check, the cost model against the compiled circuits, and
a pooled model's proven protocol steps."""

from __future__ import annotations

import torch

from splitverify import zk
from splitverify.circuitgen import KINDS, generator
from splitverify.model import AvgPool2d
from splitverify.protocol import ProofMode, random_field, run_local, scenarios
from splitverify.quant import QuantSpec

from conftest import TINY_POOL_SPEC, bits_edits, tamper_witness, tamper_witness_many, wire_of
from split_cases import assert_golden, data_batches, random_case


def test_pool_reference_is_torch_sum_pool_floored():
    """acc = 4·avg_pool2d(x) exactly, y = floor(acc / 4); the input-gradient accumulator is
    torch's gradient of the sum pool (dY of each input's window), dX = floor(that / 4)."""
    pool, quant = AvgPool2d(3, 4, 8, 2, False), QuantSpec()
    g = torch.Generator().manual_seed(1)
    x = torch.randint(-5000, 5000, (2, pool.n_in), generator=g)
    y, acc = pool.forward(quant, x, ())
    image = x.reshape(2, 3, 4, 8).double().requires_grad_()
    summed = torch.nn.functional.avg_pool2d(image, 2) * 4
    assert torch.equal(acc.double(), summed.reshape(2, -1).detach())
    assert torch.equal(y, torch.div(acc, 4, rounding_mode="floor"))
    dy = torch.randint(-5000, 5000, (2, pool.n_out), generator=g)
    summed.backward(dy.reshape(summed.shape).double())
    dx, dacc = pool.input_gradient(quant, dy, ())
    assert torch.equal(dacc.double(), image.grad.reshape(2, -1))
    assert torch.equal(dx, torch.div(dacc, 4, rounding_mode="floor"))
    assert pool.update(quant, (), pool.weight_gradient(dy, x), dy) == ()


def test_pool_circuits_equal_the_reference(tiny_pool_circuits, tiny_pool_case, tmp_path):
    assert_golden(tiny_pool_circuits, tiny_pool_case, tmp_path)


def test_pool_cost_model_equals_compiled_circuits(tiny_pool_circuits):
    for kind in KINDS:
        assert sum(generator.cost_breakdown(TINY_POOL_SPEC, kind).values()) == \
            tiny_pool_circuits.circuit(kind).info.n_constraints, kind


def test_a_wrong_pooled_entry_fails(tiny_pool_circuits, tiny_pool_witnesses, tmp_path):
    """ClientForward: the pooled activation (the message) one off fails; so does the pooled
    entry one off with its rescale's bits re-decomposed for it (the remainder would have to
    leave [0, 4): the top bits change, the sum they must equal does not)."""
    circuit = tiny_pool_circuits.circuit("client_forward")
    wtns = tiny_pool_witnesses["client_forward"]
    values = zk.read_witness(wtns)
    wire = wire_of(circuit, "aOut1[0][3]")
    ok, _ = tamper_witness(circuit, wtns, wire, values[wire] + 1, tmp_path / "one.wtns")
    assert not ok
    pooled = values[wire] if values[wire] < zk.curve.R // 2 else values[wire] - zk.curve.R
    v, shift = TINY_POOL_SPEC.quant.value_bits, 2
    rebits = bits_edits(circuit, "rescale1[3].bits.out", (pooled + 1 + (1 << v)) << shift,
                        v + 1 + shift)
    ok, _ = tamper_witness_many(circuit, wtns, {wire: values[wire] + 1, **rebits},
                                tmp_path / "bits.wtns")
    assert not ok


def test_a_pooled_model_trains_with_every_step_proven(tiny_pool_circuits):
    """Both parties in one process (run_local: the protocol's messages and checks): two honest
    steps with every proof verified; the server's wrong gradient caught at step 0."""
    for kind in KINDS:
        tiny_pool_circuits.key(kind)
    case = random_case(TINY_POOL_SPEC, seed=11)

    def run(malicious: str | None):
        session = random_field()
        client, server = (scenarios.party_class(side, malicious)(
            TINY_POOL_SPEC, session, ProofMode.parse("every"), params, tiny_pool_circuits)
            for side, params in (("client", case.client), ("server", case.server)))
        return run_local(client, server, data_batches(TINY_POOL_SPEC, 2, seed=1)), client
    honest, client = run(None)
    assert honest.detected is None and honest.steps == 2 and client.verifier.verified == 2
    cheated, _ = run("server:wrong-gradient")
    assert cheated.detected is not None and cheated.detected.step == 0
    assert cheated.detected.detected_by == "client"
