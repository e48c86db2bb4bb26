# SPDX-License-Identifier: GPL-3.0-or-later
"""Native Groth16 phase-2 contributions and their verification, byte-compatible with snarkjs
0.7.6 (``zkey contribute`` and ``zkey verify``; the spec is snarkjs/src/zkey_contribute.js,
zkey_verify_frominit.js, zkey_utils.js, keypair.js and mpc_applykey.js).

``contribute`` does what ``snarkjs zkey contribute`` does: draw x, publish a proof of knowledge
of it (g1_s, g1_sx = x·g1_s, and g2_spx = x·g2_sp with g2_sp hashed from the transcript),
multiply δ by x and the L and H points by x⁻¹. The points are scaled by mcl on every core.

``verify_chain`` checks a key against the verifier's *own* initial key of the same circuit
(``initial_key``: deterministic from the r1cs and the ptau), which replaces what makes
``snarkjs zkey verify`` slow (rebuilding that initial key from the ptau): everything but δ, L
and H must be byte-identical to it, every contribution's proof of knowledge must hold and chain
δ from the initial one to the final one, and L and H must be the initial ones scaled by
δ_initial/δ_final, which one pairing-product equation checks for random 128-bit combinations of
all the points at once.
"""

from __future__ import annotations

import hashlib
import secrets
import struct
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError, IntegrityError, SetupError
from .binfile import BinFile, BinWriter, read_binfile
from .keys import CircuitKey, Contribution
from .curve import (G1_GENERATOR, G2_GENERATOR, Q, R, g1_neg, g2_in_subgroup, int_to_lem,
                    lem_to_struct, lem_to_uncompressed, msm, pairing_product_is_one, point_mul,
                    same_ratio, scale_points)
from .devsetup import _atomic_write
from .snarkjs_rng import ChaCha, beacon_rng, fr_from_rng, g1_from_rng, hash_to_g2

G1_SIZE, G2_SIZE = 64, 128
HASH_SIZE = 64
ZKEY_SECTIONS = tuple(range(1, 11))
GROTH16 = 1
CONTRIBUTION, BEACON = 0, 1
# Beacons above this many SHA-256 iterations (2^n) are not re-derived natively: at about a
# microsecond each the check would take minutes (snarkjs takes as long).
MAX_BEACON_ITERATIONS_EXP = 24
_SNARKJS_NAME_UNITS = 64  # snarkjs stores name.substring(0, 64)

# Section 2 (the Groth16 header): n8q, q, n8r, r, nVars, nPublic, domainSize (bytes 0–83), then
# α1, β1, β2, γ2, δ1, δ2.
_DELTA1 = slice(468, 468 + G1_SIZE)
_DELTA2 = slice(532, 532 + G2_SIZE)
_HEADER_SIZE = 660

ADVICE = ("do not use this key: ask for it again or rerun the ceremony from your own initial "
          "key (`snarkjs zkey verify <r1cs> <ptau> <zkey>` gives an independent, slow opinion)")


def _g1_lem(point: tuple[int, int]) -> bytes:
    return int_to_lem(point[0]) + int_to_lem(point[1])


def _g2_lem(point) -> bytes:
    (x0, x1), (y0, y1) = point
    return b"".join(int_to_lem(c) for c in (x0, x1, y0, y1))


G1_ONE = _g1_lem(G1_GENERATOR)
G2_ONE = _g2_lem(G2_GENERATOR)


def _u1(point: bytes) -> bytes:
    return lem_to_uncompressed(point, 32)


def _u2(point: bytes) -> bytes:
    return lem_to_uncompressed(point, 64)


# --- section 10: the MPC parameters ---------------------------------------------------------------


