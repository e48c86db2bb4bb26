"""The Circom/Groth16 toolchain layer: compile, set up, prove, verify — cached and typed.

Typical use::

    circuit = zk.compile_circuit("circuits/dense.circom", template="DenseNaive",
                                  params=[16, 64, 32])   # batch, n_in, n_out
    key = zk.setup(circuit)                        # dev ptau + phase 2 with one contribution
    proof, public = zk.prove(key, {"x": [...], "w": [...]})
    assert zk.verify(zk.export_verification_key(key), proof, public)
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path

from ..tempfolders import remove_with
from .cache import ArtifactCache
from . import phase2
from .ceremony import Ceremony, CircuitKey, PtauFile, initial_key, verify_key
from .compile import CompiledCircuit, compile_circuit
from .models import Proof, PublicSignals, VerificationKey
from .prover import get_prover
from .verifier import (VERIFIER_NAMES, export_solidity, export_verification_key,
                       get_verifier)
from .witness import (calculate_witness, calculate_witness_body, check_witness, read_witness,
                      witness_backend, write_witness)

__all__ = [
    "ArtifactCache", "Ceremony", "CircuitKey", "CompiledCircuit", "Proof", "PtauFile",
    "PublicSignals", "VERIFIER_NAMES", "VerificationKey", "calculate_witness", "check_witness",
    "compile_circuit", "export_solidity", "export_verification_key", "get_prover",
    "get_verifier", "initial_key", "prove", "read_witness", "setup", "verify", "verify_key",
    "write_witness",
]


def setup(circuit: CompiledCircuit, *, ptau: PtauFile | None = None,
          contributors: tuple[str, ...] = ("splitverify",), workdir: str | Path | None = None,
          cache: ArtifactCache | None = None) -> CircuitKey:
    """Initial key (dev ptau unless ``ptau`` is given) plus one phase-2 contribution per name in
    ``contributors`` (fresh OS randomness each; native, snarkjs-compatible: see ``phase2``).
    ``workdir`` defaults to a new temporary folder, removed with the returned key object."""
    key = initial_key(circuit, ptau, cache)
    folder = Path(workdir or tempfile.mkdtemp(prefix=f"sv-{circuit.name}-"))
    folder.mkdir(parents=True, exist_ok=True)
    for index, name in enumerate(contributors, 1):
        key, _ = phase2.contribute(key, name, folder / f"{circuit.name}_{index:04d}.zkey")
    if workdir is None:
        remove_with(key, folder)
    return key


def prove(key: CircuitKey, inputs: Mapping[str, object], backend: str | None = None
          ) -> tuple[Proof, PublicSignals]:
    """Witness from ``inputs`` (WitnessError if they violate the circuit), then a proof (in
    memory, without a .wtns file, for a prover that takes it so: ``mcl``)."""
    prover = get_prover(backend)
    if hasattr(prover, "prove_body") and witness_backend() == "wasm":
        return prover.prove_body(key, calculate_witness_body(key.circuit, inputs))
    with tempfile.TemporaryDirectory(prefix="sv-wtns-") as tmp:
        wtns = calculate_witness(key.circuit, inputs, Path(tmp) / "w.wtns")
        return prover.prove(key, wtns)


def verify(vk: VerificationKey, proof: Proof, public: PublicSignals, verifier: str = "native"
           ) -> bool:
    return get_verifier(verifier).verify(vk, proof, public)
