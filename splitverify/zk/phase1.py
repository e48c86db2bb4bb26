# SPDX-License-Identifier: GPL-3.0-or-later
"""A two-party powers of tau (phase 1), native and byte-compatible with snarkjs 0.7.6
(``powersoftau new / contribute / verify / prepare phase2``; the spec is snarkjs/src/
powersoftau_*.js, keypair.js and misc.js).

The first party (``start``) draws τ, α and β and writes the file ``snarkjs powersoftau new``
followed by ``contribute`` would write for them: every point a scalar times a generator
(``curve.FixedBase``), and one contribution record with its proofs of knowledge. The second
party (``contribute``) multiplies point i of each section by its own τ'^i (α'τ'^i, β'τ'^i) and
appends its record. ``verify`` checks a file as ``snarkjs powersoftau verify`` does — every
contribution's proofs of knowledge and that it follows the previous one, the last one's challenge
hash, and that each section holds consecutive powers of one τ — with the per-point checks
batched: one pairing equation for random 128-bit combinations of all consecutive pairs.
``prepare_phase2`` adds the Lagrange-basis sections (inverse group FFTs in C on mcl, on every
core), byte for byte what ``snarkjs powersoftau prepare phase2`` writes.

Neither party alone knows τ, α or β of the result: each knows only its own factors, which are
dropped when the function that drew them returns.
"""

from __future__ import annotations

import hashlib
import secrets
import struct
from dataclasses import dataclass
from pathlib import Path

from ..errors import IntegrityError, SetupError
from .binfile import BinWriter, read_binfile
from .curve import (Q, R, FixedBase, g1_neg, g2_in_subgroup, lem_to_int, lem_to_struct,
                    lem_to_uncompressed, msm, mul_points, pairing_product_is_one, point_mul,
                    same_ratio, blake2b_partial, fft)
from .devsetup import _atomic_write, _ptau_header, root_of_unity
from .phase2 import G1_ONE, G2_ONE, _g1_lem, _g2_lem, contribution_params, snarkjs_name
from .snarkjs_rng import ChaCha, g1_from_rng, hash_to_g2

G1_SIZE, G2_SIZE = 64, 128
HASH_SIZE, PARTIAL_HASH_SIZE = 64, 216
PUBKEY_SIZE = 6 * G1_SIZE + 3 * G2_SIZE
CONTRIBUTION = 0
MAX_POWER = 28
FACTORS = ("tau", "alpha", "beta")


def _u(point: bytes) -> bytes:
    return lem_to_uncompressed(point, 32 if len(point) == G1_SIZE else 64)


def _compressed(points: bytes, size: int) -> bytes:
    """wasmcurves' LEMtoC for consecutive points: x big-endian (Fp2: c1 then c0), the top bit
    set when y is "negative" (its normal value, for Fp2 c1 unless that is 0, above (q−1)/2),
    infinity as 0x40 followed by zeros."""
    coord = size // 2
    half = (Q - 1) // 2
    out = bytearray()
    for off in range(0, len(points), size):
        p = points[off: off + size]
        if not any(p):
            out += b"\x40" + bytes(coord - 1)
            continue
        xs = [lem_to_int(p[i: i + 32]) for i in range(0, coord, 32)]
        ys = [lem_to_int(p[coord + i: coord + i + 32]) for i in range(0, coord, 32)]
        enc = bytearray(b"".join(v.to_bytes(32, "big") for v in reversed(xs)))
        sign_of = ys[1] if len(ys) == 2 and ys[1] else ys[0]
        if sign_of > half:
            enc[0] |= 0x80
        out += enc
    return bytes(out)


def _uncompressed(points: bytes, size: int) -> bytes:
    coord = size // 2
    return b"".join(lem_to_uncompressed(points[o: o + size], coord)
                    for o in range(0, len(points), size))


# --- records ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FactorKey:
    """The public key of one factor (τ, α or β): g1_s, g1_sx = x·g1_s, g2_spx = x·g2_sp."""
    g1_s: bytes
    g1_sx: bytes
    g2_spx: bytes


