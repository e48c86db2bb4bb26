"""A circuit's proving key at some point of its ceremony, and the records of that ceremony:
what both the ceremony (:mod:`.ceremony`) and the native phase 2 (:mod:`.phase2`) build on."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import IntegrityError
from .compile import CompiledCircuit

INSECURE_NOTE = ("INSECURE-FOR-PRODUCTION: development powers of tau generated on this machine; "
                 "whoever generated it could forge proofs")


def blake2b_file(path: str | Path) -> str:
    h = hashlib.blake2b(digest_size=64)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Contribution:
    index: int
    name: str
    kind: str  # "contribution" or "beacon"
    hash: str  # snarkjs' contribution hash (blake2b-512, hex)


@dataclass
class CircuitKey:
    """A circuit's proving key (.zkey) at some point of its ceremony, with its provenance."""

    zkey: Path
    circuit: CompiledCircuit
    ptau_blake2b: str
    insecure: bool
    transcript: list[Contribution] = field(default_factory=list)

    @property
    def blake2b(self) -> str:
        return blake2b_file(self.zkey)

    def check_integrity(self, expected_blake2b: str) -> None:
        actual = self.blake2b
        if actual != expected_blake2b:
            raise IntegrityError(f"{self.zkey} has blake2b {actual[:16]}…, expected "
                                 f"{expected_blake2b[:16]}…: the key file is corrupt or was "
                                 "replaced; rerun the setup")

    def metadata(self) -> dict:
        # With no phase-2 contribution δ is the generator (as in `snarkjs zkey new`): anyone can
        # forge proofs for such a key, whatever ptau it came from.
        warnings = [INSECURE_NOTE] if self.insecure else []
        if not self.transcript:
            warnings.append("NO PHASE-2 CONTRIBUTION: delta is the generator; do not use")
        return {"circuit": self.circuit.name, "circuit_key": self.circuit.key,
                "ptau_blake2b": self.ptau_blake2b, "insecure_dev_setup": self.insecure,
                **({"warning": " | ".join(warnings)} if warnings else {}),
                "contributions": [asdict(c) for c in self.transcript]}
