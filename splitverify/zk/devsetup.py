"""A fast, *insecure* development trusted setup that writes snarkjs-compatible files.

snarkjs' route (``powersoftau new/contribute`` then ``prepare phase2`` then ``zkey new``) turns
powers of τ into Lagrange-basis points with group FFTs; at 2^14 that alone took ~290 s on a
2-core machine. Here τ, α and β are drawn at random, every point the files hold is computed
as a scalar times a generator (scalars in Python integers, the multiplications batched in
``curve.FixedBase``), and the secrets are dropped when the function returns. Whoever ran it
*could* have kept them and could then forge proofs: that is why every file says
insecure-for-production. The output is byte-compatible with snarkjs:

* the ``.ptau`` holds exactly what ``snarkjs powersoftau prepare phase2`` would write for those
  secrets (golden-tested against snarkjs at small powers), with zero phase-1 contributions;
* the ``.zkey`` is exactly what ``snarkjs zkey new`` writes from that ptau (same bytes, same
  circuit hash), so ``zkey contribute / beacon / verify`` and both provers accept it.
"""

from __future__ import annotations

import hashlib
import secrets
import struct
from dataclasses import dataclass
from pathlib import Path

from .binfile import BinWriter
from .curve import Q, R, FixedBase, lem_to_uncompressed
from .r1cs import Constraint, R1csInfo

# 2^28-th root of unity of Fr used by snarkjs/ffjavascript (generator 5).
_TWO_ADICITY = 28
_ROOT_28 = pow(5, (R - 1) >> _TWO_ADICITY, R)
assert _ROOT_28 == 19103219067921713944291392827692070036145651957329286315305642004821462161904

G1_SIZE, G2_SIZE = 64, 128


def root_of_unity(power: int) -> int:
    return pow(_ROOT_28, 1 << (_TWO_ADICITY - power), R)


def _batch_inverse(values: list[int]) -> list[int]:
    prefix = [1] * (len(values) + 1)
    for i, v in enumerate(values):
        prefix[i + 1] = prefix[i] * v % R
    inv = pow(prefix[-1], -1, R)
    out = [0] * len(values)
    for i in range(len(values) - 1, -1, -1):
        out[i] = inv * prefix[i] % R
        inv = inv * values[i] % R
    return out


def lagrange_at(tau: int, power: int, truncated: bool = False) -> list[int]:
    """L_j(τ) for the 2^power-point domain, j in natural order.

    ``truncated`` reproduces snarkjs for the extra (power+1) tauG1 section, which is the
    inverse FFT of τ^0..τ^(N-2) with the last power replaced by zero:
    L_j(τ) − ω^j τ^(N−1) / N.
    """
    n = 1 << power
    omega = root_of_unity(power)
    powers_of_omega = [1] * n
    for j in range(1, n):
        powers_of_omega[j] = powers_of_omega[j - 1] * omega % R
    scale = (pow(tau, n, R) - 1) * pow(n, -1, R) % R
    inverses = _batch_inverse([(tau - w) % R for w in powers_of_omega])
    out = [scale * w % R * inv % R for w, inv in zip(powers_of_omega, inverses)]
    if truncated:
        tail = pow(tau, n - 1, R) * pow(n, -1, R) % R
        out = [(l - w * tail) % R for l, w in zip(out, powers_of_omega)]
    return out


@dataclass
class _Secrets:
    tau: int
    alpha: int
    beta: int

    @classmethod
    def draw(cls) -> "_Secrets":
        return cls(*(secrets.randbelow(R - 2) + 2 for _ in range(3)))


class _Multipliers:
    """Fixed-base tables for G1 and G2 generators, built once per setup."""

    def __init__(self):
        self.g1 = FixedBase("G1")
        self.g2 = FixedBase("G2")


def _ptau_header(power: int) -> bytes:
    return struct.pack("<I", 32) + Q.to_bytes(32, "little") + struct.pack("<II", power, power)


@dataclass
class _PtauContent:
    sections: dict[int, bytes]
    tau_powers: list[int]          # τ^0 … τ^(2n−2)
    lagrange: dict[int, list[int]]  # power → L_j(τ) on that domain (prepared files only)