@dataclass(frozen=True)
class PubKey:
    tau: FactorKey
    alpha: FactorKey
    beta: FactorKey

    def _points(self) -> list[bytes]:
        return [self.tau.g1_s, self.tau.g1_sx, self.alpha.g1_s, self.alpha.g1_sx,
                self.beta.g1_s, self.beta.g1_sx, self.tau.g2_spx, self.alpha.g2_spx,
                self.beta.g2_spx]

    def lem(self) -> bytes:
        return b"".join(self._points())

    def uncompressed(self) -> bytes:
        return b"".join(_u(p) for p in self._points())

    @classmethod
    def from_lem(cls, raw: bytes) -> "PubKey":
        g1 = [raw[i * G1_SIZE:(i + 1) * G1_SIZE] for i in range(6)]
        g2 = [raw[6 * G1_SIZE + i * G2_SIZE: 6 * G1_SIZE + (i + 1) * G2_SIZE] for i in range(3)]
        return cls(FactorKey(g1[0], g1[1], g2[0]), FactorKey(g1[2], g1[3], g2[1]),
                   FactorKey(g1[4], g1[5], g2[2]))


@dataclass(frozen=True)
class Contribution:
    """One record of section 7 (snarkjs' readContribution/writeContribution)."""
    tau_g1: bytes
    tau_g2: bytes
    alpha_g1: bytes
    beta_g1: bytes
    beta_g2: bytes
    key: PubKey
    partial_hash: bytes
    next_challenge: bytes
    kind: int = CONTRIBUTION
    name: str = ""

    def to_bytes(self) -> bytes:
        params = b""
        if self.name:
            encoded = snarkjs_name(self.name).encode()
            params = bytes([1, len(encoded)]) + encoded
        return (self.tau_g1 + self.tau_g2 + self.alpha_g1 + self.beta_g1 + self.beta_g2
                + self.key.lem() + self.partial_hash + self.next_challenge
                + struct.pack("<II", self.kind, len(params)) + params)

    @property
    def hash(self) -> str:
        """Its public key's hash (blake2b-512, hex): names the contribution in records."""
        return hashlib.blake2b(self.key.uncompressed(), digest_size=64).hexdigest()


def _parse_contributions(data: bytes) -> list[Contribution]:
    pos = 0

    def take(n: int) -> bytes:
        nonlocal pos
        if pos + n > len(data):
            raise ValueError("section 7 ends in the middle of a contribution")
        pos += n
        return data[pos - n: pos]

    (count,) = struct.unpack("<I", take(4))
    out = []
    for _ in range(count):
        points = [take(G1_SIZE), take(G2_SIZE), take(G1_SIZE), take(G1_SIZE), take(G2_SIZE)]
        key = PubKey.from_lem(take(PUBKEY_SIZE))
        partial, challenge = take(PARTIAL_HASH_SIZE), take(HASH_SIZE)
        kind, plen = struct.unpack("<II", take(8))
        name = contribution_params(take(plen)).get("name", "")
        out.append(Contribution(*points, key, partial, challenge, kind, name))
    if pos != len(data):
        raise ValueError(f"{len(data) - pos} bytes follow the last contribution")
    return out


def _contributions_section(contributions: list[Contribution]) -> bytes:
    return struct.pack("<I", len(contributions)) + b"".join(c.to_bytes() for c in contributions)


# --- the file -----------------------------------------------------------------------------------


