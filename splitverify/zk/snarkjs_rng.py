# SPDX-License-Identifier: GPL-3.0-or-later
"""snarkjs' deterministic randomness, bit for bit: ffjavascript's ChaCha generator and the
``fromRng`` samplers of Fr, G1 and G2 built on it.

The phase-2 ceremony derives each contribution's ``g2_sp`` from its transcript hash
(``hashToG2`` in snarkjs/src/keypair.js: ChaCha seeded with the hash, then ``G2.fromRng``), and a
beacon derives its key from iterated SHA-256 the same way; checking either natively needs the
same numbers snarkjs draws. Everything here is plain Python integers: a sample costs a handful
of exponentiations, and the cofactor multiplication of G2 a few hundred group operations.

Quirks reproduced on purpose (wasmcurves/ffjavascript):

* ``nextU64`` is ``hi · 2^32 + lo`` with the *first* u32 drawn as the high half;
* ``F.fromRng`` masks to the field's bit length, rejects values ≥ p and returns v's bytes *as
  the Montgomery form*, so the element is v · 2^-256 mod p;
* a curve point's y is the square root whose "isNegative" (value > (p−1)/2, for Fp2 on c1
  unless c1 is 0) equals the drawn boolean; G2 points are then multiplied by the cofactor.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence

from .curve import Q, R, TWIST_B

_MASK32 = 0xFFFFFFFF
_CHACHA_CONSTANTS = (0x61707865, 0x3320646E, 0x79622D32, 0x6B206574)
_MONT_INV_Q = pow(1 << 256, -1, Q)
_MONT_INV_R = pow(1 << 256, -1, R)
_HALF_Q = (Q - 1) // 2
# ffjavascript's bn128 cofactorG2 (= 2q − r).
G2_COFACTOR = 0x30644E72E131A029B85045B68181585E06CEECDA572A2489345F2299C0F9FA8D

Fp2 = tuple[int, int]


def _rotl(v: int, n: int) -> int:
    return ((v << n) | (v >> (32 - n))) & _MASK32


def _quarter_round(st: list[int], a: int, b: int, c: int, d: int) -> None:
    st[a] = (st[a] + st[b]) & _MASK32
    st[d] = _rotl(st[d] ^ st[a], 16)
    st[c] = (st[c] + st[d]) & _MASK32
    st[b] = _rotl(st[b] ^ st[c], 12)
    st[a] = (st[a] + st[b]) & _MASK32
    st[d] = _rotl(st[d] ^ st[a], 8)
    st[c] = (st[c] + st[d]) & _MASK32
    st[b] = _rotl(st[b] ^ st[c], 7)


class ChaCha:
    """ffjavascript's ChaCha20 block generator (src/chacha.js): 8 seed words, zero nonce,
    a 128-bit block counter in state words 12..15."""

    def __init__(self, seed: Sequence[int]):
        if len(seed) != 8:
            raise ValueError("a ChaCha seed is 8 u32 words")
        self._state = [*_CHACHA_CONSTANTS, *(w & _MASK32 for w in seed), 0, 0, 0, 0]
        self._block: list[int] = []
        self._idx = 16

    @classmethod
    def from_hash(cls, digest: bytes) -> "ChaCha":
        """Seeded with the first 32 bytes of a hash read as 8 big-endian u32 (keypair.js)."""
        return cls(struct.unpack(">8I", digest[:32]))

    def _update(self) -> None:
        buf = list(self._state)
        for _ in range(10):
            _quarter_round(buf, 0, 4, 8, 12)
            _quarter_round(buf, 1, 5, 9, 13)
            _quarter_round(buf, 2, 6, 10, 14)
            _quarter_round(buf, 3, 7, 11, 15)
            _quarter_round(buf, 0, 5, 10, 15)
            _quarter_round(buf, 1, 6, 11, 12)
            _quarter_round(buf, 2, 7, 8, 13)
            _quarter_round(buf, 3, 4, 9, 14)
        self._block = [(b + s) & _MASK32 for b, s in zip(buf, self._state)]
        self._idx = 0
        for word in range(12, 16):  # carry through the 128-bit counter
            self._state[word] = (self._state[word] + 1) & _MASK32
            if self._state[word]:
                break

    def next_u32(self) -> int:
        if self._idx == 16:
            self._update()
        value = self._block[self._idx]
        self._idx += 1
        return value

    def next_u64(self) -> int:
        high = self.next_u32()
        return high * (1 << 32) + self.next_u32()

    def next_bool(self) -> bool:
        return bool(self.next_u32() & 1)


def _field_from_rng(rng: ChaCha, p: int, mont_inv: int) -> int:
    mask = (1 << p.bit_length()) - 1
    while True:
        v = sum(rng.next_u64() << (64 * i) for i in range(4)) & mask
        if v < p:
            return v * mont_inv % p


def fr_from_rng(rng: ChaCha) -> int:
    """``curve.Fr.fromRng``: an element of Fr (as a plain integer)."""
    return _field_from_rng(rng, R, _MONT_INV_R)


def fq_from_rng(rng: ChaCha) -> int:
    return _field_from_rng(rng, Q, _MONT_INV_Q)


# --- Fp2 = Fp[u] / (u^2 + 1) ------------------------------------------------------------------


def _f2_add(a: Fp2, b: Fp2) -> Fp2:
    return (a[0] + b[0]) % Q, (a[1] + b[1]) % Q


def _f2_sub(a: Fp2, b: Fp2) -> Fp2:
    return (a[0] - b[0]) % Q, (a[1] - b[1]) % Q


def _f2_mul(a: Fp2, b: Fp2) -> Fp2:
    return (a[0] * b[0] - a[1] * b[1]) % Q, (a[0] * b[1] + a[1] * b[0]) % Q


def _f2_sqr(a: Fp2) -> Fp2:
    return _f2_mul(a, a)


def _f2_scale(a: Fp2, k: int) -> Fp2:
    return a[0] * k % Q, a[1] * k % Q


def _f2_inv(a: Fp2) -> Fp2:
    inv_norm = pow(a[0] * a[0] + a[1] * a[1], -1, Q)
    return a[0] * inv_norm % Q, -a[1] * inv_norm % Q


def _f2_pow(a: Fp2, e: int) -> Fp2:
    result: Fp2 = (1, 0)
    for bit in bin(e)[2:]:
        result = _f2_sqr(result)
        if bit == "1":
            result = _f2_mul(result, a)
    return result


def _is_square_fp(a: int) -> bool:
    return a == 0 or pow(a, _HALF_Q, Q) == 1


def _is_square_fp2(a: Fp2) -> bool:
    # a is a square in Fp2 iff its norm is a square in Fp.
    return _is_square_fp((a[0] * a[0] + a[1] * a[1]) % Q)


def _sqrt_fp2(a: Fp2) -> Fp2:
    """A square root in Fp2 for q ≡ 3 mod 4 (Adj & Rodríguez-Henríquez, algorithm 9); which of
    the two roots does not matter: the caller fixes the sign."""
    a1 = _f2_pow(a, (Q - 3) // 4)
    alpha = _f2_mul(a1, _f2_mul(a1, a))
    x0 = _f2_mul(a1, a)
    if alpha == (Q - 1, 0):
        root = _f2_mul((0, 1), x0)
    else:
        root = _f2_mul(_f2_pow(_f2_add((1, 0), alpha), _HALF_Q), x0)
    if _f2_sqr(root) != (a[0] % Q, a[1] % Q):
        raise ArithmeticError("no square root in Fp2")  # callers test _is_square_fp2 first
    return root


def _is_negative_fp2(a: Fp2) -> bool:
    return (a[0] if a[1] == 0 else a[1]) > _HALF_Q


# --- points --------------------------------------------------------------------------------------


def g1_from_rng(rng: ChaCha) -> tuple[int, int]:
    """``curve.G1.fromRng`` (affine; G1 has cofactor 1)."""
    while True:
        x = fq_from_rng(rng)
        greatest = rng.next_bool()
        rhs = (x * x * x + 3) % Q
        if _is_square_fp(rhs):
            break
    y = pow(rhs, (Q + 1) // 4, Q)
    if greatest != (y > _HALF_Q):
        y = (Q - y) % Q
    return x, y


_Jacobian2 = tuple[Fp2, Fp2, Fp2]
_ZERO2: Fp2 = (0, 0)


def _j2_double(p: _Jacobian2) -> _Jacobian2:
    x, y, z = p
    if z == _ZERO2:
        return p
    a, b = _f2_sqr(x), _f2_sqr(y)
    c = _f2_sqr(b)
    d = _f2_scale(_f2_sub(_f2_sub(_f2_sqr(_f2_add(x, b)), a), c), 2)
    e = _f2_scale(a, 3)
    x3 = _f2_sub(_f2_sqr(e), _f2_scale(d, 2))
    y3 = _f2_sub(_f2_mul(e, _f2_sub(d, x3)), _f2_scale(c, 8))
    return x3, y3, _f2_scale(_f2_mul(y, z), 2)


def _j2_add_affine(p: _Jacobian2, q: tuple[Fp2, Fp2]) -> _Jacobian2:
    x1, y1, z1 = p
    if z1 == _ZERO2:
        return q[0], q[1], (1, 0)
    z1z1 = _f2_sqr(z1)
    u2 = _f2_mul(q[0], z1z1)
    s2 = _f2_mul(_f2_mul(q[1], z1), z1z1)
    h = _f2_sub(u2, x1)
    r = _f2_scale(_f2_sub(s2, y1), 2)
    if h == _ZERO2:
        return _j2_double(p) if r == _ZERO2 else (_ZERO2, (1, 0), _ZERO2)
    hh = _f2_sqr(h)
    i = _f2_scale(hh, 4)
    j = _f2_mul(h, i)
    v = _f2_mul(x1, i)
    x3 = _f2_sub(_f2_sub(_f2_sqr(r), j), _f2_scale(v, 2))
    y3 = _f2_sub(_f2_mul(r, _f2_sub(v, x3)), _f2_scale(_f2_mul(y1, j), 2))
    z3 = _f2_sub(_f2_sub(_f2_sqr(_f2_add(z1, h)), z1z1), hh)
    return x3, y3, z3


def _g2_mul_affine(point: tuple[Fp2, Fp2], k: int) -> tuple[Fp2, Fp2] | None:
    acc: _Jacobian2 = (_ZERO2, (1, 0), _ZERO2)
    for bit in bin(k)[2:]:
        acc = _j2_double(acc)
        if bit == "1":
            acc = _j2_add_affine(acc, point)
    x, y, z = acc
    if z == _ZERO2:
        return None
    zi = _f2_inv(z)
    zi2 = _f2_sqr(zi)
    return _f2_mul(x, zi2), _f2_mul(y, _f2_mul(zi2, zi))


def g2_from_rng(rng: ChaCha) -> tuple[Fp2, Fp2]:
    """``curve.G2.fromRng``: affine ((x.c0, x.c1), (y.c0, y.c1)) after the cofactor."""
    while True:
        x = (fq_from_rng(rng), fq_from_rng(rng))
        greatest = rng.next_bool()
        rhs = _f2_add(_f2_mul(_f2_sqr(x), x), TWIST_B)
        if _is_square_fp2(rhs):
            break
    y = _sqrt_fp2(rhs)
    if greatest != _is_negative_fp2(y):
        y = _f2_sub(_ZERO2, y)
    point = _g2_mul_affine((x, y), G2_COFACTOR)
    if point is None:  # pragma: no cover - the cofactor never kills a random twist point
        raise ArithmeticError("G2.fromRng produced the point at infinity")
    return point


def hash_to_g2(digest: bytes) -> tuple[Fp2, Fp2]:
    """snarkjs' ``hashToG2`` (keypair.js): the G2 point a contribution's transcript commits to."""
    return g2_from_rng(ChaCha.from_hash(digest))


def beacon_rng(beacon_hash: bytes, iterations_exp: int) -> ChaCha:
    """snarkjs' ``rngFromBeaconParams``: SHA-256 iterated 2^iterations_exp times, then ChaCha
    seeded with the result (2^20 iterations take about a second)."""
    digest = bytes(beacon_hash)
    sha256 = hashlib.sha256
    for _ in range(1 << iterations_exp):
        digest = sha256(digest).digest()
    return ChaCha.from_hash(digest)
