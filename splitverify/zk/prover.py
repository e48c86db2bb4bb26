"""Groth16 provers behind one interface: snarkjs (the reference, a subprocess), native
(arkworks through PyPI ``groth16py``, which imports snarkjs .zkey files, on one core) and mcl
(our C prover over mcl on every core, ``mcl_prover``). Each proof from any backend verifies
under every verifier."""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Protocol

from ..errors import InputError, ProofError
from .ceremony import CircuitKey
from .models import Proof, PublicSignals
from .toolchain import find_toolchain, tail
from .witness import read_witness

ENV_PROVER = "SPLITVERIFY_PROVER"


class ProverBackend(Protocol):
    name: str

    def prove(self, key: CircuitKey, wtns: str | Path) -> tuple[Proof, PublicSignals]: ...


class SnarkjsProver:
    name = "snarkjs"

    def prove(self, key: CircuitKey, wtns: str | Path) -> tuple[Proof, PublicSignals]:
        with tempfile.TemporaryDirectory(prefix="sv-prove-") as tmp:
            proof_path, public_path = Path(tmp) / "proof.json", Path(tmp) / "public.json"
            proc = find_toolchain().run(
                "snarkjs", ["groth16", "prove", key.zkey, wtns, proof_path, public_path],
                check=False)
            if proc.returncode != 0 or not proof_path.exists():
                raise ProofError(f"snarkjs could not prove {key.circuit.name}:\n{tail(proc)}")
            return (Proof.from_snarkjs(json.loads(proof_path.read_text())),
                    PublicSignals.from_snarkjs(json.loads(public_path.read_text())))


class NativeProver:
    """Keeps each imported proving key in memory, so repeated proofs pay the import once."""

    name = "native"

    def __init__(self):
        self._keys: dict[tuple[str, float, int], object] = {}
        self._lock = threading.Lock()

    def load(self, key: CircuitKey) -> None:
        """Import ``key`` now (seconds for a large key), so that no later proof's clock pays it."""
        self._proving_key(key.zkey)

    def _proving_key(self, zkey: Path):
        import groth16py

        stat = zkey.stat()
        ident = (str(zkey.resolve()), stat.st_mtime, stat.st_size)
        with self._lock:
            if ident not in self._keys:
                try:
                    pk, _vk = groth16py.import_zkey(str(zkey))
                except Exception as exc:  # groth16py raises its own exception types
                    raise ProofError(f"the native prover could not import {zkey}: {exc}") from exc
                self._keys[ident] = pk
            return self._keys[ident]

    def prove(self, key: CircuitKey, wtns: str | Path) -> tuple[Proof, PublicSignals]:
        import groth16py

        pk = self._proving_key(key.zkey)
        try:
            raw = groth16py.prove_wtns(pk, str(wtns))
        except Exception as exc:  # groth16py raises its own exception types
            raise ProofError(f"the native prover failed on {key.circuit.name}: {exc}") from exc
        public = read_witness(wtns, 1, key.circuit.info.n_public)  # snarkjs order
        return Proof.from_bytes(bytes(raw)), PublicSignals(tuple(public))


_BACKENDS: dict[str, ProverBackend] = {}


def get_prover(name: str | None = None) -> ProverBackend:
    """The backend called ``name``; by default ``$SPLITVERIFY_PROVER`` or ``mcl`` (measured the
    fastest of the three: it proves on every core)."""
    name = name or os.environ.get(ENV_PROVER, "mcl")
    from .mcl_prover import MclProver

    factories = {"snarkjs": SnarkjsProver, "native": NativeProver, "mcl": MclProver}
    if name not in factories:
        raise InputError(f"unknown prover backend {name!r}: choose one of {sorted(factories)}")
    if name not in _BACKENDS:
        _BACKENDS[name] = factories[name]()
    return _BACKENDS[name]