@dataclass
class Ptau:
    """A powers-of-tau file in memory: power, sections 2–6 (LEM points), the contributions."""
    power: int
    sections: dict[int, bytes]
    contributions: list[Contribution]

    @property
    def counts(self) -> dict[int, int]:
        n = 1 << self.power
        return {2: 2 * n - 1, 3: n, 4: n, 5: n, 6: 1}

    def to_bytes(self) -> bytes:
        w = BinWriter(b"ptau")
        w.add(1, _ptau_header(self.power))
        for sid in range(2, 7):
            w.add(sid, self.sections[sid])
        w.add(7, _contributions_section(self.contributions))
        return w.to_bytes()

    def write(self, path: str | Path) -> Path:
        _atomic_write(path, self.to_bytes())
        return Path(path)

    @classmethod
    def read(cls, path: str | Path, what: str = "powers-of-tau file") -> "Ptau":
        """Parse and size-check a ptau (phase-1 sections only); IntegrityError names the fault."""
        try:
            bf = read_binfile(path, b"ptau")
        except OSError as exc:
            raise SetupError(f"cannot read the {what} {path}: {exc}") from exc
        missing = [s for s in range(1, 8) if s not in bf.sections]
        if missing:
            raise IntegrityError(f"the {what} {Path(path).name} lacks sections {missing}")
        header = bytes(bf.section(1))
        if len(header) != 44 or header[:36] != _ptau_header(0)[:36]:
            raise IntegrityError(f"the {what} {Path(path).name} is not for the BN254 curve")
        power, ceremony_power = struct.unpack_from("<II", header, 36)
        if not 1 <= power <= MAX_POWER or power != ceremony_power:
            raise IntegrityError(f"the {what} {Path(path).name} has power {power} (ceremony "
                                 f"power {ceremony_power}): 1–{MAX_POWER}, not reduced, expected")
        ptau = cls(power, {sid: bytes(bf.section(sid)) for sid in range(2, 7)}, [])
        sizes = {2: G1_SIZE, 3: G2_SIZE, 4: G1_SIZE, 5: G1_SIZE, 6: G2_SIZE}
        for sid, count in ptau.counts.items():
            if len(ptau.sections[sid]) != count * sizes[sid]:
                raise IntegrityError(f"the {what} {Path(path).name}: section {sid} holds "
                                     f"{len(ptau.sections[sid])} bytes, {count} points expected")
        try:
            ptau.contributions = _parse_contributions(bytes(bf.section(7)))
        except ValueError as exc:
            raise IntegrityError(f"the {what} {Path(path).name}: section 7 (contributions) is "
                                 f"malformed: {exc}") from exc
        return ptau

    def point(self, sid: int, index: int) -> bytes:
        size = G2_SIZE if sid in (3, 6) else G1_SIZE
        return self.sections[sid][index * size:(index + 1) * size]


def first_challenge_hash(power: int) -> bytes:
    """snarkjs' calculateFirstChallengeHash: the hash of the file ``powersoftau new`` writes."""
    n = 1 << power
    g1, g2 = _u(G1_ONE), _u(G2_ONE)
    h = hashlib.blake2b(hashlib.blake2b(digest_size=64).digest(), digest_size=64)
    h.update(g1 * (2 * n - 1))
    h.update(g2 * n)
    h.update(g1 * n)
    h.update(g1 * n)
    h.update(g2)
    return h.digest()


def _g2_sp(personalization: int, challenge: bytes, g1_s: bytes, g1_sx: bytes) -> bytes:
    digest = hashlib.blake2b(bytes([personalization]) + challenge + _u(g1_s) + _u(g1_sx),
                             digest_size=64).digest()
    return _g2_lem(hash_to_g2(digest))


def _same_partial_hash(mine: bytes, theirs: bytes) -> bool:
    """Equal BLAKE2b states: the chaining words and counters, and the pending bytes (the rest of
    the block buffer is whatever an earlier block left there)."""
    pending = struct.unpack_from("<I", mine, 200)[0]
    return mine[128:] == theirs[128:] and mine[:pending] == theirs[:pending]


def _response_data(challenge: bytes, sections: dict[int, bytes]) -> bytes:
    """What the response hash covers before the public key: the challenge and the new points,
    compressed."""
    sizes = {2: G1_SIZE, 3: G2_SIZE, 4: G1_SIZE, 5: G1_SIZE, 6: G2_SIZE}
    return challenge + b"".join(_compressed(sections[sid], sizes[sid]) for sid in range(2, 7))


def _next_challenge(response_hash: bytes, sections: dict[int, bytes]) -> bytes:
    sizes = {2: G1_SIZE, 3: G2_SIZE, 4: G1_SIZE, 5: G1_SIZE, 6: G2_SIZE}
    h = hashlib.blake2b(response_hash, digest_size=64)
    for sid in range(2, 7):
        h.update(_uncompressed(sections[sid], sizes[sid]))
    return h.digest()


def _last_challenge(ptau: Ptau) -> bytes:
    return (ptau.contributions[-1].next_challenge if ptau.contributions
            else first_challenge_hash(ptau.power))