@dataclass(frozen=True)
class DeltaContribution:
    """One contribution record of a zkey's section 10 (snarkjs' readContribution)."""

    delta_after: bytes  # G1, LEM
    g1_s: bytes         # G1
    g1_sx: bytes        # G1
    g2_spx: bytes       # G2
    transcript: bytes   # blake2b-512
    kind: int           # CONTRIBUTION or BEACON
    name: str = ""
    iterations_exp: int | None = None
    beacon_hash: bytes | None = None

    def public_key(self) -> bytes:
        """What snarkjs' hashPubKey feeds a hasher."""
        return (_u1(self.delta_after) + _u1(self.g1_s) + _u1(self.g1_sx) + _u2(self.g2_spx)
                + self.transcript)

    @property
    def hash(self) -> str:
        """The "contribution hash" snarkjs prints."""
        return hashlib.blake2b(self.public_key(), digest_size=64).hexdigest()

    def to_bytes(self) -> bytes:
        params = bytearray()
        if self.name:  # snarkjs writes every name cut to 64 UTF-16 units
            encoded = snarkjs_name(self.name).encode()
            params += bytes([1, len(encoded)]) + encoded
        if self.kind == BEACON:
            params += bytes([2, self.iterations_exp or 0])
            params += bytes([3, len(self.beacon_hash or b"")]) + (self.beacon_hash or b"")
        return (self.delta_after + self.g1_s + self.g1_sx + self.g2_spx + self.transcript
                + struct.pack("<II", self.kind, len(params)) + bytes(params))


@dataclass(frozen=True)
class MpcParams:
    cs_hash: bytes
    contributions: tuple[DeltaContribution, ...]

    def to_bytes(self) -> bytes:
        return (self.cs_hash + struct.pack("<I", len(self.contributions))
                + b"".join(c.to_bytes() for c in self.contributions))


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError("section 10 ends in the middle of a record")
        out = self.data[self.pos: self.pos + n]
        self.pos += n
        return out

    def u32(self) -> int:
        return struct.unpack("<I", self.take(4))[0]


def _read_contribution(r: _Reader) -> DeltaContribution:
    points = [r.take(G1_SIZE) for _ in range(3)]
    g2_spx, transcript = r.take(G2_SIZE), r.take(HASH_SIZE)
    kind = r.u32()
    return DeltaContribution(*points, g2_spx, transcript, kind,
                             **contribution_params(r.take(r.u32())))


def contribution_params(raw: bytes) -> dict:
    """The parameters of a contribution record (zkey and ptau alike): name, iterations_exp,
    beacon_hash, those present. Raises ValueError when they are malformed."""
    params = _Reader(raw)
    fields: dict = {}
    last = 0
    while params.pos < len(params.data):
        tag = params.take(1)[0]
        if tag <= last:  # as snarkjs: parameters must be sorted, each at most once
            raise ValueError("contribution parameters are not sorted")
        last = tag
        if tag == 1:
            fields["name"] = params.take(params.take(1)[0]).decode("utf-8", errors="replace")
        elif tag == 2:
            fields["iterations_exp"] = params.take(1)[0]
        elif tag == 3:
            fields["beacon_hash"] = params.take(params.take(1)[0])
        else:
            raise ValueError(f"unknown contribution parameter {tag}")
    return fields


def parse_mpc_params(data: bytes) -> MpcParams:
    """Section 10; raises ValueError when it is malformed."""
    r = _Reader(bytes(data))
    cs_hash = r.take(HASH_SIZE)
    contributions = tuple(_read_contribution(r) for _ in range(r.u32()))
    if r.pos != len(r.data):
        raise ValueError(f"{len(r.data) - r.pos} bytes follow the last contribution")
    return MpcParams(cs_hash, contributions)


def _transcript(params: MpcParams, g1_s: bytes, g1_sx: bytes) -> bytes:
    """blake2b(csHash ‖ hashPubKey of every earlier contribution ‖ U(g1_s) ‖ U(g1_sx))."""
    h = hashlib.blake2b(params.cs_hash, digest_size=64)
    for c in params.contributions:
        h.update(c.public_key())
    h.update(_u1(g1_s) + _u1(g1_sx))
    return h.digest()


def snarkjs_name(name: str) -> str:
    """The name as snarkjs stores it: its first 64 UTF-16 code units (a surrogate pair cut in
    half becomes U+FFFD, as TextEncoder writes it)."""
    units = name.encode("utf-16-le", errors="surrogatepass")[: 2 * _SNARKJS_NAME_UNITS]
    kept = units.decode("utf-16-le", errors="surrogatepass")
    if kept and 0xD800 <= ord(kept[-1]) <= 0xDBFF:
        kept = kept[:-1] + "\ufffd"
    return kept


def transcript_entries(params: MpcParams) -> list[Contribution]:
    return [Contribution(i + 1, c.name, "beacon" if c.kind == BEACON else "contribution", c.hash)
            for i, c in enumerate(params.contributions)]


