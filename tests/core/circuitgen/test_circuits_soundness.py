"""Soundness by witness tampering: each cheat below, written into an honest witness, must fail
`snarkjs wtns check`. Where a cheat can be made consistent, it is: every value computed from the
cheated one is recomputed as a cheating prover would (``conftest.coordinated_cheat``: challenge
powers, products, hash rounds; ``witness_despite_asserts`` for a cheat in a claimed input), and
the R1CS checker names the constraints still violated — they must be exactly the ones under
test (one wire edited alone would only break the equation that computed it)."""

from __future__ import annotations


import pytest

from splitverify import zk
from splitverify.circuitgen import compile_template
from splitverify.commit import poseidon
from splitverify.zk.curve import R


from conftest import (TINY_SPEC, assert_wrong_claim_fails_only_its_freivalds_identity,
                      bits_edits, coordinated_cheat, fails_snarkjs, names_in, step_bit_wire,
                      tamper_witness_many, witness_despite_asserts, wire_of)


def signed(v: int) -> int:
    return v - R if v > R // 2 else v


def test_honest_witnesses_pass(tiny_circuits, tiny_witnesses):
    for kind, wtns in tiny_witnesses.items():
        ok, report = zk.check_witness(tiny_circuits.circuit(kind), wtns)
        assert ok, (kind, report)


def _negative_preactivation(circuit, values, *, odd: bool) -> int:
    """Index k of a negative ClientForward pre-activation y = floor(acc / 2^F) (F fractional
    bits; with y + 2^value_bits odd, i.e. bit F of its decomposition set, if asked)."""
    q = TINY_SPEC.quant
    for k in range(6):
        y = signed(values[wire_of(circuit, f"acc0[{k // 3}][{k % 3}]")]) >> q.frac_bits
        if y < 0 and (not odd or (y + (1 << q.value_bits)) % 2 == 1):
            return k
    pytest.skip("the case has no suitable negative pre-activation")


def test_remainder_out_of_range(tiny_circuits, tiny_witnesses, tmp_path):
    """y − 1 with remainder r + 2^F (F fractional bits): the decomposition still sums to the
    accumulator and the ReLU output stays 0, so only the remainder's range (bit booleanity) is
    violated."""
    frac = TINY_SPEC.quant.frac_bits
    c = tiny_circuits.circuit("client_forward")
    values = zk.read_witness(tiny_witnesses["client_forward"])
    k = _negative_preactivation(c, values, odd=True)
    b0 = wire_of(c, f"rescale0[{k}].bits.out[0]")
    b_frac = wire_of(c, f"rescale0[{k}].bits.out[{frac}]")
    relu_in = wire_of(c, f"relu0[{k}].in")
    edits = {b_frac: 0, b0: values[b0] + (1 << frac), relu_in: values[relu_in] - 1}
    ok, _ = tamper_witness_many(c, tiny_witnesses["client_forward"], edits, tmp_path / "t.wtns")
    assert not ok
    _, violated = coordinated_cheat(c, values, edits)
    assert [names_in(c, i) for i in violated] == [{"1", f"rescale0[{k}].bits.out[0]"}]


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