def _record(sections: dict[int, bytes], challenge: bytes, key: PubKey, name: str
            ) -> Contribution:
    data = _response_data(challenge, sections)
    response = hashlib.blake2b(data + key.uncompressed(), digest_size=64).digest()
    return Contribution(sections[2][G1_SIZE:2 * G1_SIZE], sections[3][G2_SIZE:2 * G2_SIZE],
                        sections[4][:G1_SIZE], sections[5][:G1_SIZE], sections[6][:G2_SIZE],
                        key, blake2b_partial(data), _next_challenge(response, sections),
                        CONTRIBUTION, snarkjs_name(name))


def _draw_key(challenge: bytes) -> tuple[tuple[int, int, int], PubKey]:
    """Fresh factors (τ, α, β) from the OS and their public key (keypair.js createPTauKey)."""
    factors = tuple(secrets.randbelow(R - 1) + 1 for _ in FACTORS)
    keys = []
    for personalization, x in enumerate(factors):
        g1_s = _g1_lem(g1_from_rng(ChaCha.from_hash(secrets.token_bytes(32))))
        g1_sx = point_mul("G1", g1_s, x)
        keys.append(FactorKey(g1_s, g1_sx,
                              point_mul("G2", _g2_sp(personalization, challenge, g1_s, g1_sx), x)))
    return factors, PubKey(*keys)


def _check_name(name: str) -> None:
    if not name or len(name.encode()) > 255 or "\n" in name:
        raise SetupError("a contribution name must be 1–255 bytes, on one line")


def start(power: int, name: str, out: str | Path) -> Contribution:
    """The first party: write ``out``, the powers of tau of freshly drawn τ, α, β with their
    contribution record (what ``powersoftau new`` + ``contribute`` writes). Returns the record."""
    _check_name(name)
    if not 1 <= power <= MAX_POWER:
        raise SetupError(f"a powers of tau needs a power from 1 to {MAX_POWER}, not {power}")
    challenge = first_challenge_hash(power)
    (tau, alpha, beta), key = _draw_key(challenge)
    n = 1 << power
    powers = [1] * (2 * n - 1)
    for i in range(1, 2 * n - 1):
        powers[i] = powers[i - 1] * tau % R
    g1, g2 = FixedBase("G1"), FixedBase("G2")
    sections = {2: g1.mul_many(powers), 3: g2.mul_many(powers[:n]),
                4: g1.mul_many([alpha * t for t in powers[:n]]),
                5: g1.mul_many([beta * t for t in powers[:n]]), 6: g2.mul_many([beta])}
    del tau, alpha, beta, powers
    record = _record(sections, challenge, key, name)
    Ptau(power, sections, [record]).write(out)
    return record


def contribute(previous: str | Path, name: str, out: str | Path) -> Contribution:
    """The next party: ``previous`` (check it with ``verify`` first) times fresh factors, with
    this contribution's record appended, to ``out`` (``snarkjs powersoftau contribute``)."""
    _check_name(name)
    old = Ptau.read(previous)
    challenge = _last_challenge(old)
    (tau, alpha, beta), key = _draw_key(challenge)
    n = 1 << old.power
    powers = [1] * (2 * n - 1)
    for i in range(1, 2 * n - 1):
        powers[i] = powers[i - 1] * tau % R
    sections = {2: mul_points("G1", old.sections[2], powers),
                3: mul_points("G2", old.sections[3], powers[:n]),
                4: mul_points("G1", old.sections[4], [alpha * t for t in powers[:n]]),
                5: mul_points("G1", old.sections[5], [beta * t for t in powers[:n]]),
                6: mul_points("G2", old.sections[6], [beta])}
    del tau, alpha, beta, powers
    record = _record(sections, challenge, key, name)
    Ptau(old.power, sections, [*old.contributions, record]).write(out)
    return record


# --- verify -------------------------------------------------------------------------------------


class _Initial:
    """The state before any contribution (snarkjs verify's initialContribution)."""

    def __init__(self, power: int):
        self.tau_g1 = self.alpha_g1 = self.beta_g1 = G1_ONE
        self.tau_g2 = self.beta_g2 = G2_ONE
        self.next_challenge = first_challenge_hash(power)