# --- the key file -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Zkey:
    path: Path
    sections: dict[int, bytes]

    @property
    def header(self) -> bytes:
        return self.sections[2]

    @property
    def delta1(self) -> bytes:
        return self.header[_DELTA1]

    @property
    def delta2(self) -> bytes:
        return self.header[_DELTA2]

    def counts(self) -> tuple[int, int, int]:
        """nVars, nPublic, domainSize."""
        return struct.unpack_from("<III", self.header, 72)


def _fail(circuit: str, path: Path, check: str, detail: str) -> SetupError:
    return SetupError(f"circuit {circuit}: phase-2 key {path.name} failed the check "
                      f"'{check}': {detail}; {ADVICE}")


def _read_zkey(path: Path, circuit: str) -> _Zkey:
    try:
        bf: BinFile = read_binfile(path, b"zkey")
    except IntegrityError as exc:
        raise IntegrityError(f"circuit {circuit}: {exc}; {ADVICE}") from exc
    except OSError as exc:
        raise SetupError(f"circuit {circuit}: cannot read the key {path}: {exc}") from exc
    if sorted(bf.sections) != list(ZKEY_SECTIONS) or any(len(v) != 1 for v in bf.sections.values()):
        raise IntegrityError(f"circuit {circuit}: {path.name} holds sections {sorted(bf.sections)}"
                             f" (each of 1–10 exactly once expected): not a Groth16 zkey of the "
                             f"ceremony; {ADVICE}")
    sections = {sid: bytes(bf.section(sid)) for sid in ZKEY_SECTIONS}
    zkey = _Zkey(path, sections)
    if sections[1] != struct.pack("<I", GROTH16):
        raise IntegrityError(f"circuit {circuit}: {path.name} is not a Groth16 zkey; {ADVICE}")
    expected = (struct.pack("<I", 32) + Q.to_bytes(32, "little") + struct.pack("<I", 32)
                + R.to_bytes(32, "little"))
    if len(zkey.header) != _HEADER_SIZE or zkey.header[:72] != expected:
        raise IntegrityError(f"circuit {circuit}: {path.name} has a Groth16 header for another "
                             f"curve or of the wrong size; {ADVICE}")
    return zkey


# --- contribute ---------------------------------------------------------------------------------


def _check_name(name: str) -> None:
    if not name or len(name.encode()) > 255 or "\n" in name:
        raise InputError("a contribution name must be 1–255 bytes, on one line")


def contribute(key: CircuitKey, name: str, out: str | Path) -> tuple[CircuitKey, str]:
    """``snarkjs zkey contribute`` natively: write ``key`` plus one contribution (fresh OS
    randomness) to ``out``. Returns the new key, whose transcript is read from the file (so a
    name longer than snarkjs' 64 characters appears truncated, as stored), and the contribution
    hash snarkjs would print for it. Like snarkjs, it does not check the contributions already
    in ``key``: run ``verify_chain`` on a key you received before adding to it."""
    _check_name(name)
    circuit = key.circuit.name
    out = Path(out)
    old = _read_zkey(key.zkey, circuit)
    try:
        params = parse_mpc_params(old.sections[10])
    except ValueError as exc:
        raise IntegrityError(f"circuit {circuit}: {key.zkey.name}: section 10 is malformed "
                             f"({exc}); {ADVICE}") from exc

    x = secrets.randbelow(R - 1) + 1  # the toxic waste: only in this frame
    g1_s = _g1_lem(g1_from_rng(ChaCha.from_hash(secrets.token_bytes(32))))
    g1_sx = point_mul("G1", g1_s, x)
    transcript = _transcript(params, g1_s, g1_sx)
    g2_spx = point_mul("G2", _g2_lem(hash_to_g2(transcript)), x)
    try:
        delta1 = point_mul("G1", old.delta1, x)
        delta2 = point_mul("G2", old.delta2, x)
    except ValueError as exc:
        raise IntegrityError(f"circuit {circuit}: {key.zkey.name}: δ is not a curve point; "
                             f"{ADVICE}") from exc
    mine = DeltaContribution(delta1, g1_s, g1_sx, g2_spx, transcript, CONTRIBUTION,
                             snarkjs_name(name))
    new_params = MpcParams(params.cs_hash, (*params.contributions, mine))

    x_inv = pow(x, -1, R)
    del x
    sections = dict(old.sections)
    sections[2] = old.header[:_DELTA1.start] + delta1 + delta2
    sections[8] = scale_points("G1", old.sections[8], x_inv)
    sections[9] = scale_points("G1", old.sections[9], x_inv)
    sections[10] = new_params.to_bytes()
    del x_inv
    writer = BinWriter(b"zkey")
    for sid in ZKEY_SECTIONS:  # the order snarkjs writes
        writer.add(sid, sections[sid])
    _atomic_write(out, writer.to_bytes())
    new_key = CircuitKey(out, key.circuit, key.ptau_blake2b, key.insecure,
                         transcript_entries(new_params))
    return new_key, mine.hash


