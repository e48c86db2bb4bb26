"""Where a session's keys come from, as a transcript records it, and the offline audit's check
that the verification keys follow from that record (so a proof checked against them means
something).

A transcript records, per circuit, the ptau the initial key was made from (its sha256, power,
origin) and the circuit hash, and every phase-2 contribution: its points (δ after it, the proof
of knowledge g1_s, g1_sx, g2_spx, the transcript hash) and its contributor's signature of the
contribution hash. ``check_keys`` establishes each verification key:

1. γ is the generator and δ ≠ γ (what ``snarkjs zkey new`` writes, and what a key anyone can
   forge for would break);
2. exactly the server's then the client's contribution, each signed by that party's pinned
   identity for this session and circuit, each hash following from its points; a key reused
   from an earlier session of the same two identities (``key_origin[kind].reused_from_session``,
   issue 19) has both contributions signed for that origin session — by the identities pinned
   in THIS transcript, so a key is reused only between the same pair;
3. the δ chain: each contribution's proof of knowledge and δ step hold, from the initial δ (the
   generator) to the last one (``phase2``'s own checks), and the key's δ2 has the last δ1's
   discrete logarithm;
4. with the ptau (``audit --ptau``): the circuit compiled from the transcript's spec, its initial
   key made from the r1cs and that ptau — α, β, γ, the IC points and the circuit hash must be
   the initial key's. Without it only 1–3 hold: the keys are consistent and both parties
   contributed, but whoever made the ptau may know a trapdoor.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import zk
from .circuitgen import KINDS, SplitCircuits
from .errors import InputError, IntegrityError, SetupError, SplitverifyError
from .identity import contribution_payload, signed_by
from .model import Layer, SplitSpec, layer_from_description
from .powersoftau import sha256_file
from .quant import QuantSpec
from .zk import phase2
from .zk.ceremony import KNOWN_PTAU_BLAKE2B, PtauFile
from .zk.curve import G2_GENERATOR, g1_lem_to_affine, g2_lem_to_affine, same_ratio

CONTRIBUTORS = ("server", "client")        # the order of the session's ceremony
_POINTS = ("delta_after", "g1_s", "g1_sx", "g2_spx", "transcript")


class KeyRefused(IntegrityError):
    """A transcript's verification key does not follow from its recorded ceremony."""

    def __init__(self, kind: str, what: str):
        super().__init__(f"the {kind} key is refused: {what}")
        self.kind, self.what = kind, what


# --- what the parties record ---------------------------------------------------------------------


def ptau_record(circuits: SplitCircuits, kind: str) -> dict[str, Any]:
    """{"sha256", "power", "origin", "name"} of the ptau ``kind``'s initial key came from."""
    ptau = circuits.ptau
    if ptau is not None:
        return {"sha256": sha256_file(ptau.path), "power": ptau.power,
                "origin": "development" if ptau.insecure else "published",
                "name": ptau.path.name}
    start = zk.initial_key(circuits.circuit(kind), None, circuits.cache)
    folder = start.zkey.parent      # the development ptau is made (and cached) with the key
    power = json.loads((folder / "dev.ptau.json").read_text())["power"]
    return {"sha256": sha256_file(folder / "dev.ptau"), "power": power,
            "origin": "development", "name": None}


def _mpc_params(key: zk.CircuitKey) -> phase2.MpcParams:
    """The key's contributions (section 10), read once per key file: a transcript's key origin
    and its ceremony record both need them, and reading a RefNet key takes ~0.1 s."""
    stat = Path(key.zkey).stat()
    return _mpc_params_of(str(key.zkey), key.circuit.name, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=16)
def _mpc_params_of(zkey: str, circuit: str, _mtime_ns: int, _size: int) -> phase2.MpcParams:
    params = phase2._read_zkey(Path(zkey), circuit)
    try:
        return phase2.parse_mpc_params(params.sections[10])
    except ValueError as exc:
        raise IntegrityError(f"{zkey}: section 10 is malformed ({exc}); {phase2.ADVICE}"
                             ) from exc


def key_origin(circuits: SplitCircuits, kind: str) -> dict[str, Any]:
    return {"ptau": ptau_record(circuits, kind),
            "circuit_hash": _mpc_params(circuits.key(kind)).cs_hash.hex()}