def _verify_contribution(cur: Contribution, prev, index: int, fail) -> None:
    """The proofs of knowledge of one contribution and that its points follow the previous."""
    label = f"contribution #{index} ({cur.name or 'unnamed'})"
    if cur.kind != CONTRIBUTION:
        raise fail(f"{label}: type", "only contributions (no beacons) are accepted here")
    g2_sp = {}
    for personalization, factor in enumerate(FACTORS):
        k: FactorKey = getattr(cur.key, factor)
        try:
            for point in (k.g1_s, k.g1_sx):
                lem_to_struct("G1", point)
            in_group = g2_in_subgroup(k.g2_spx)
        except ValueError:
            raise fail(f"{label}: {factor} key", "a point is not on the curve") from None
        if not in_group:
            raise fail(f"{label}: {factor} key", "g2_spx is not in the group of order r")
        g2_sp[factor] = _g2_sp(personalization, prev.next_challenge, k.g1_s, k.g1_sx)
        if not same_ratio(k.g1_s, k.g1_sx, g2_sp[factor], k.g2_spx):
            raise fail(f"{label}: proof of knowledge of {factor}",
                       "g1_sx/g1_s and g2_spx/g2_sp differ")
    for point, group_name, what in ((cur.tau_g1, "G1", "tauG1"), (cur.alpha_g1, "G1", "alphaG1"),
                                    (cur.beta_g1, "G1", "betaG1"), (cur.tau_g2, "G2", "tauG2"),
                                    (cur.beta_g2, "G2", "betaG2")):
        try:
            ok = bool(lem_to_struct("G1", point)) if group_name == "G1" else g2_in_subgroup(point)
        except ValueError:
            ok = False
        if not ok:
            raise fail(f"{label}: {what}", "it is not a point of the group")
    steps = (
        (prev.tau_g1, cur.tau_g1, g2_sp["tau"], cur.key.tau.g2_spx, "tau*G1"),
        (cur.key.tau.g1_s, cur.key.tau.g1_sx, prev.tau_g2, cur.tau_g2, "tau*G2"),
        (prev.alpha_g1, cur.alpha_g1, g2_sp["alpha"], cur.key.alpha.g2_spx, "alpha*G1"),
        (prev.beta_g1, cur.beta_g1, g2_sp["beta"], cur.key.beta.g2_spx, "beta*G1"),
        (cur.key.beta.g1_s, cur.key.beta.g1_sx, prev.beta_g2, cur.beta_g2, "beta*G2"))
    for a1, b1, a2, b2, what in steps:
        if not same_ratio(a1, b1, a2, b2):
            raise fail(f"{label}: {what} follows the previous contribution",
                       "it is not the previous one times the factor this contribution proves "
                       "it knows")


