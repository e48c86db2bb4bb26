"""Groth16 verifiers: snarkjs (subprocess), native (arkworks via ``groth16py``) and an
independent pure-Python one (``py_ecc``). All three reject public inputs that are not reduced
field elements and a public-signal count that does not match the key, before any pairing."""

from __future__ import annotations

import json
import tempfile
import threading
from pathlib import Path
from typing import Protocol

from ..errors import InputError, ProofError
from .ceremony import CircuitKey
from .models import Proof, PublicSignals, VerificationKey
from .pyecc_verifier import PyEccVerifier
from .toolchain import find_toolchain, tail


class Verifier(Protocol):
    name: str

    def verify(self, vk: VerificationKey, proof: Proof, public: PublicSignals) -> bool: ...


def _well_formed(vk: VerificationKey, public: PublicSignals) -> bool:
    return len(public) == vk.nPublic and public.is_reduced()


class SnarkjsVerifier:
    name = "snarkjs"

    def verify(self, vk: VerificationKey, proof: Proof, public: PublicSignals) -> bool:
        if not _well_formed(vk, public):
            return False
        with tempfile.TemporaryDirectory(prefix="sv-verify-") as tmp:
            paths = {n: Path(tmp) / f"{n}.json" for n in ("vk", "public", "proof")}
            paths["vk"].write_text(json.dumps(vk.to_snarkjs()))
            paths["public"].write_text(json.dumps(public.to_snarkjs()))
            paths["proof"].write_text(json.dumps(proof.to_snarkjs()))
            proc = find_toolchain().run("snarkjs", ["groth16", "verify", paths["vk"],
                                                    paths["public"], paths["proof"]], check=False)
        text = tail(proc)
        return proc.returncode == 0 and "OK!" in text


class NativeVerifier:
    """Prepares each verification key once (pairing precomputation) and reuses it."""

    name = "native"

    def __init__(self):
        self._prepared: dict[str, object] = {}
        self._lock = threading.Lock()

    def _prepare(self, vk: VerificationKey):
        import groth16py

        text = json.dumps(vk.to_snarkjs(), sort_keys=True)
        with self._lock:
            if text not in self._prepared:
                try:
                    self._prepared[text] = groth16py.Verifier(groth16py.VerifyingKey.from_snarkjs(text))
                except Exception as exc:  # groth16py raises its own exception types
                    raise ProofError(f"the verification key is malformed: {exc}") from exc
            return self._prepared[text]

    def verify(self, vk: VerificationKey, proof: Proof, public: PublicSignals) -> bool:
        if not _well_formed(vk, public):
            return False
        prepared = self._prepare(vk)
        try:
            return bool(prepared.verify(proof.to_bytes(), list(public)))
        except Exception:  # a malformed point is an invalid proof, not a crash  # noqa: BLE001
            return False


_VERIFIERS: dict[str, Verifier] = {}
VERIFIER_NAMES = ("snarkjs", "native", "py_ecc")


def get_verifier(name: str = "native") -> Verifier:
    factories = {"snarkjs": SnarkjsVerifier, "native": NativeVerifier, "py_ecc": PyEccVerifier}
    if name not in factories:
        raise InputError(f"unknown verifier {name!r}: choose one of {list(VERIFIER_NAMES)}")
    if name not in _VERIFIERS:
        _VERIFIERS[name] = factories[name]()
    return _VERIFIERS[name]


def export_verification_key(key: CircuitKey) -> VerificationKey:
    """The key's verification key, carrying splitverify's provenance (and the
    insecure-for-production mark of a development setup) in its ``splitverify`` field."""
    with tempfile.TemporaryDirectory(prefix="sv-vk-") as tmp:
        out = Path(tmp) / "vk.json"
        find_toolchain().run("snarkjs", ["zkey", "export", "verificationkey", key.zkey, out])
        data = json.loads(out.read_text())
    data["splitverify"] = key.metadata()
    return VerificationKey.from_snarkjs(data)


def export_solidity(key: CircuitKey, contract_name: str = "Groth16Verifier") -> str:
    """A Solidity verifier contract for the key (snarkjs' template)."""
    if not contract_name.isidentifier():
        raise InputError(f"{contract_name!r} is not a valid contract name")
    with tempfile.TemporaryDirectory(prefix="sv-sol-") as tmp:
        out = Path(tmp) / "Verifier.sol"
        find_toolchain().run("snarkjs", ["zkey", "export", "solidityverifier", key.zkey, out])
        source = out.read_text()
    source = source.replace("contract Groth16Verifier", f"contract {contract_name}", 1)
    if "warning" in key.metadata():
        source = f"// {key.metadata()['warning']}\n" + source
    return source