def ceremony_record(key: zk.CircuitKey, signatures: dict[str, str]) -> list[dict[str, Any]]:
    """Each contribution of ``key``: index, name, kind and hash, its points, and the signature
    its contributor made of it (``signatures``: name → signature)."""
    params = _mpc_params(key)
    out = []
    for c, entry in zip(params.contributions, phase2.transcript_entries(params)):
        record = {**asdict(entry), **{p: getattr(c, p).hex() for p in _POINTS},
                  "signature": signatures.get(c.name)}
        if c.kind == phase2.BEACON:
            record.update(iterations_exp=c.iterations_exp,
                          beacon_hash=(c.beacon_hash or b"").hex())
        out.append(record)
    return out


def sign_contribution(identity, session_id: int, kind: str, index: int, name: str,
                      contribution_hash: str) -> str:
    return identity.sign(contribution_payload(session_id, kind, index, name, contribution_hash))


def contribution_signed(address: str | None, session_id: int, kind: str, index: int,
                        name: str, contribution_hash: str, signature: str | None) -> bool:
    return signed_by(address, contribution_payload(session_id, kind, index, name,
                                                   contribution_hash), signature)


# --- the audit -----------------------------------------------------------------------------------


_SPEC = re.compile(r"client \[(?P<client>[^\]]*)\] \| server \[(?P<server>[^\]]*)\], "
                   r"batch (?P<batch>\d+), frac (?P<frac>\d+), value (?P<value>\d+), "
                   r"input (?P<input>\d+), step (?P<step>\d+), lr (?P<num>\d+)/2\^(?P<shift>\d+)")


def spec_from_description(text: str) -> SplitSpec:
    """The model a transcript's ``spec`` (``generator.describe``) describes."""
    from .circuitgen.generator import describe

    m = _SPEC.fullmatch(text)
    if m is None:
        raise InputError(f"the transcript's spec {text!r} is not a model description this "
                         "version can compile")

    def half(layers: str) -> tuple[Layer, ...]:
        return tuple(layer_from_description(text) for text in layers.split())
    spec = SplitSpec(half(m["client"]), half(m["server"]), int(m["batch"]),
                     QuantSpec(frac_bits=int(m["frac"]), value_bits=int(m["value"]),
                               input_bits=int(m["input"]), step_bits=int(m["step"]),
                               lr_num=int(m["num"]), lr_shift=int(m["shift"])))
    if describe(spec) != text:
        raise InputError(f"the transcript's spec {text!r} does not describe one model")
    return spec


def _contribution_of(kind: str, record: dict[str, Any]) -> phase2.DeltaContribution:
    try:
        points = {p: bytes.fromhex(record[p]) for p in _POINTS}
        beacon = record.get("kind") == "beacon"
        return phase2.DeltaContribution(
            **points, kind=phase2.BEACON if beacon else phase2.CONTRIBUTION,
            name=record.get("name", ""),
            iterations_exp=record.get("iterations_exp") if beacon else None,
            beacon_hash=bytes.fromhex(record["beacon_hash"]) if beacon else None)
    except (KeyError, TypeError, ValueError) as exc:
        raise KeyRefused(kind, f"contribution #{record.get('index')} is not a complete record "
                               f"of a phase-2 contribution ({exc!r} missing or malformed)") from exc


def recorded_contribution(kind: str, index: int, record: dict[str, Any], name: str
                          ) -> phase2.DeltaContribution:
    """Contribution #``index`` (from 1) of a ceremony record, its recorded index and hash
    checked against its place and its points."""
    c = _contribution_of(kind, record)
    if record.get("index") != index or c.hash != record.get("hash"):
        raise KeyRefused(kind, f"contribution #{index} ({name}): its recorded hash is not the "
                               "hash of its points")
    return c


@dataclass
class KeysVerdict:
    rederived: list[str]          # circuits whose initial key was re-derived from the ptau given
    ptaus: dict[str, dict]        # per circuit, its recorded ptau
    identities: dict[str, str | None]
    reused: dict[str, int] = field(default_factory=dict)   # circuit → its key's origin session

    @property
    def insecure(self) -> bool:
        return any(p.get("origin") == "development" for p in self.ptaus.values())

    def describe(self) -> str:
        origins = sorted({p.get("origin") or "unknown" for p in self.ptaus.values()})
        names = sorted({p.get("name") or p.get("sha256", "")[:16] for p in self.ptaus.values()})
        ceremony = (f"the two-party ceremony of server {self.identities.get('server')} and "
                    f"client {self.identities.get('client')}")
        ptau = ("the INSECURE development ptau" if self.insecure else
                f"the {'/'.join(origins)} ptau {', '.join(names)}")
        reused = "".join(
            f" ({', '.join(k for k, s in self.reused.items() if s == origin)} key reused from "
            f"session {origin}, signed then by the same two identities)"
            for origin in sorted(set(self.reused.values())))
        if len(self.rederived) == len(self.ptaus):
            return f"keys from {ceremony}{reused} on {ptau} (initial keys re-derived from it)"
        return (f"keys from {ceremony}{reused} on {ptau}; the ptau was not given (--ptau), so "
                "the initial keys were not re-derived: the keys' trapdoor may be known, and the "
                "transcript proves consistency only")