def _check_powers(ptau: Ptau, last: Contribution, fail) -> None:
    """Each section holds consecutive powers of one τ: for random 128-bit ρ_i,
    e(Σρ_i P_i, τG2) = e(Σρ_i P_(i+1), G2) over every consecutive pair of sections 2, 4 and 5
    at once, and e(τG1, Σρ_i Q_i) = e(G1, Σρ_i Q_(i+1)) over section 3."""
    firsts = ((2, 0, G1_ONE, "the generator"), (2, 1, last.tau_g1, "the contribution's tauG1"),
              (3, 0, G2_ONE, "the generator"), (3, 1, last.tau_g2, "the contribution's tauG2"),
              (4, 0, last.alpha_g1, "the contribution's alphaG1"),
              (5, 0, last.beta_g1, "the contribution's betaG1"),
              (6, 0, last.beta_g2, "the contribution's betaG2"))
    for sid, index, expected, what in firsts:
        if ptau.point(sid, index) != expected:
            raise fail(f"point {index} of section {sid}", f"it is not {what}")
    lows, highs = b"", b""
    for sid in (2, 4, 5):
        points = ptau.sections[sid]
        lows += points[:-G1_SIZE]
        highs += points[G1_SIZE:]
    rho = secrets.token_bytes(16 * (len(lows) // G1_SIZE))
    try:
        low, high = msm("G1", lows, rho, 16), msm("G1", highs, rho, 16)
    except ValueError as exc:
        raise fail("sections 2, 4, 5 hold G1 points", str(exc)) from None
    if not pairing_product_is_one([(low, lem_to_struct("G2", last.tau_g2)),
                                   (g1_neg(high), lem_to_struct("G2", G2_ONE))]):
        raise fail("sections 2, 4 and 5 hold consecutive powers of τ", "they do not")
    g2_points = ptau.sections[3]
    rho = secrets.token_bytes(16 * (len(g2_points) // G2_SIZE - 1))
    try:
        low2 = msm("G2", g2_points[:-G2_SIZE], rho, 16)
        high2 = msm("G2", g2_points[G2_SIZE:], rho, 16)
    except ValueError as exc:
        raise fail("section 3 holds G2 points", str(exc)) from None
    if not pairing_product_is_one([(lem_to_struct("G1", last.tau_g1), low2),
                                   (g1_neg(lem_to_struct("G1", G1_ONE)), high2)]):
        raise fail("section 3 holds consecutive powers of τ", "it does not")


def verify(path: str | Path, what: str = "powers-of-tau file") -> Ptau:
    """``snarkjs powersoftau verify`` natively (phase-1 sections): raises SetupError naming the
    failed check, else returns the file."""
    ptau = Ptau.read(path, what)
    name = Path(path).name

    def fail(check: str, detail: str) -> SetupError:
        return SetupError(f"the {what} {name} failed the check '{check}': {detail}; it is "
                          "refused (nothing was changed)")

    if not ptau.contributions:
        raise fail("at least one contribution", "it has none, so τ is 1")
    initial = _Initial(ptau.power)
    for index, cur in enumerate(ptau.contributions, start=1):
        prev = ptau.contributions[index - 2] if index > 1 else initial
        _verify_contribution(cur, prev, index, fail)
    last = ptau.contributions[-1]
    prev_challenge = (ptau.contributions[-2].next_challenge if len(ptau.contributions) > 1
                      else initial.next_challenge)
    data = _response_data(prev_challenge, ptau.sections)
    response = hashlib.blake2b(data + last.key.uncompressed(), digest_size=64).digest()
    if not _same_partial_hash(blake2b_partial(data), last.partial_hash):
        raise fail("the last contribution's partial response hash",
                   "it is not the hash of the challenge and the file's points")
    if _next_challenge(response, ptau.sections) != last.next_challenge:
        raise fail("the last contribution's next challenge",
                   "it is not the hash of its response and the file's points")
    _check_powers(ptau, last, fail)
    return ptau


# --- prepare phase 2 ----------------------------------------------------------------------------


def _lagrange_levels(points: bytes, size: int, top: int, group_name: str, threads: int | None
                     ) -> bytes:
    """The Lagrange-basis points of levels 0..top: level p is the inverse FFT of the first 2^p
    points (a missing last point, at level power+1 of section 2, is infinity)."""
    out = []
    for p in range(top + 1):
        n = 1 << p
        chunk = points[: n * size]
        chunk += bytes(n * size - len(chunk))
        out.append(fft(group_name, chunk, pow(root_of_unity(p), -1, R), pow(n, -1, R), threads))
    return b"".join(out)


def prepare_phase2(ptau: Ptau, out: str | Path, threads: int | None = None) -> Path:
    """Write ``ptau`` with the sections ``snarkjs powersoftau prepare phase2`` adds (12–15:
    τ^i, τ^i on G2, ατ^i and βτ^i in the Lagrange basis of every domain up to 2^power, τG1 up
    to 2^(power+1)) — the same bytes."""
    p = ptau.power
    w = BinWriter(b"ptau")
    w.add(1, _ptau_header(p))
    for sid in range(2, 7):
        w.add(sid, ptau.sections[sid])
    w.add(7, _contributions_section(ptau.contributions))
    w.add(12, _lagrange_levels(ptau.sections[2], G1_SIZE, p + 1, "G1", threads))
    w.add(13, _lagrange_levels(ptau.sections[3], G2_SIZE, p, "G2", threads))
    w.add(14, _lagrange_levels(ptau.sections[4], G1_SIZE, p, "G1", threads))
    w.add(15, _lagrange_levels(ptau.sections[5], G1_SIZE, p, "G1", threads))
    _atomic_write(out, w.to_bytes())
    return Path(out)
