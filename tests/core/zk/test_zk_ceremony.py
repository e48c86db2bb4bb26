"""Phase-2 ceremony (contributions, beacon, verification, transcript), the development setup's
byte-identity with snarkjs, and the Solidity export."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import BACKENDS, MATMUL_INPUTS, expected_matmul_public

from splitverify import zk
from splitverify.errors import InputError, SetupError
from splitverify.zk import devsetup
from splitverify.zk.binfile import read_binfile
from splitverify.zk.ceremony import (CircuitKey, PtauFile, _circuit_hash, contribution_names,
                                     dev_ptau_of, verify_key)
from splitverify.zk.r1cs import read_r1cs
from splitverify.zk.toolchain import find_toolchain, tail

BEACON = "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20"
NAMES = ["alice", "bob", "final beacon"]
HASH_RE = re.compile(r"[0-9a-f]{128}")


@pytest.fixture(scope="module")
def ceremony(matmul_circuit, tmp_path_factory) -> zk.Ceremony:
    start = zk.initial_key(matmul_circuit)
    c = zk.Ceremony(start, tmp_path_factory.mktemp("ceremony"))
    c.contribute("alice")
    c.contribute("bob", entropy="bob's own entropy")
    c.beacon(BEACON, 10)
    return c


@pytest.fixture(scope="module")
def final_vk(ceremony: zk.Ceremony) -> zk.VerificationKey:
    return zk.export_verification_key(ceremony.key)


def test_ceremony_verifies(ceremony: zk.Ceremony) -> None:
    report = ceremony.verify()
    assert "ZKey Ok!" in report
    # snarkjs' report lists every contribution's hash: the transcript agrees with it.
    words = set(re.findall(r"\b[0-9a-f]{8}\b", report))
    for c in ceremony.key.transcript:
        assert {c.hash[i:i + 8] for i in range(0, 128, 8)} <= words, c


def test_transcript(ceremony: zk.Ceremony) -> None:
    transcript = ceremony.key.transcript
    assert len(transcript) == 3
    assert [c.name for c in transcript] == NAMES
    assert [c.index for c in transcript] == [1, 2, 3]
    assert [c.kind for c in transcript] == ["contribution", "contribution", "beacon"]
    for c in transcript:
        assert HASH_RE.fullmatch(c.hash), c.hash
    assert len({c.hash for c in transcript}) == 3
    saved = json.loads((ceremony.workdir / "transcript.json").read_text())
    assert saved == json.loads(json.dumps(ceremony.key.metadata()))
    assert [c["name"] for c in saved["contributions"]] == NAMES
    assert ceremony.key.zkey.name.endswith("_0003.zkey")


def test_contribution_names_read_from_the_zkey(ceremony: zk.Ceremony) -> None:
    recorded = contribution_names(ceremony.key.zkey)
    assert [name for name, _type in recorded] == NAMES
    # snarkjs' contribution types: 0 = contribution, 1 = beacon.
    assert [t for _name, t in recorded] == [0, 0, 1]
    assert contribution_names(zk.initial_key(ceremony.key.circuit).zkey) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_proofs_with_the_final_key_verify(ceremony: zk.Ceremony, final_vk, matmul_vk,
                                          backend: str) -> None:
    proof, public = zk.prove(ceremony.key, MATMUL_INPUTS, backend=backend)
    assert list(public) == expected_matmul_public()
    for verifier in ("native", "snarkjs"):
        assert zk.verify(final_vk, proof, public, verifier), verifier
    # The ceremony changed delta: the session key (another ceremony) does not accept it.
    assert final_vk.vk_delta_2 != matmul_vk.vk_delta_2
    assert not zk.verify(matmul_vk, proof, public, "native")


def test_final_key_proof_verifies_with_py_ecc(ceremony: zk.Ceremony, final_vk) -> None:
    proof, public = zk.prove(ceremony.key, MATMUL_INPUTS, backend="native")
    assert zk.verify(final_vk, proof, public, "py_ecc")


def test_setup_result_verifies(matmul_key: CircuitKey) -> None:
    """zk.setup's key (two contributions on the dev ptau) is a valid ceremony result."""
    ptau = dev_ptau_of(zk.initial_key(matmul_key.circuit))
    assert "ZKey Ok!" in verify_key(matmul_key, ptau)
    assert [n for n, _ in contribution_names(matmul_key.zkey)] == ["client", "server"]


def test_key_against_another_circuits_r1cs_fails(ceremony: zk.Ceremony, other_circuit) -> None:
    key = ceremony.key
    wrong = CircuitKey(key.zkey, other_circuit, key.ptau_blake2b, key.insecure,
                       list(key.transcript))
    with pytest.raises(SetupError) as info:
        verify_key(wrong, ceremony.ptau)
    assert key.zkey.name in str(info.value) and other_circuit.r1cs.name in str(info.value)


