"""An independent Groth16 verifier in pure Python, on py_ecc's BN254 arithmetic.

It shares no code with snarkjs (JavaScript, ffjavascript) or groth16py (Rust, arkworks), so an
answer all three agree on does not rest on one implementation's bugs. It is slow (about 1.5 s per
proof: four Miller loops and one final exponentiation in pure Python) and meant as a cross-check.

The check is the Groth16 equation  e(A, B) = e(alpha, beta) * e(vk_x, gamma) * e(C, delta),
with vk_x = IC[0] + sum_i x_i * IC[i+1], evaluated as
e(-A, B) * e(alpha, beta) * e(vk_x, gamma) * e(C, delta) == 1 so that the four Miller loops can be
multiplied together and share a single (expensive) final exponentiation.
"""

from __future__ import annotations

from typing import TypeAlias

from ..recursion import recursion_limit_kept

with recursion_limit_kept():                 # py_ecc raises it to 100,000 (see recursion.py)
    from py_ecc.optimized_bn128 import (
        FQ,
        FQ2,
        FQ12,
        Z1,
        Z2,
        add,
        b,
        b2,
        curve_order,
        final_exponentiate,
        is_inf,
        is_on_curve,
        multiply,
        neg,
        pairing,
    )

from .models import (
    G1_INFINITY,
    G2_INFINITY,
    G1Point,
    G2Point,
    Proof,
    PublicSignals,
    VerificationKey,
)

__all__ = ["PyEccVerifier", "verify"]

_G1: TypeAlias = tuple[FQ, FQ, FQ]  # py_ecc's projective (x, y, z)
_G2: TypeAlias = tuple[FQ2, FQ2, FQ2]


def _g1(point: G1Point) -> _G1 | None:
    """The py_ecc point, or None when it is not on the curve. G1 of BN254 has cofactor 1: every
    curve point is in the prime-order group, so no subgroup check is needed."""
    if point == G1_INFINITY:
        return Z1
    p = (FQ(point[0]), FQ(point[1]), FQ.one())
    return p if is_on_curve(p, b) else None


def _g2(point: G2Point) -> _G2 | None:
    """The py_ecc point, or None when it is off the twist or outside the order-R subgroup. The
    twist has a huge cofactor; points outside the subgroup would break soundness assumptions (and
    pairing with them is not the Groth16 pairing), so multiply by R and expect infinity."""
    if point == G2_INFINITY:
        return Z2
    (x0, x1), (y0, y1) = point
    p = (FQ2([x0, x1]), FQ2([y0, y1]), FQ2.one())
    if not is_on_curve(p, b2) or not is_inf(multiply(p, curve_order)):
        return None
    return p


def verify(vk: VerificationKey, proof: Proof, public: PublicSignals) -> bool:
    """True when ``proof`` is a valid Groth16 proof of ``public`` under ``vk``.

    Returns False, without raising, for a wrong number of public signals, a public signal outside
    [0, R) (rejected, not reduced: x and x + R must not both verify), any point off its curve or
    subgroup (the key's as well as the proof's), or a failed pairing check.
    """
    if len(public) != vk.nPublic or not public.is_reduced():
        return False
    g1 = [_g1(p) for p in (proof.pi_a, proof.pi_c, vk.vk_alpha_1, *vk.IC)]
    g2 = [_g2(p) for p in (proof.pi_b, vk.vk_beta_2, vk.vk_gamma_2, vk.vk_delta_2)]
    if any(p is None for p in g1) or any(p is None for p in g2):
        return False
    a, c, alpha, *ic = g1
    b_, beta, gamma, delta = g2
    vk_x = ic[0]
    for x, point in zip(public, ic[1:]):
        vk_x = add(vk_x, multiply(point, x))
    miller = (
        pairing(b_, neg(a), final_exponentiate=False)
        * pairing(beta, alpha, final_exponentiate=False)
        * pairing(gamma, vk_x, final_exponentiate=False)
        * pairing(delta, c, final_exponentiate=False)
    )
    return final_exponentiate(miller) == FQ12.one()


class PyEccVerifier:
    """The py_ecc verifier behind the interface all splitverify verifiers share
    (``name`` and ``verify(vk, proof, public) -> bool``)."""

    name = "py_ecc"

    def verify(self, vk: VerificationKey, proof: Proof, public: PublicSignals) -> bool:
        return verify(vk, proof, public)