def _ptau_content(power: int, s: _Secrets, mul: _Multipliers, prepared: bool) -> _PtauContent:
    n = 1 << power
    tau_powers = [1] * (2 * n - 1)
    for i in range(1, 2 * n - 1):
        tau_powers[i] = tau_powers[i - 1] * s.tau % R
    sections = {
        1: _ptau_header(power),
        2: mul.g1.mul_many(tau_powers),
        3: mul.g2.mul_many(tau_powers[:n]),
        4: mul.g1.mul_many([s.alpha * t for t in tau_powers[:n]]),
        5: mul.g1.mul_many([s.beta * t for t in tau_powers[:n]]),
        6: mul.g2.mul_many([s.beta]),
        7: struct.pack("<I", 0),
    }
    lagrange: dict[int, list[int]] = {}
    if prepared:
        lagrange = {p: lagrange_at(s.tau, p) for p in range(power + 1)}
        lagrange[power + 1] = lagrange_at(s.tau, power + 1, truncated=True)
        flat = [x for p in range(power + 1) for x in lagrange[p]]
        sections[12] = mul.g1.mul_many(flat + lagrange[power + 1])
        sections[13] = mul.g2.mul_many(flat)
        sections[14] = mul.g1.mul_many([s.alpha * x for x in flat])
        sections[15] = mul.g1.mul_many([s.beta * x for x in flat])
    return _PtauContent(sections, tau_powers, lagrange)


def _write_ptau(path: str | Path, content: _PtauContent) -> None:
    w = BinWriter(b"ptau")
    for sid in sorted(content.sections):
        w.add(sid, content.sections[sid])
    _atomic_write(path, w.to_bytes())


def write_dev_ptau(path: str | Path, power: int, *, prepared: bool = True,
                   _secrets: _Secrets | None = None, _mul: _Multipliers | None = None) -> None:
    """Write a development powers-of-tau file for circuits up to 2^power constraints."""
    _write_ptau(path, _ptau_content(power, _secrets or _Secrets.draw(), _mul or _Multipliers(),
                                    prepared))


def _atomic_write(path: str | Path, data: bytes) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _evaluate_qap(info: R1csInfo, constraints: list[Constraint], lag: list[int]):
    """u_s(τ), v_s(τ), w_s(τ) for every wire s, including snarkjs' extra constraints
    (one per public signal and the constant: A gets L_{nC+s} for s ≤ nPublic)."""
    nw = info.n_wires
    u, v, w = [0] * nw, [0] * nw, [0] * nw
    for c, (a_lc, b_lc, c_lc) in enumerate(constraints):
        lc_val = lag[c]
        for s, coef in a_lc:
            u[s] += coef * lc_val
        for s, coef in b_lc:
            v[s] += coef * lc_val
        for s, coef in c_lc:
            w[s] += coef * lc_val
    for s in range(info.n_public + 1):
        u[s] += lag[info.n_constraints + s]
    return [x % R for x in u], [x % R for x in v], [x % R for x in w]


def _coeff_section(info: R1csInfo, constraints: list[Constraint]) -> bytes:
    # snarkjs stores each A/B coefficient as coef·R² mod r (it reads them back in Montgomery
    # form); we write exactly what it writes.
    r2 = pow(1 << 256, 2, R)
    entries = []
    pack = struct.Struct("<III").pack
    for c, (a_lc, b_lc, _) in enumerate(constraints):
        for matrix, lc in ((0, a_lc), (1, b_lc)):
            for s, coef in lc:
                entries.append(pack(matrix, c, s) + (coef * r2 % R).to_bytes(32, "little"))
    for s in range(info.n_public + 1):
        entries.append(pack(0, info.n_constraints + s, s) + r2.to_bytes(32, "little"))
    return struct.pack("<I", len(entries)) + b"".join(entries)


def _hash_points(hasher, points: bytes, size: int, coord: int, count_prefix: int | None = None):
    if count_prefix is not None:
        hasher.update(struct.pack(">I", count_prefix))
    for off in range(0, len(points), size):
        hasher.update(lem_to_uncompressed(points[off: off + size], coord))