@pytest.mark.parametrize("entry", [0, 5])
def test_wrong_activation_gradient(tiny_circuits, tiny_witnesses, tmp_path, entry):
    """dX = floor(gx / 2^F) + 1 with the remainder's bits moved along (the decomposition still
    sums to gx; bit 0 takes 2^F less): the remainder's range check (bit 0 booleanity) is what
    fails. The other violated constraints are rounds of the gradient commitment's Poseidon,
    which hashes the cheated dX: they are not recomputed here (their O2-substituted rounds
    cannot be solved one wire at a time)."""
    c = tiny_circuits.circuit("server_step")
    q = TINY_SPEC.quant
    values = zk.read_witness(tiny_witnesses["server_step"])
    row, col = divmod(entry, 3)
    dx, gx = wire_of(c, f"dx0[{row}][{col}]"), wire_of(c, f"gx0[{row}][{col}]")
    bits = f"gxRescale0[{entry}].bits.out"
    width = q.value_bits + 1 + q.frac_bits
    cheat_high = signed(values[gx]) + (1 << (q.value_bits + q.frac_bits)) + (1 << q.frac_bits)
    bit0 = wire_of(c, f"{bits}[0]")
    edits = {dx: values[dx] + 1, **bits_edits(c, bits, cheat_high, width,
                                              range(q.frac_bits, width)),
             bit0: values[bit0] - (1 << q.frac_bits)}
    cheat, violated = coordinated_cheat(c, values, edits)
    named = [names_in(c, i) for i in violated]
    assert {"1", f"{bits}[0]"} in named
    assert all(n == {"1", f"{bits}[0]"} or n <= {"1"} | {f"dx0[{r}][{k}]" for r in range(2)
                                                       for k in range(3)}
               or any(s.startswith("gradientCommitmentChain.") for s in n) for n in named)
    assert fails_snarkjs(c, cheat, tmp_path / "t.wtns")


@pytest.mark.parametrize("kind", ["server_step", "client_backward"])
def test_weights_after_not_the_update(tiny_circuits, tiny_witnesses, tmp_path, kind):
    """A different SGD step for one weight (one bit of the step flipped)."""
    c = tiny_circuits.circuit(kind)
    w = step_bit_wire(c, TINY_SPEC.quant, 1)
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
    """The standalone check (commitments are inputs here). Editing the claimed entry alone
    would only break the product that scales it by the challenge power (c·r); the cheat moves
    that product along, so the Freivalds identity of the row is the one constraint that fails."""
    x = [[1, -2, 3, 0], [4, 5, -6, 7], [0, 0, 1, -1]]
    w = [[2, 0, -1, 3], [1, 1, 1, 1], [-3, 2, 0, 5], [0, -4, 2, 1], [6, 0, 0, -2]]
    acc = [[sum(a * b for a, b in zip(row, wr)) for wr in w] for row in x]
    inputs = {"x": x, "w": w, "acc": acc, "commitments": [poseidon([1]), poseidon([2]),
                                                         poseidon([3])]}
    wtns = zk.calculate_witness(dense_optimized, inputs, tmp_path / "ok.wtns")
    assert zk.check_witness(dense_optimized, wtns)[0]
    wire = wire_of(dense_optimized, "acc[1][3]")
    honest = zk.read_witness(wtns)
    cheat, violated = coordinated_cheat(dense_optimized, honest, {wire: acc[1][3] + 1})
    changed = {w for w in range(len(honest)) if cheat[w] != honest[w]}
    assert changed == {wire, wire_of(dense_optimized, "check.cr[1][3]")}
    [identity] = violated
    assert {"acc[1][0]", "check.av[1][0]", "check.cr[1][3]"} <= names_in(dense_optimized, identity)
    assert fails_snarkjs(dense_optimized, cheat, tmp_path / "t.wtns")


@pytest.mark.parametrize("kind,claim", [("client_forward", "acc0"), ("server_step", "gw0"),
                                        ("server_step", "gx0"), ("client_backward", "gw0")])
def test_a_claimed_product_off_by_one_fails_only_its_freivalds_identity(
        tiny_circuits, tiny_case, tiny_witnesses, tmp_path, kind, claim):
    """A wrong claimed accumulator in a split circuit, as a cheating prover computes around it:
    the witness calculator runs past circom's own assert, so the Fiat–Shamir transcript hashes
    the wrong claim, the challenge and every Freivalds product follow it, its decomposition and
    the commitments are of the wrong value. Only the Freivalds identity of its row fails."""
    names = assert_wrong_claim_fails_only_its_freivalds_identity(
        tiny_circuits.circuit(kind), tiny_case.inputs[kind], claim, tiny_witnesses[kind],
        tmp_path / "t.wtns")
    assert f"{claim}[1][0]" in names                 # row 1's unscaled claimed entry