def check_keys(transcript, ptau_files: list[Path] | tuple[Path, ...] = ()) -> KeysVerdict:
    """Establish every verification key of ``transcript`` from its recorded ceremony (and, for
    each circuit whose ptau is among ``ptau_files``, from its re-derived initial key). Raises
    KeyRefused naming the key and what failed; InputError for a ptau that matches no circuit."""
    identities = transcript.identities or {}
    given = {sha256_file(p): Path(p) for p in ptau_files}
    used: set[str] = set()
    ptaus, rederived, reused = {}, [], {}
    spec = None
    for kind in KINDS:
        vk_json = transcript.verification_keys.get(kind)
        if vk_json is None:
            raise KeyRefused(kind, "the transcript holds no verification key for it")
        try:
            vk = zk.VerificationKey.from_snarkjs(vk_json)
        except SplitverifyError as exc:
            raise KeyRefused(kind, f"the verification key is malformed: {exc}") from exc
        if vk.vk_gamma_2 != G2_GENERATOR:
            raise KeyRefused(kind, "γ is not the generator: the key was not made by zkey new")
        if vk.vk_delta_2 == vk.vk_gamma_2:
            raise KeyRefused(kind, "δ = γ: anyone can forge proofs for this key")
        origin = transcript.key_origin.get(kind)
        if not origin or "ptau" not in origin or "circuit_hash" not in origin:
            raise KeyRefused(kind, "the transcript does not record its ptau and circuit hash")
        if transcript.ptau is not None and transcript.ptau != origin["ptau"]:
            raise KeyRefused(kind, "its ptau is not the one the transcript records for all keys")
        ptaus[kind] = origin["ptau"]
        signed_for = _signed_for(transcript, kind, origin)
        if signed_for != transcript.session_id:
            reused[kind] = signed_for
        last_delta1 = _check_ceremony(transcript, kind, origin, identities, signed_for)
        _check_metadata(kind, vk_json, transcript.ceremony.get(kind, []))
        check_delta(kind, vk, last_delta1)
        ptau_path = given.get(origin["ptau"].get("sha256"))
        if ptau_path is not None:
            spec = spec or spec_from_description(transcript.spec)
            _check_initial(kind, vk, origin, ptau_path, spec)
            used.add(origin["ptau"]["sha256"])
            rederived.append(kind)
    unused = [str(p) for h, p in given.items() if h not in used]
    if unused:
        raise InputError(f"{', '.join(unused)}: no key of this transcript was made from it (its "
                         f"sha256 is none of {sorted({p.get('sha256') for p in ptaus.values()})}); "
                         "give the ptau the session used")
    return KeysVerdict(rederived, ptaus, identities, reused)


def _signed_for(transcript, kind: str, origin: dict) -> int:
    """The session the key's contributions were signed for: this one, or the origin session
    of a reused key (the signatures must still be those of THIS transcript's pinned
    identities: :func:`_check_ceremony`)."""
    if "reused_from_session" not in origin:
        return transcript.session_id
    session = origin["reused_from_session"]
    if type(session) is not int or session < 0:
        raise KeyRefused(kind, f"its reused_from_session {session!r} is not a session id")
    return session


