"""Trusted setup: powers of tau (a ceremony file you bring, or a development one), the initial
circuit key, and the phase-2 ceremony (contributions, beacon, verification, transcript)."""

from __future__ import annotations

import json
import re
import secrets
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

from ..errors import IntegrityError, InputError, SetupError
from .binfile import read_binfile
from .cache import ArtifactCache, digest
from .compile import CompiledCircuit
from .devsetup import dev_setup
from .keys import INSECURE_NOTE, CircuitKey, Contribution, blake2b_file
from .phase2 import contribute
from .r1cs import read_r1cs
from .toolchain import find_toolchain, tail

# blake2b-512 of the Hermez/Perpetual Powers of Tau files, as published in snarkjs' README.
KNOWN_PTAU_BLAKE2B = {
    "powersOfTau28_hez_final_08.ptau": "d6a8fb3a04feb600096c3b791f936a578c4e664d262e4aa24beed1b7a9a96aa5eb72864d628db247e9293384b74b36ffb52ca8d148d6e1b8b51e279fdf57b583",
    "powersOfTau28_hez_final_09.ptau": "94f108a80e81b5d932d8e8c9e8fd7f46cf32457e31462deeeef37af1b71c2c1b3c71fb0d9b59c654ec266b042735f50311f9fd1d4cadce47ab234ad163157cb5",
    "powersOfTau28_hez_final_10.ptau": "6cfeb8cda92453099d20120bdd0e8a5c4e7706c2da9a8f09ccc157ed2464d921fd0437fb70db42104769efd7d6f3c1f964bcf448c455eab6f6c7d863e88a5849",
    "powersOfTau28_hez_final_11.ptau": "47c282116b892e5ac92ca238578006e31a47e7c7e70f0baa8b687f0a5203e28ea07bbbec765a98dcd654bad618475d4661bfaec3bd9ad2ed12e7abc251d94d33",
    "powersOfTau28_hez_final_12.ptau": "ded2694169b7b08e898f736d5de95af87c3f1a64594013351b1a796dbee393bd825f88f9468c84505ddd11eb0b1465ac9b43b9064aa8ec97f2b73e04758b8a4a",
    "powersOfTau28_hez_final_13.ptau": "58efc8bf2834d04768a3d7ffcd8e1e23d461561729beaac4e3e7a47829a1c9066d5320241e124a1a8e8aa6c75be0ba66f65bc8239a0542ed38e11276f6fdb4d9",
    "powersOfTau28_hez_final_14.ptau": "eeefbcf7c3803b523c94112023c7ff89558f9b8e0cf5d6cdcba3ade60f168af4a181c9c21774b94fbae6c90411995f7d854d02ebd93fb66043dbb06f17a831c1",
    "powersOfTau28_hez_final_15.ptau": "982372c867d229c236091f767e703253249a9b432c1710b4f326306bfa2428a17b06240359606cfe4d580b10a5a1f63fbed499527069c18ae17060472969ae6e",
    "powersOfTau28_hez_final_16.ptau": "6a6277a2f74e1073601b4f9fed6e1e55226917efb0f0db8a07d98ab01df1ccf43eb0e8c3159432acd4960e2f29fe84a4198501fa54c8dad9e43297453efec125",
    "powersOfTau28_hez_final_17.ptau": "6247a3433948b35fbfae414fa5a9355bfb45f56efa7ab4929e669264a0258976741dfbe3288bfb49828e5df02c2e633df38d2245e30162ae7e3bcca5b8b49345",
    "powersOfTau28_hez_final_18.ptau": "7e6a9c2e5f05179ddfc923f38f917c9e6831d16922a902b0b4758b8e79c2ab8a81bb5f29952e16ee6c5067ed044d7857b5de120a90704c1d3b637fd94b95b13e",
    "powersOfTau28_hez_final_19.ptau": "bca9d8b04242f175189872c42ceaa21e2951e0f0f272a0cc54fc37193ff6648600eaf1c555c70cdedfaf9fb74927de7aa1d33dc1e2a7f1a50619484989da0887",
    "powersOfTau28_hez_final_20.ptau": "89a66eb5590a1c94e3f1ee0e72acf49b1669e050bb5f93c73b066b564dca4e0c7556a52b323178269d64af325d8fdddb33da3a27c34409b821de82aa2bf1a27b",
    "powersOfTau28_hez_final_21.ptau": "9aef0573cef4ded9c4a75f148709056bf989f80dad96876aadeb6f1c6d062391f07a394a9e756d16f7eb233198d5b69407cca44594c763ab4a5b67ae73254678",
    "powersOfTau28_hez_final_22.ptau": "0d64f63dba1a6f11139df765cb690da69d9b2f469a1ddd0de5e4aa628abb28f787f04c6a5fb84a235ec5ea7f41d0548746653ecab0559add658a83502d1cb21b",
    "powersOfTau28_hez_final_23.ptau": "3063a0bd81d68711197c8820a92466d51aeac93e915f5136d74f63c394ee6d88c5e8016231ea6580bec02e25d491f319d92e77f5c7f46a9caa8f3b53c0ea544f",
    "powersOfTau28_hez_final_24.ptau": "fa404d140d5819d39984833ca5ec3632cd4995f81e82db402371a4de7c2eae8687c62bc632a95b0c6aadba3fb02680a94e09174b7233ccd26d78baca2647c733",
    "powersOfTau28_hez_final_25.ptau": "0377d860cdb09a8a31ea1b0b8c04335614c8206357181573bf294c25d5ca7dff72387224fbd868897e6769f7805b3dab02854aec6d69d7492883b5e4e5f35eeb",
    "powersOfTau28_hez_final_26.ptau": "418dee4a74b9592198bd8fd02ad1aea76f9cf3085f206dfd7d594c9e264ae919611b1459a1cc920c2f143417744ba9edd7b8d51e44be9452344a225ff7eead19",
    "powersOfTau28_hez_final_27.ptau": "10ffd99837c512ef99752436a54b9810d1ac8878d368fb4b806267bdd664b4abf276c9cd3c4b9039a1fa4315a0c326c0e8e9e8fe0eb588ffd4f9021bf7eae1a1",
    "powersOfTau28_hez_final.ptau": "55c77ce8562366c91e7cda394cf7b7c15a06c12d8c905e8b36ba9cf5e13eb37d1a429c589e8eaba4c591bc4b88a0e2828745a53e170eac300236f5c1a326f41a",
}