# --- verify -------------------------------------------------------------------------------------


def _check_same_sections(key: _Zkey, initial: _Zkey, fail) -> None:
    names = {1: "header", 3: "IC", 4: "coefficients", 5: "A", 6: "B1", 7: "B2"}
    for sid, what in names.items():
        if key.sections[sid] != initial.sections[sid]:
            raise fail(f"section {sid} ({what}) identical to the initial key's",
                       "it differs, so the key is not for this circuit and ptau")
    if key.header[:_DELTA1.start] != initial.header[:_DELTA1.start]:
        raise fail("section 2 (Groth16 header) identical to the initial key's except δ",
                   "α, β, γ or the circuit sizes differ: the key is for another circuit or ptau")


def _check_sizes(key: _Zkey, fail) -> None:
    n_vars, n_public, domain = key.counts()
    expected = {8: ("L", n_vars - n_public - 1), 9: ("H", domain)}
    for sid, (what, count) in expected.items():
        if len(key.sections[sid]) != G1_SIZE * count:
            raise fail(f"size of section {sid} ({what})", f"{len(key.sections[sid])} bytes, "
                       f"{count} points = {G1_SIZE * count} bytes expected")


def _check_g2(point: bytes, what: str, fail) -> None:
    try:
        ok = g2_in_subgroup(point)
    except ValueError:
        ok = False
    if not ok:
        raise fail(f"{what} is a G2 point of order r", "it is not")


def _check_g1(point: bytes, what: str, fail) -> None:
    try:
        lem_to_struct("G1", point)
    except ValueError:
        raise fail(f"{what} is a G1 point", "it is not on the curve") from None


def _check_beacon(c: DeltaContribution, index: int, fail, max_exp: int) -> None:
    exp = c.iterations_exp
    if exp is None or c.beacon_hash is None:
        raise fail(f"beacon #{index}", "it has no beacon hash or iteration count")
    if exp > max_exp:
        raise SetupError(f"beacon #{index} ({c.name or 'unnamed'}) iterates SHA-256 2^{exp} "
                         f"times, more than the 2^{max_exp} checked natively: check the key with "
                         "`snarkjs zkey verify <r1cs> <ptau> <zkey>` instead")
    rng = beacon_rng(c.beacon_hash, exp)
    prv = fr_from_rng(rng)
    g1_s = _g1_lem(g1_from_rng(rng))
    if c.g1_s != g1_s or c.g1_sx != point_mul("G1", g1_s, prv):
        raise fail(f"beacon #{index}: key derived from the beacon",
                   "g1_s / g1_sx do not follow from the beacon hash")


def _check_contributions(params: MpcParams, initial_delta1: bytes, fail,
                         max_beacon_exp: int) -> bytes:
    """Each contribution's transcript, proof of knowledge and δ step; returns the last δ1."""
    delta = initial_delta1
    hasher = hashlib.blake2b(params.cs_hash, digest_size=64)
    for i, c in enumerate(params.contributions, start=1):
        label = f"contribution #{i} ({c.name or 'unnamed'})"
        if c.kind not in (CONTRIBUTION, BEACON):
            raise fail(f"{label}: type", f"unknown type {c.kind}")
        for point, what in ((c.delta_after, "deltaAfter"), (c.g1_s, "g1_s"), (c.g1_sx, "g1_sx")):
            _check_g1(point, f"{label}: {what}", fail)
        _check_g2(c.g2_spx, f"{label}: g2_spx", fail)
        mine = hasher.copy()
        mine.update(_u1(c.g1_s) + _u1(c.g1_sx))
        if mine.digest() != c.transcript:
            raise fail(f"{label}: transcript", "it is not the hash of the circuit, the earlier "
                       "contributions and this one's g1_s, g1_sx")
        g2_sp = _g2_lem(hash_to_g2(c.transcript))
        if not same_ratio(c.g1_s, c.g1_sx, g2_sp, c.g2_spx):
            raise fail(f"{label}: proof of knowledge", "g1_sx/g1_s and g2_spx/g2_sp differ")
        if not same_ratio(delta, c.delta_after, g2_sp, c.g2_spx):
            raise fail(f"{label}: δ step", "deltaAfter is not the previous δ times the "
                       "contribution's secret")
        if c.kind == BEACON:
            _check_beacon(c, i, fail, max_beacon_exp)
        hasher.update(c.public_key())
        delta = c.delta_after
    return delta


