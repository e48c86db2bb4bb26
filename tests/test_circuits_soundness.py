"""Soundness by witness tampering: each cheat below, written into an honest witness, must fail
`snarkjs wtns check`. Where a cheat can be made locally consistent (every relation around it
updated), it is, so only the constraint under test can catch it."""

from __future__ import annotations

from pathlib import Path

import pytest

from splitverify import zk
from splitverify.circuits import compile_template
from splitverify.commit import poseidon
from splitverify.zk.curve import R

from conftest import tamper_witness_many, wire_of


def signed(v: int) -> int:
    return v - R if v > R // 2 else v


def test_honest_witnesses_pass(tiny_circuits, tiny_witnesses):
    for kind, wtns in tiny_witnesses.items():
        ok, report = zk.check_witness(tiny_circuits.circuit(kind), wtns)
        assert ok, (kind, report)


def _negative_preactivation(circuit, values, *, odd: bool) -> int:
    """Index k of a negative ClientForward pre-activation y = floor(acc / 2^16) (with y + 2^22
    odd, i.e. bit 16 of its decomposition set, if asked)."""
    for k in range(6):
        y = signed(values[wire_of(circuit, f"acc0[{k // 3}][{k % 3}]")]) >> 16
        if y < 0 and (not odd or (y + (1 << 22)) % 2 == 1):
            return k
    pytest.skip("the case has no suitable negative pre-activation")


def test_remainder_out_of_range(tiny_circuits, tiny_witnesses, tmp_path):
    """y − 1 with remainder r + 2^16: the decomposition still sums to the accumulator and the
    ReLU output stays 0, so only the remainder's range (bit booleanity) is violated."""
    c = tiny_circuits.circuit("client_forward")
    values = zk.read_witness(tiny_witnesses["client_forward"])
    k = _negative_preactivation(c, values, odd=True)
    b0, b16 = wire_of(c, f"rescale0[{k}].bits.out[0]"), wire_of(c, f"rescale0[{k}].bits.out[16]")
    relu_in = wire_of(c, f"relu0[{k}].in")
    edits = {b16: 0, b0: values[b0] + (1 << 16), relu_in: values[relu_in] - 1}
    ok, _ = tamper_witness_many(c, tiny_witnesses["client_forward"], edits, tmp_path / "t.wtns")
    assert not ok


def test_relu_output_with_the_wrong_sign(tiny_circuits, tiny_witnesses, tmp_path):
    """A negative pre-activation passed through as if it were non-negative."""
    c = tiny_circuits.circuit("client_forward")
    values = zk.read_witness(tiny_witnesses["client_forward"])
    k = _negative_preactivation(c, values, odd=False)
    relu_in = values[wire_of(c, f"relu0[{k}].in")]
    edits = {wire_of(c, f"relu0[{k}].isNonNeg"): 1,
             wire_of(c, f"aOut0[{k // 3}][{k % 3}]"): relu_in}
    ok, _ = tamper_witness_many(c, tiny_witnesses["client_forward"], edits, tmp_path / "t.wtns")
    assert not ok


@pytest.mark.parametrize("signal", ["dx0[0][0]", "dx0[1][2]"])
def test_wrong_activation_gradient(tiny_circuits, tiny_witnesses, tmp_path, signal):
    c = tiny_circuits.circuit("server_step")
    wtns = tiny_witnesses["server_step"]
    w = wire_of(c, signal)
    ok, _ = tamper_witness_many(c, wtns, {w: zk.read_witness(wtns)[w] + 1}, tmp_path / "t.wtns")
    assert not ok


def _step_bit(circuit, entry: int) -> int:
    """A wire holding one of the step bits (bits 22… of the 39-bit SgdStep decomposition) of
    parameter ``entry`` of layer 0 (circom keeps all but one bit of a decomposition)."""
    for bit in range(22, 39):
        try:
            return wire_of(circuit, f"stepW0[{entry}].bits.out[{bit}]")
        except AssertionError:
            continue
    raise AssertionError("no step bit kept as a wire")


@pytest.mark.parametrize("kind", ["server_step", "client_backward"])
def test_weights_after_not_the_update(tiny_circuits, tiny_witnesses, tmp_path, kind):
    """A different SGD step for one weight (one bit of the step flipped)."""
    c = tiny_circuits.circuit(kind)
    w = _step_bit(c, 1)
    values = zk.read_witness(tiny_witnesses[kind])
    ok, _ = tamper_witness_many(c, tiny_witnesses[kind], {w: 1 - values[w]}, tmp_path / "t.wtns")
    assert not ok


@pytest.mark.parametrize("kind,signal", [("client_forward", "dataCommitment"),
                                         ("client_forward", "messageCommitment"),
                                         ("server_step", "weightsAfter"),
                                         ("client_backward", "weightsAfter"),
                                         ("client_backward", "stateCommitment")])
def test_commitment_that_does_not_match_its_tensor(tiny_circuits, tiny_witnesses, tmp_path,
                                                   kind, signal):
    c = tiny_circuits.circuit(kind)
    w = wire_of(c, signal)
    ok, _ = tamper_witness_many(c, tiny_witnesses[kind],
                                {w: zk.read_witness(tiny_witnesses[kind])[w] + 1},
                                tmp_path / "t.wtns")
    assert not ok


def test_tensor_that_does_not_match_its_commitment(tiny_circuits, tiny_witnesses, tmp_path):
    """A different data entry under the same (public) data commitment."""
    c = tiny_circuits.circuit("client_forward")
    w = wire_of(c, "x[1][2]")
    ok, _ = tamper_witness_many(c, tiny_witnesses["client_forward"],
                                {w: zk.read_witness(tiny_witnesses["client_forward"])[w] + 1},
                                tmp_path / "t.wtns")
    assert not ok


@pytest.fixture(scope="module")
def dense_optimized(isolated_cache):
    return compile_template("DenseOptimized", (3, 4, 5))


def test_freivalds_claim_with_one_wrong_entry(dense_optimized, tmp_path):
    """The standalone check (commitments are inputs here, so the only relation that can break
    is the Freivalds identity itself)."""
    x = [[1, -2, 3, 0], [4, 5, -6, 7], [0, 0, 1, -1]]
    w = [[2, 0, -1, 3], [1, 1, 1, 1], [-3, 2, 0, 5], [0, -4, 2, 1], [6, 0, 0, -2]]
    acc = [[sum(a * b for a, b in zip(row, wr)) for wr in w] for row in x]
    inputs = {"x": x, "w": w, "acc": acc, "commitments": [poseidon([1]), poseidon([2]),
                                                         poseidon([3])]}
    wtns = zk.calculate_witness(dense_optimized, inputs, tmp_path / "ok.wtns")
    assert zk.check_witness(dense_optimized, wtns)[0]
    wire = wire_of(dense_optimized, "acc[1][3]")
    ok, _ = tamper_witness_many(dense_optimized, wtns, {wire: acc[1][3] + 1}, tmp_path / "t.wtns")
    assert not ok