@dataclass(frozen=True)
class PtauFile:
    path: Path
    power: int
    blake2b: str
    insecure: bool

    @classmethod
    def open(cls, path: str | Path, *, expected_blake2b: str | None = None,
             insecure: bool = False) -> "PtauFile":
        """Check a powers-of-tau file: its hash against ``expected_blake2b`` or, when its name
        is a published ceremony file, against the published hash; it must be prepared for
        phase 2 (hold the Lagrange sections)."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"powers-of-tau file {path} does not exist")
        actual = blake2b_file(path)
        expected = expected_blake2b or KNOWN_PTAU_BLAKE2B.get(path.name)
        if expected and actual != expected:
            raise IntegrityError(
                f"{path} has blake2b {actual[:16]}…, but {expected[:16]}… was expected"
                + (f" (the published hash of {path.name}): the file is corrupt or not the ceremony "
                   "file it claims to be; download it again" if path.name in KNOWN_PTAU_BLAKE2B
                   else ": the file is corrupt or was replaced; regenerate it (a development "
                   "ptau: delete its cache folder) or use the file the hash belongs to"))
        bf = read_binfile(path, b"ptau")
        header = bytes(bf.section(1))
        (n8,) = struct.unpack_from("<I", header, 0)
        power, _ceremony_power = struct.unpack_from("<II", header, 4 + n8)
        if 12 not in bf.sections:
            raise SetupError(f"{path} is not prepared for phase 2: run `npx snarkjs powersoftau "
                             f"prepare phase2 {path.name} prepared.ptau` and use that file")
        return cls(path, power, actual, insecure)


def initial_key(circuit: CompiledCircuit, ptau: PtauFile | None = None,
                cache: ArtifactCache | None = None) -> CircuitKey:
    """The circuit's key before any phase-2 contribution (what ``snarkjs zkey new`` makes).

    Without ``ptau`` a development ptau sized to the circuit is generated together with the
    key (``devsetup``), cached, and both are marked insecure-for-production."""
    cache = cache or ArtifactCache()
    if ptau is not None and ptau.power < circuit.info.ptau_power:
        raise SetupError(f"{ptau.path} holds 2^{ptau.power} powers, circuit {circuit.name} needs "
                         f"2^{circuit.info.ptau_power}: use a larger ceremony file")
    key = digest({"circuit": circuit.key, "ptau": ptau.blake2b if ptau else "dev"})

    def build(out: Path) -> dict:
        zkey = out / f"{circuit.name}_0000.zkey"
        if ptau is None:
            info, constraints = read_r1cs(circuit.r1cs, with_constraints=True)
            cs_hash = dev_setup(info, constraints, out / "dev.ptau", zkey).hex()
            ptau_hash = blake2b_file(out / "dev.ptau")
            (out / "dev.ptau.json").write_text(json.dumps(
                {"power": info.ptau_power, "insecure_for_production": True, "note": INSECURE_NOTE,
                 "blake2b": ptau_hash}, indent=2))
        else:
            proc = find_toolchain().run("snarkjs", ["zkey", "new", circuit.r1cs, ptau.path, zkey])
            cs_hash = _circuit_hash(tail(proc))
            ptau_hash = ptau.blake2b
        return {"zkey": zkey.name, "zkey_blake2b": blake2b_file(zkey), "ptau_blake2b": ptau_hash,
                "insecure_dev_setup": ptau is None or ptau.insecure, "circuit_hash": cs_hash}

    entry = cache.get_or_build("setup", key, build)
    meta = entry.manifest
    ck = CircuitKey(entry.path / meta["zkey"], circuit, meta["ptau_blake2b"],
                    meta["insecure_dev_setup"])
    try:
        ck.check_integrity(meta["zkey_blake2b"])
    except IntegrityError as exc:
        # Not rebuilt silently: a key that changed on disk may have been tampered with.
        raise IntegrityError(f"{exc}. The cached setup in {entry.path} is damaged: delete that "
                             "folder and run the setup again") from exc
    return ck


def dev_ptau_of(key: CircuitKey) -> PtauFile | None:
    path = key.zkey.parent / "dev.ptau"
    return PtauFile.open(path, expected_blake2b=key.ptau_blake2b, insecure=True) if path.exists() else None


_HASH_BLOCK_RE = re.compile(r"((?:\s*(?:[0-9a-f]{8}\s+){3}[0-9a-f]{8}\s*){4})")


def _parse_hash(text: str, title: str) -> str:
    idx = text.find(title)
    if idx < 0:
        raise SetupError(f"snarkjs did not print a {title!r}:\n{text[-1500:]}")
    after = text[idx + len(title):]
    words = re.findall(r"\b[0-9a-f]{8}\b", after)[:16]
    if len(words) != 16:
        raise SetupError(f"could not read the {title!r} snarkjs printed:\n{after[:800]}")
    return "".join(words)


def _circuit_hash(text: str) -> str:
    return _parse_hash(text, "Circuit hash:")


class Ceremony:
    """Phase 2 for one circuit: each party adds randomness to δ; anyone can verify the result.

    Files live in ``workdir`` (``<name>_NNNN.zkey`` per step) with ``transcript.json``."""

    def __init__(self, start: CircuitKey, workdir: str | Path, ptau: PtauFile | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.ptau = ptau or dev_ptau_of(start)
        if self.ptau is None:
            raise SetupError("the ceremony needs the ptau the key was made from: pass it")
        first = self.workdir / start.zkey.name
        if not first.exists():
            shutil.copyfile(start.zkey, first)
        self.key = CircuitKey(first, start.circuit, start.ptau_blake2b, start.insecure,
                              list(start.transcript))

    def _next_path(self) -> Path:
        return self.workdir / f"{self.key.circuit.name}_{len(self.key.transcript) + 1:04d}.zkey"

    def _advance(self, new: Path, name: str, kind: str, contribution_hash: str) -> CircuitKey:
        transcript = [*self.key.transcript,
                      Contribution(len(self.key.transcript) + 1, name, kind, contribution_hash)]
        self.key = CircuitKey(new, self.key.circuit, self.key.ptau_blake2b, self.key.insecure,
                              transcript)
        (self.workdir / "transcript.json").write_text(json.dumps(self.key.metadata(), indent=2))
        return self.key

    def contribute(self, name: str, entropy: str | None = None, *, native: bool = False
                   ) -> CircuitKey:
        """Add one contribution: with snarkjs, or with ``native=True`` through ``phase2``
        (same file format and hash, much faster; randomness from the OS, so no ``entropy``)."""
        if not name or len(name.encode()) > 255 or "\n" in name:
            raise InputError("a contribution name must be 1–255 bytes, on one line")
        new = self._next_path()
        if native:
            if entropy is not None:
                raise InputError("a native contribution draws its randomness from the OS; "
                                 "`entropy` only feeds snarkjs")
            _key, contribution_hash = contribute(self.key, name, new)
            return self._advance(new, name, "contribution", contribution_hash)
        proc = find_toolchain().run("snarkjs", [
            "zkey", "contribute", self.key.zkey, new, f"--name={name}",
            f"-e={entropy or secrets.token_hex(32)}"])
        return self._advance(new, name, "contribution", _parse_hash(tail(proc), "Contribution Hash:"))

    def beacon(self, beacon_hex: str, iterations_exp: int = 10, name: str = "final beacon"
               ) -> CircuitKey:
        if not re.fullmatch(r"(?:[0-9a-fA-F]{2})+", beacon_hex or ""):
            raise InputError("the beacon must be an even-length hex string (e.g. a block hash)")
        if not 10 <= iterations_exp <= 63:
            raise InputError("iterations_exp must be between 10 and 63 (snarkjs' bounds)")
        new = self._next_path()
        proc = find_toolchain().run("snarkjs", [
            "zkey", "beacon", self.key.zkey, new, beacon_hex, str(iterations_exp), f"--name={name}"])
        return self._advance(new, name, "beacon", _parse_hash(tail(proc), "Contribution Hash:"))

    def verify(self) -> str:
        """``snarkjs zkey verify`` against the circuit's r1cs and the ptau; returns its report.
        Raises SetupError when the key does not follow from them."""
        return verify_key(self.key, self.ptau)


def verify_key(key: CircuitKey, ptau: PtauFile) -> str:
    proc = find_toolchain().run("snarkjs", ["zkey", "verify", key.circuit.r1cs, ptau.path, key.zkey],
                                check=False)
    text = tail(proc, 20000)
    if proc.returncode != 0 or "ZKey Ok!" not in text:
        raise SetupError(f"{key.zkey.name} does not verify against {key.circuit.r1cs.name} and "
                         f"{ptau.path.name}:\n{text[-1500:]}")
    return text


def contribution_names(zkey: str | Path) -> list[tuple[str, int]]:
    """(name, type) of every contribution recorded inside a zkey (section 10), read directly."""
    bf = read_binfile(zkey, b"zkey")
    data = bytes(bf.section(10))
    (count,) = struct.unpack_from("<I", data, 64)
    pos, out = 68, []
    for _ in range(count):
        pos += 64 * 3 + 128 + 64  # deltaAfter, g1_s, g1_sx, g2_spx, transcript
        (ctype, plen) = struct.unpack_from("<II", data, pos)
        pos += 8
        params, name = data[pos:pos + plen], ""
        i = 0
        while i < len(params):
            tag = params[i]
            if tag == 1:
                n = params[i + 1]
                name = params[i + 2:i + 2 + n].decode(errors="replace")
                i += 2 + n
            elif tag == 2:
                i += 2
            elif tag == 3:
                i += 2 + params[i + 1]
            else:
                raise IntegrityError(f"{zkey}: unknown contribution parameter {tag}")
        out.append((name, ctype))
        pos += plen
    return out