# Offsets inside the Groth16 header (zkey section 2): n8q, q, n8r, r, nVars, nPublic, domainSize,
# then alpha1 (G1, 64 bytes), beta1 (64), beta2 (G2, 128), gamma2 (128), delta1 (64), delta2 (128).
_ALPHA1 = 4 + 32 + 4 + 32 + 12
_DELTA1 = _ALPHA1 + 64 + 64 + 128 + 128


def test_key_with_tampered_delta_fails(ceremony: zk.Ceremony, tmp_path: Path) -> None:
    """Replace delta1 in the header by another valid G1 point (alpha1): the file still parses,
    but delta no longer follows from the recorded contributions."""
    copy = tmp_path / ceremony.key.zkey.name
    shutil.copyfile(ceremony.key.zkey, copy)
    bf = read_binfile(copy, b"zkey")
    (offset, size), = bf.sections[2]
    data = bytearray(copy.read_bytes())
    header = data[offset:offset + size]
    assert header[_DELTA1:_DELTA1 + 64] != header[_ALPHA1:_ALPHA1 + 64]
    data[offset + _DELTA1:offset + _DELTA1 + 64] = header[_ALPHA1:_ALPHA1 + 64]
    copy.write_bytes(bytes(data))
    key = ceremony.key
    tampered = CircuitKey(copy, key.circuit, key.ptau_blake2b, key.insecure, list(key.transcript))
    with pytest.raises(SetupError):
        verify_key(tampered, ceremony.ptau)


def test_ceremony_input_checks(matmul_circuit, tmp_path: Path) -> None:
    c = zk.Ceremony(zk.initial_key(matmul_circuit), tmp_path)
    with pytest.raises(InputError):
        c.contribute("")
    with pytest.raises(InputError):
        c.contribute("two\nlines")
    with pytest.raises(InputError, match="hex"):
        c.beacon("xyz")
    with pytest.raises(InputError, match="iterations_exp"):
        c.beacon(BEACON, 9)
    assert c.key.transcript == []


# --- the development setup is byte-identical to snarkjs -----------------------------------------

SECRETS = dict(tau=1234567890123456789, alpha=98765432109876543210, beta=5555555555555555)


@pytest.mark.parametrize("power", [2, 5])
def test_dev_ptau_equals_snarkjs_prepare_phase2(tmp_path: Path, power: int) -> None:
    secrets, mul = devsetup._Secrets(**SECRETS), devsetup._Multipliers()
    raw, theirs, ours = tmp_path / "raw.ptau", tmp_path / "theirs.ptau", tmp_path / "ours.ptau"
    devsetup.write_dev_ptau(raw, power, prepared=False, _secrets=secrets, _mul=mul)
    find_toolchain().run("snarkjs", ["powersoftau", "prepare", "phase2", raw, theirs])
    devsetup.write_dev_ptau(ours, power, prepared=True, _secrets=secrets, _mul=mul)
    assert ours.read_bytes() == theirs.read_bytes()
    assert PtauFile.open(ours).power == power


@pytest.mark.parametrize("which", ["matmul", "other"])
def test_dev_setup_equals_snarkjs_zkey_new(tmp_path: Path, which: str, matmul_circuit,
                                           other_circuit) -> None:
    circuit = matmul_circuit if which == "matmul" else other_circuit
    info, constraints = read_r1cs(circuit.r1cs, with_constraints=True)
    ptau, ours = tmp_path / "dev.ptau", tmp_path / "ours.zkey"
    cs_hash = devsetup.dev_setup(info, constraints, ptau, ours,
                                 _secrets=devsetup._Secrets(**SECRETS))
    theirs = tmp_path / "theirs.zkey"
    proc = find_toolchain().run("snarkjs", ["zkey", "new", circuit.r1cs, ptau, theirs])
    assert ours.read_bytes() == theirs.read_bytes()
    assert cs_hash.hex() == _circuit_hash(tail(proc))


# --- Solidity ----------------------------------------------------------------------------------


def test_solidity_export(matmul_key: CircuitKey) -> None:
    source = zk.export_solidity(matmul_key)
    assert "function verifyProof" in source
    assert "INSECURE-FOR-PRODUCTION" in source
    assert "contract Groth16Verifier" in source
    named = zk.export_solidity(matmul_key, "MatMulVerifier")
    assert "contract MatMulVerifier" in named and "contract Groth16Verifier" not in named
    with pytest.raises(InputError):
        zk.export_solidity(matmul_key, "not a name")