def _check_scaled_points(key: _Zkey, initial: _Zkey, fail) -> None:
    """L and H (sections 8, 9) are the initial points times δ_init/δ_final:
    e(Σρ_i P_i, δ2) = e(Σρ_i P_i^init, δ2_init) for random 128-bit ρ_i."""
    points = key.sections[8] + key.sections[9]
    initial_points = initial.sections[8] + initial.sections[9]
    rho = secrets.token_bytes(16 * (len(points) // G1_SIZE))
    try:
        combined = msm("G1", points, rho, 16)
    except ValueError as exc:
        raise fail("sections 8 and 9 (L, H) hold G1 points", str(exc)) from None
    combined_initial = msm("G1", initial_points, rho, 16)
    if not pairing_product_is_one([(combined, lem_to_struct("G2", key.delta2)),
                                   (g1_neg(combined_initial), lem_to_struct("G2", initial.delta2))]):
        raise fail("sections 8 and 9 (L, H) are the initial ones scaled by δ_initial/δ",
                   "they are not")


def verify_chain(key: CircuitKey, initial: CircuitKey, *,
                 max_beacon_iterations_exp: int = MAX_BEACON_ITERATIONS_EXP) -> list[Contribution]:
    """Check that ``key`` follows from ``initial`` (the caller's own initial key of the same
    circuit) by valid phase-2 contributions, as ``snarkjs zkey verify`` does, without the ptau.

    Returns the contributions (index, name, kind, hash as snarkjs prints it) so a party can find
    its own. Raises SetupError (IntegrityError for an unreadable file) naming the check that
    failed."""
    circuit = key.circuit.name
    zkey = _read_zkey(key.zkey, circuit)
    init = _read_zkey(initial.zkey, circuit)

    def fail(check: str, detail: str) -> SetupError:
        return _fail(circuit, key.zkey, check, detail)

    try:
        params = parse_mpc_params(zkey.sections[10])
    except ValueError as exc:
        raise fail("section 10 (contributions) well-formed", str(exc)) from None
    try:
        init_params = parse_mpc_params(init.sections[10])
    except ValueError as exc:
        raise IntegrityError(f"circuit {circuit}: the initial key {initial.zkey} is malformed "
                             f"({exc}): delete its cache folder and rebuild it") from exc
    if init_params.contributions:
        raise SetupError(f"circuit {circuit}: {initial.zkey.name} already has contributions, so "
                         "it is not an initial key: pass the key from zk.initial_key()")
    if params.cs_hash != init_params.cs_hash:
        raise fail("circuit hash", "it differs from the initial key's: the key is for another "
                   "circuit or ptau")
    _check_same_sections(zkey, init, fail)
    _check_sizes(zkey, fail)
    if len(zkey.sections[8]) != len(init.sections[8]) or len(zkey.sections[9]) != len(init.sections[9]):
        raise fail("sizes of sections 8 and 9 equal to the initial key's", "they differ")

    _check_g1(zkey.delta1, "δ1", fail)
    _check_g2(zkey.delta2, "δ2", fail)
    last_delta = _check_contributions(params, init.delta1, fail, max_beacon_iterations_exp)
    if zkey.delta1 != last_delta:
        raise fail("δ1 equals the last contribution's deltaAfter", "it does not")
    if not same_ratio(G1_ONE, zkey.delta1, G2_ONE, zkey.delta2):
        raise fail("e(δ1, G2) = e(G1, δ2)", "δ1 and δ2 have different discrete logarithms")
    _check_scaled_points(zkey, init, fail)
    return transcript_entries(params)
