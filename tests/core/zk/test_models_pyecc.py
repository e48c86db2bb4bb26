"""The snarkjs-format models and the py_ecc verifier, against a real snarkjs setup and proof.

The fixture compiles two tiny circuits with circom (WASM build), runs a throwaway powers-of-tau
and Groth16 setup with snarkjs, and proves c = a * b for a = 3, b = 11. Every verdict of the
py_ecc verifier is cross-checked with groth16py (Rust/arkworks), which also pins down the byte
order of ``Proof.to_bytes``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import groth16py
import pytest
from py_ecc.optimized_bn128 import FQ2, b2, curve_order, is_inf, multiply, normalize

from splitverify.errors import InputError, ProofError
from splitverify.zk.models import Q, R, Proof, PublicSignals, VerificationKey
from splitverify.zk.pyecc_verifier import PyEccVerifier

REPO = Path(__file__).resolve().parents[3]
BIN = REPO / "node_modules" / ".bin"

CIRCUIT = """pragma circom 2.0.0;
template M() {{ signal input a; signal input b; signal output c; c <== {expr}; }}
component main = M();
"""
MUL = CIRCUIT.format(expr="a*b")
# Not ``c <== a*b + a``: that differs from MUL only in private wiring, and a Groth16 key depends
# on private wiring only through delta, which is the generator until a phase-2 contribution -- so
# snarkjs gives both circuits the *same* key. ``(a+1)*b`` puts the constant wire into the
# constraint, which changes IC[0].
OTHER = CIRCUIT.format(expr="(a+1)*b")


@dataclass(frozen=True)
class Artifacts:
    dir: Path
    vk: VerificationKey
    proof: Proof
    public: PublicSignals
    other_vk: VerificationKey  # the key of a different circuit with the same number of publics


def _run(cwd: Path, *args: str | Path) -> None:
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"


def _setup_circuit(work: Path, name: str, source: str) -> Path:
    """Compile ``source`` and run a Groth16 setup on the shared pot.ptau; return the vk path.
    circom2 runs as WASM and sees only files under its cwd, hence relative paths."""
    (work / f"{name}.circom").write_text(source)
    _run(work, BIN / "circom2", f"{name}.circom", "--r1cs", "--wasm", "--sym", "-o", ".")
    _run(work, BIN / "snarkjs", "groth16", "setup", f"{name}.r1cs", "pot.ptau", f"{name}.zkey")
    vk = f"{name}_vk.json"
    _run(work, BIN / "snarkjs", "zkey", "export", "verificationkey", f"{name}.zkey", vk)
    return work / vk


@pytest.fixture(scope="session")
def art(tmp_path_factory: pytest.TempPathFactory) -> Artifacts:
    missing = [t for t in ("snarkjs", "circom2") if not (BIN / t).exists()]
    if missing or shutil.which("node") is None:
        pytest.skip(
            f"needs node and node_modules/.bin/snarkjs, circom2 (missing: {missing or ['node']}); "
            "run `npm ci` in the repository root"
        )
    work = tmp_path_factory.mktemp("groth16")
    snarkjs = BIN / "snarkjs"
    _run(work, snarkjs, "powersoftau", "new", "bn128", "8", "pot0.ptau")
    _run(work, snarkjs, "powersoftau", "contribute", "pot0.ptau", "pot1.ptau", "--name=x", "-e=abc")
    _run(work, snarkjs, "powersoftau", "prepare", "phase2", "pot1.ptau", "pot.ptau")
    vk_path = _setup_circuit(work, "circuit", MUL)
    other_vk_path = _setup_circuit(work, "other", OTHER)
    (work / "input.json").write_text('{"a": 3, "b": 11}')
    wasm, outputs = "circuit_js/circuit.wasm", ("proof.json", "public.json")
    _run(work, snarkjs, "groth16", "fullprove", "input.json", wasm, "circuit.zkey", *outputs)
    return Artifacts(
        dir=work,
        vk=VerificationKey.load_json(vk_path),
        proof=Proof.load_json(work / "proof.json"),
        public=PublicSignals.load_json(work / "public.json"),
        other_vk=VerificationKey.load_json(other_vk_path),
    )


# --- models: round trips -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "file"),
    [(Proof, "proof.json"), (PublicSignals, "public.json"), (VerificationKey, "circuit_vk.json")],
)
def test_json_round_trip_is_byte_identical(
    art: Artifacts, tmp_path: Path, model: type, file: str
) -> None:
    original = (art.dir / file).read_text()
    loaded = model.load_json(art.dir / file)
    assert loaded.to_snarkjs() == json.loads(original)
    loaded.save_json(tmp_path / file)
    assert (tmp_path / file).read_text() == original
    assert model.from_snarkjs(original) == loaded


def test_public_signals_are_ints(art: Artifacts) -> None:
    assert list(art.public) == [33] and art.public.is_reduced()


def test_other_circuit_has_another_key(art: Artifacts) -> None:
    assert art.other_vk.nPublic == art.vk.nPublic and art.other_vk.IC != art.vk.IC


def test_bytes_round_trip(art: Artifacts) -> None:
    raw = art.proof.to_bytes()
    assert len(raw) == 256
    assert Proof.from_bytes(raw) == art.proof
    (ax, ay), ((bx0, bx1), _), _ = art.proof.pi_a, art.proof.pi_b, art.proof.pi_c
    assert raw[:96] == b"".join(v.to_bytes(32, "big") for v in (ax, ay, bx1))  # B.x.c1 first


def test_from_bytes_rejects_bad_length_and_coordinates(art: Artifacts) -> None:
    with pytest.raises(ProofError, match="256 bytes"):
        Proof.from_bytes(art.proof.to_bytes()[:-1])
    with pytest.raises(ProofError, match=r"pi_b.*\[0, Q\)"):
        raw = art.proof.to_bytes()
        Proof.from_bytes(raw[:64] + Q.to_bytes(32, "big") + raw[96:])


def test_from_snarkjs_rejects_malformed(art: Artifacts, tmp_path: Path) -> None:
    data = art.proof.to_snarkjs()
    with pytest.raises(ProofError, match=r"pi_c.*\[0, Q\)"):
        Proof.from_snarkjs({**data, "pi_c": [str(Q), "2", "1"]})
    with pytest.raises(ProofError, match="missing field 'pi_a'"):
        Proof.from_snarkjs({k: v for k, v in data.items() if k != "pi_a"})
    with pytest.raises(ProofError, match="z = 2"):
        Proof.from_snarkjs({**data, "pi_a": [*data["pi_a"][:2], "2"]})
    with pytest.raises(ProofError, match="malformed proof"):
        Proof.from_snarkjs("{not json")
    with pytest.raises(InputError, match="decimal"):
        PublicSignals.from_snarkjs(["1.5"])
    with pytest.raises(InputError, match="cannot read the proof file"):
        Proof.load_json(tmp_path / "missing.json")


def test_infinity(art: Artifacts) -> None:
    """snarkjs writes infinity as [0, 1, 0]; the model and the bytes form use (0, 0)."""
    data = {**art.proof.to_snarkjs(), "pi_c": ["0", "1", "0"]}
    proof = Proof.from_snarkjs(data)
    assert proof.pi_c == (0, 0)
    assert proof.to_bytes()[-64:] == bytes(64)
    assert proof.to_snarkjs() == data
    assert Proof.from_bytes(proof.to_bytes()) == proof


def test_vk_checks_npublic_and_writes_metadata_only_when_set(
    art: Artifacts, tmp_path: Path
) -> None:
    data = art.vk.to_snarkjs()
    assert "splitverify" not in data
    with pytest.raises(ProofError, match="nPublic is 2 but IC has 2"):
        VerificationKey.from_snarkjs({**data, "nPublic": 2})
    meta = {"insecure_dev_setup": True, "circuit": "mul"}
    tagged = art.vk.model_copy(update={"splitverify": meta})
    tagged.save_json(tmp_path / "vk.json")
    assert VerificationKey.load_json(tmp_path / "vk.json") == tagged
    assert VerificationKey.load_json(tmp_path / "vk.json").splitverify == meta


def test_public_signals_are_not_reduced() -> None:
    signals = PublicSignals.from_snarkjs([str(R + 33), "-1"])
    assert list(signals) == [R + 33, -1]
    assert signals.to_snarkjs() == [str(R + 33), "-1"]
    assert not signals.is_reduced()


# --- verification ------------------------------------------------------------------------------


def _off_curve(point: tuple[int, int]) -> tuple[int, int]:
    return point[0], (point[1] + 1) % Q


def _sqrt_fq2(value: FQ2) -> FQ2 | None:
    """A square root in Fq2 = Fq[u]/(u^2 + 1), for Q = 3 mod 4 (via the norm), or None."""
    a0, a1 = (int(c) for c in value.coeffs)
    norm = pow((a0 * a0 + a1 * a1) % Q, (Q + 1) // 4, Q)
    for n in (norm, -norm):
        x0 = pow((a0 + n) * pow(2, -1, Q) % Q, (Q + 1) // 4, Q)
        if x0:
            root = FQ2([x0, a1 * pow(2 * x0, -1, Q) % Q])
            if root * root == value:
                return root
    return None


def _g2_outside_subgroup() -> tuple[tuple[int, int], tuple[int, int]]:
    """A point on the twist y^2 = x^3 + b2 whose order is not R (the cofactor is huge, so the
    first x with a square right-hand side almost surely gives one)."""
    for x0 in range(1, 100):
        x = FQ2([x0, 0])
        y = _sqrt_fq2(x**3 + b2)
        if y is None:
            continue
        point = (x, y, FQ2.one())
        if not is_inf(multiply(point, curve_order)):
            px, py = normalize(point)
            return (int(px.coeffs[0]), int(px.coeffs[1])), (int(py.coeffs[0]), int(py.coeffs[1]))
    raise AssertionError("no twist point outside the subgroup found")


Statement = tuple[VerificationKey, Proof, PublicSignals]


def _public(a: Artifacts, *values: int) -> Statement:
    return a.vk, a.proof, PublicSignals(values)


def _proof(a: Artifacts, **points: object) -> Statement:
    """The valid statement with some proof points replaced (validated, unlike model_copy)."""
    return a.vk, Proof.model_validate({**a.proof.model_dump(), **points}), a.public


REJECTED: dict[str, Callable[[Artifacts], Statement]] = {
    "public_changed": lambda a: _public(a, a.public[0] + 1),
    "public_plus_R": lambda a: _public(a, a.public[0] + R),  # congruent, but not canonical
    "too_few_publics": lambda a: _public(a),
    "too_many_publics": lambda a: _public(a, a.public[0], 0),
    "A_off_curve": lambda a: _proof(a, pi_a=_off_curve(a.proof.pi_a)),
    "B_off_curve": lambda a: _proof(a, pi_b=(a.proof.pi_b[0], _off_curve(a.proof.pi_b[1]))),
    "C_off_curve": lambda a: _proof(a, pi_c=_off_curve(a.proof.pi_c)),
    "B_outside_subgroup": lambda a: _proof(a, pi_b=_g2_outside_subgroup()),
    "A_swapped": lambda a: _proof(a, pi_a=a.proof.pi_c),
    "B_swapped": lambda a: _proof(a, pi_b=a.vk.vk_beta_2),
    "C_swapped": lambda a: _proof(a, pi_c=a.proof.pi_a),
    "other_circuit_vk": lambda a: (a.other_vk, a.proof, a.public),
}


def _groth16py_verify(vk: VerificationKey, proof: Proof, public: PublicSignals) -> bool:
    """groth16py raises on malformed input (off-curve point, wrong count); that is a rejection."""
    verifier = groth16py.Verifier(groth16py.VerifyingKey.from_snarkjs(json.dumps(vk.to_snarkjs())))
    try:
        return verifier.verify(proof.to_bytes(), list(public))
    except (groth16py.EncodingError, groth16py.VerificationError):
        return False


def test_valid_proof_is_accepted_by_both(art: Artifacts) -> None:
    """groth16py takes ``to_bytes()``: its acceptance confirms the EIP-197 byte order."""
    assert PyEccVerifier().verify(art.vk, art.proof, art.public) is True
    assert _groth16py_verify(art.vk, art.proof, art.public) is True


@pytest.mark.parametrize("case", REJECTED)
def test_tampered_statement_is_rejected_by_both(art: Artifacts, case: str) -> None:
    statement = REJECTED[case](art)
    assert PyEccVerifier().verify(*statement) is False
    assert _groth16py_verify(*statement) is False


def test_verifier_name() -> None:
    assert PyEccVerifier.name == "py_ecc"
