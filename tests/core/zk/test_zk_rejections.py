"""Every verifier rejects (returns False, never raises) a tampered proof, changed or unreduced
public signals, and a proof checked against another circuit's key."""

from __future__ import annotations

import pytest
from py_ecc.optimized_bn128 import FQ, FQ2, b, b2, is_on_curve

from splitverify import zk
from splitverify.errors import ProofError
from splitverify.zk.curve import Q, R
from splitverify.zk.models import Proof, PublicSignals

# Word ranges of each point in the 256-byte form (8 big-endian 32-byte words):
# A = words 0-1, B = words 2-5, C = words 6-7.
POINT_WORDS = {"A": (0, 2), "B": (2, 6), "C": (6, 8)}
VERIFIERS = zk.VERIFIER_NAMES


def _on_curve(proof: Proof, point: str) -> bool:
    if point == "B":
        (x0, x1), (y0, y1) = proof.pi_b
        return is_on_curve((FQ2([x0, x1]), FQ2([y0, y1]), FQ2.one()), b2)
    x, y = proof.pi_a if point == "A" else proof.pi_c
    return is_on_curve((FQ(x), FQ(y), FQ.one()), b)


def flip_byte_in_point(proof: Proof, point: str, word: str) -> Proof:
    """The proof with one byte flipped in ``point``'s first or last coordinate word. A flip that
    pushes the coordinate to >= Q (Proof.from_bytes raises ProofError) moves to another byte."""
    raw = proof.to_bytes()
    first, end = POINT_WORDS[point]
    w = first if word == "first" else end - 1
    for offset in range(31, -1, -1):  # low bytes first: they never reach Q
        pos = 32 * w + offset
        data = bytearray(raw)
        data[pos] ^= 0x01
        try:
            return Proof.from_bytes(bytes(data))
        except ProofError:
            continue
    raise AssertionError(f"no byte of {point} could be flipped")


@pytest.fixture(scope="module")
def good(matmul_proofs) -> tuple[Proof, PublicSignals]:
    return matmul_proofs["native"]


def test_untampered_proof_verifies_natively(matmul_vk, good) -> None:
    """Control: the proof the tampering starts from is valid."""
    proof, public = good
    assert zk.verify(matmul_vk, proof, public, "native")


@pytest.mark.parametrize("verifier", VERIFIERS)
@pytest.mark.parametrize("word", ["first", "last"])
@pytest.mark.parametrize("point", ["A", "B", "C"])
def test_flipped_byte_in_proof_point_is_rejected(matmul_vk, good, point: str, word: str,
                                                 verifier: str) -> None:
    proof, public = good
    bad = flip_byte_in_point(proof, point, word)
    assert bad != proof
    assert not _on_curve(bad, point), "precondition: the flipped point left the curve"
    assert zk.verify(matmul_vk, bad, public, verifier) is False


@pytest.mark.parametrize("verifier", VERIFIERS)
def test_negated_A_on_the_curve_is_rejected(matmul_vk, good, verifier: str) -> None:
    """A well-formed proof (every point on its curve) that fails the pairing check."""
    proof, public = good
    ax, ay = proof.pi_a
    bad = proof.model_copy(update={"pi_a": (ax, (Q - ay) % Q)})
    assert _on_curve(bad, "A")
    assert zk.verify(matmul_vk, bad, public, verifier) is False


@pytest.mark.parametrize("verifier", VERIFIERS)
@pytest.mark.parametrize("index", [0, 3])
def test_changed_public_signal_is_rejected(matmul_vk, good, verifier: str, index: int) -> None:
    proof, public = good
    values = list(public)
    values[index] = (values[index] + 1) % R
    assert zk.verify(matmul_vk, proof, PublicSignals(tuple(values)), verifier) is False


@pytest.mark.parametrize("verifier", VERIFIERS)
def test_proof_against_other_circuits_key_is_rejected(good, matmul_vk, other_vk,
                                                      verifier: str) -> None:
    proof, public = good
    # Precondition: same number of public signals, so only the key itself differs.
    assert other_vk.nPublic == matmul_vk.nPublic == len(public)
    assert other_vk.IC != matmul_vk.IC
    assert zk.verify(other_vk, proof, public, verifier) is False


@pytest.mark.parametrize("verifier", VERIFIERS)
@pytest.mark.parametrize("shift", ["plus_r", "minus_r"], ids=["x+r", "x-r"])
@pytest.mark.parametrize("index", [0, 1])
def test_unreduced_public_input_is_rejected(matmul_vk, good, verifier: str, shift: str,
                                            index: int) -> None:
    """x + r (or x - r) is congruent to x mod r but is not the canonical field element: accepting
    it would make proofs malleable, so every verifier must say False."""
    proof, public = good
    values = list(public)
    values[index] = values[index] + R if shift == "plus_r" else values[index] - R
    unreduced = PublicSignals(tuple(values))
    assert [v % R for v in unreduced] == list(public)
    assert not unreduced.is_reduced()
    assert zk.verify(matmul_vk, proof, unreduced, verifier) is False


@pytest.mark.parametrize("verifier", VERIFIERS)
def test_wrong_number_of_public_signals_is_rejected(matmul_vk, good, verifier: str) -> None:
    proof, public = good
    assert zk.verify(matmul_vk, proof, PublicSignals(tuple(public)[:-1]), verifier) is False
    assert zk.verify(matmul_vk, proof, PublicSignals((*public, 0)), verifier) is False