def dev_setup(info: R1csInfo, constraints: list[Constraint], ptau_path: str | Path,
              zkey_path: str | Path, *, _secrets: _Secrets | None = None) -> bytes:
    """Write a prepared development ptau sized to the circuit and its initial zkey (the state
    of ``snarkjs zkey new``: δ = γ = 1, no contributions) from one set of secrets that are then
    forgotten. Returns the circuit hash (blake2b-512) snarkjs would print."""
    power = info.ptau_power
    s = _secrets or _Secrets.draw()
    mul = _Multipliers()
    ptau = _ptau_content(power, s, mul, prepared=True)
    _write_ptau(ptau_path, ptau)

    domain_power = info.domain_power
    n = 1 << domain_power
    u, v, w = _evaluate_qap(info, constraints, ptau.lagrange[domain_power])
    n_pub = info.n_public
    ic_c = [(s.beta * a + s.alpha * b + c) % R for a, b, c in zip(u, v, w)]

    alpha1 = ptau.sections[4][:G1_SIZE]
    beta1 = ptau.sections[5][:G1_SIZE]
    beta2 = ptau.sections[6]
    gen1 = ptau.sections[2][:G1_SIZE]   # τ^0·G1
    gen2 = ptau.sections[3][:G2_SIZE]   # τ^0·G2
    ic_pts = mul.g1.mul_many(ic_c[: n_pub + 1])
    c_pts = mul.g1.mul_many(ic_c[n_pub + 1:])
    a_pts = mul.g1.mul_many(u)
    b1_pts = mul.g1.mul_many(v)
    b2_pts = mul.g2.mul_many(v)
    # H: the odd Lagrange points of the doubled domain (snarkjs computes h on that coset),
    # sliced from the ptau's tauG1 Lagrange section as `snarkjs zkey new` does.
    block = (2 * n - 1) * G1_SIZE
    doubled = ptau.sections[12][block: block + 2 * n * G1_SIZE]
    h_pts = b"".join(doubled[(2 * i + 1) * G1_SIZE: (2 * i + 2) * G1_SIZE] for i in range(n))
    # The circuit hash covers τ^i (τ^n − 1)·G1 for i < n−1 in place of the H points.
    tp = ptau.tau_powers
    h_hash_pts = mul.g1.mul_many([(tp[i + n] - tp[i]) % R for i in range(n - 1)])
    del s

    hasher = hashlib.blake2b(digest_size=64)
    for pt, size, coord in ((alpha1, G1_SIZE, 32), (beta1, G1_SIZE, 32), (beta2, G2_SIZE, 64),
                            (gen2, G2_SIZE, 64), (gen1, G1_SIZE, 32), (gen2, G2_SIZE, 64)):
        _hash_points(hasher, pt, size, coord)
    _hash_points(hasher, ic_pts, G1_SIZE, 32, n_pub + 1)
    _hash_points(hasher, h_hash_pts, G1_SIZE, 32, n - 1)
    _hash_points(hasher, c_pts, G1_SIZE, 32, info.n_wires - n_pub - 1)
    _hash_points(hasher, a_pts, G1_SIZE, 32, info.n_wires)
    _hash_points(hasher, b1_pts, G1_SIZE, 32, info.n_wires)
    _hash_points(hasher, b2_pts, G2_SIZE, 64, info.n_wires)
    cs_hash = hasher.digest()

    groth_header = (struct.pack("<I", 32) + Q.to_bytes(32, "little") + struct.pack("<I", 32)
                    + R.to_bytes(32, "little")
                    + struct.pack("<III", info.n_wires, n_pub, n)
                    + alpha1 + beta1 + beta2 + gen2 + gen1 + gen2)
    zk = BinWriter(b"zkey")
    zk.add(1, struct.pack("<I", 1))
    zk.add(2, groth_header)
    zk.add(4, _coeff_section(info, constraints))
    zk.add(3, ic_pts)
    zk.add(9, h_pts)
    zk.add(8, c_pts)
    zk.add(5, a_pts)
    zk.add(6, b1_pts)
    zk.add(7, b2_pts)
    zk.add(10, cs_hash + struct.pack("<I", 0))
    _atomic_write(zkey_path, zk.to_bytes())
    return cs_hash