def _check_ceremony(transcript, kind: str, origin: dict, identities: dict, signed_for: int
                    ) -> bytes:
    """The contributions: the server's then the client's, each signed for ``signed_for`` by
    the party pinned in this transcript, hashes from their points, the δ chain from the
    generator. Returns the last δ1."""
    records = transcript.ceremony.get(kind, [])
    names = [r.get("name") for r in records]
    if names != list(CONTRIBUTORS):
        raise KeyRefused(kind, f"its contributions are {names}, expected exactly "
                               f"{list(CONTRIBUTORS)} (a party's contribution is missing)")
    contributions = []
    for index, (record, party) in enumerate(zip(records, CONTRIBUTORS), start=1):
        c = recorded_contribution(kind, index, record, party)
        if not contribution_signed(identities.get(party), signed_for, kind, index,
                                   party, c.hash, record.get("signature")):
            where = ("" if signed_for == transcript.session_id
                     else f" for session {signed_for}, the key's origin")
            raise KeyRefused(kind, f"contribution #{index} ({party}) is not signed{where} by the "
                                   f"{party}'s pinned identity {identities.get(party)}")
        contributions.append(c)
    return check_delta_chain(kind, origin["circuit_hash"], contributions)


def check_delta_chain(kind: str, circuit_hash: str,
                      contributions: list[phase2.DeltaContribution]) -> bytes:
    """Each contribution's proof of knowledge and δ step, from the generator on (``phase2``'s
    own checks). Returns the last δ1."""
    try:
        params = phase2.MpcParams(bytes.fromhex(circuit_hash), tuple(contributions))
    except (TypeError, ValueError) as exc:
        raise KeyRefused(kind, f"its circuit hash is not hex: {exc}") from exc

    def fail(check: str, detail: str) -> KeyRefused:
        return KeyRefused(kind, f"the ceremony failed the check '{check}': {detail}")
    try:
        return phase2._check_contributions(params, phase2.G1_ONE, fail,
                                           phase2.MAX_BEACON_ITERATIONS_EXP)
    except SetupError as exc:
        if isinstance(exc, KeyRefused):
            raise
        raise KeyRefused(kind, str(exc)) from exc


def check_delta(kind: str, vk, last_delta1: bytes) -> None:
    try:
        ok = same_ratio(phase2.G1_ONE, last_delta1, phase2.G2_ONE,
                        phase2._g2_lem(vk.vk_delta_2))
    except ValueError:
        ok = False
    if not ok:
        raise KeyRefused(kind, "its δ is not the one the recorded contributions reached (the "
                               "key does not follow from its ceremony)")


def _check_metadata(kind: str, vk_json: dict, records: list[dict]) -> None:
    """The key's own provenance (``splitverify`` field), where present, names the same
    contributions as the ceremony record."""
    meta = vk_json.get("splitverify") or {}
    listed = meta.get("contributions")
    if listed is None:
        return
    if [c.get("hash") for c in listed] != [r.get("hash") for r in records]:
        raise KeyRefused(kind, "the key's own metadata names other contributions than the "
                               "ceremony record (a key from another ceremony?)")


def _check_initial(kind: str, vk, origin: dict, ptau_path: Path, spec: SplitSpec) -> None:
    """α, β, γ, the IC points and the circuit hash equal those of the initial key made here
    from the circuit (compiled from the spec) and the ptau."""
    ptau = PtauFile.open(ptau_path, insecure=origin["ptau"].get("origin") == "development")
    if ptau.path.name in KNOWN_PTAU_BLAKE2B and origin["ptau"].get("origin") != "published":
        raise KeyRefused(kind, "its ptau is a published file but is recorded as "
                               f"{origin['ptau'].get('origin')}")
    circuits = SplitCircuits(spec, ptau=ptau)
    initial = zk.initial_key(circuits.circuit(kind), ptau, circuits.cache)
    zkey = phase2._read_zkey(initial.zkey, kind)
    header = zkey.header
    alpha1 = g1_lem_to_affine(header[84:148])
    beta2 = g2_lem_to_affine(header[212:340])
    gamma2 = g2_lem_to_affine(header[340:468])
    ic = [g1_lem_to_affine(zkey.sections[3][i:i + 64])
          for i in range(0, len(zkey.sections[3]), 64)]
    for what, got, want in (("α", vk.vk_alpha_1, alpha1), ("β", vk.vk_beta_2, beta2),
                            ("γ", vk.vk_gamma_2, gamma2), ("the IC points", list(vk.IC), ic)):
        if got != want:
            raise KeyRefused(kind, f"{what} differ from the initial key made from the circuit "
                                   f"and the ptau {ptau_path.name}: the key is for another "
                                   "circuit or ptau")
    cs_hash = phase2.parse_mpc_params(zkey.sections[10]).cs_hash.hex()
    if cs_hash != origin["circuit_hash"]:
        raise KeyRefused(kind, "its circuit hash is not the initial key's")
