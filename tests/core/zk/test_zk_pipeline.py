"""End to end on a small circuit: compile -> dev setup -> prove (both backends) -> verify (all
three verifiers), with public outputs equal to the real matrix product (negatives in the field)."""

from __future__ import annotations

import pytest
from conftest import BACKENDS, MATMUL_INPUTS, expected_matmul_public, matmul, to_field

from splitverify import zk
from splitverify.zk.ceremony import INSECURE_NOTE, dev_ptau_of
from splitverify.zk.curve import R


def test_compiles_with_expected_counts(matmul_circuit: zk.CompiledCircuit) -> None:
    info = matmul_circuit.info
    # 8 products a[i][k]*b[k][j] plus 4 linear sums c = p0 + p1.
    assert info.n_constraints == 12
    # one + 4 outputs + 8 private inputs + 8 intermediate products.
    assert info.n_wires == 21
    assert (info.n_public_outputs, info.n_public_inputs, info.n_private_inputs) == (4, 0, 8)
    assert info.n_public == 4
    assert info.ptau_power == (12 + 4).bit_length() == 5
    assert matmul_circuit.public_signal_names == ("c[0][0]", "c[0][1]", "c[1][0]", "c[1][1]")
    assert matmul_circuit.input_shapes == {"a": (2, 2), "b": (2, 2)}
    for artifact in (matmul_circuit.r1cs, matmul_circuit.wasm, matmul_circuit.sym):
        assert artifact.is_file(), artifact


def test_sets_up_with_a_dev_ptau(matmul_circuit: zk.CompiledCircuit, matmul_key: zk.CircuitKey,
                                 matmul_vk: zk.VerificationKey) -> None:
    assert matmul_key.zkey.is_file()
    assert matmul_key.insecure
    assert [c.name for c in matmul_key.transcript] == ["client", "server"]
    assert all(c.kind == "contribution" for c in matmul_key.transcript)
    ptau = dev_ptau_of(zk.initial_key(matmul_circuit))
    assert ptau is not None and ptau.insecure
    assert ptau.power == matmul_circuit.info.ptau_power
    assert ptau.blake2b == matmul_key.ptau_blake2b
    assert matmul_vk.nPublic == 4
    meta = matmul_vk.splitverify
    assert meta["insecure_dev_setup"] is True and meta["warning"] == INSECURE_NOTE
    assert [c["name"] for c in meta["contributions"]] == ["client", "server"]


def test_expected_product_has_negative_entries() -> None:
    product = matmul(MATMUL_INPUTS["a"], MATMUL_INPUTS["b"])
    assert product == [[19, -10], [-13, 50]]
    assert expected_matmul_public() == [19, R - 10, R - 13, 50]


@pytest.mark.parametrize("backend", BACKENDS)
def test_public_outputs_are_the_matrix_product(matmul_proofs, backend: str) -> None:
    _proof, public = matmul_proofs[backend]
    assert list(public) == expected_matmul_public()
    assert public.is_reduced()


def test_backends_agree_on_public_signals(matmul_proofs) -> None:
    assert list(matmul_proofs["snarkjs"][1]) == list(matmul_proofs["native"][1])


@pytest.mark.parametrize("verifier", zk.VERIFIER_NAMES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_every_proof_verifies_under_every_verifier(matmul_vk, matmul_proofs, backend: str,
                                                   verifier: str) -> None:
    proof, public = matmul_proofs[backend]
    assert zk.verify(matmul_vk, proof, public, verifier) is True


def test_other_inputs_give_their_product(matmul_key: zk.CircuitKey,
                                         matmul_vk: zk.VerificationKey) -> None:
    inputs = {"a": [[-3, 0], [7, -1]], "b": [[2, -5], [4, 9]]}
    proof, public = zk.prove(matmul_key, inputs, backend="native")
    assert list(public) == [to_field(x) for row in matmul(inputs["a"], inputs["b"]) for x in row]
    assert list(public) == [R - 6, 15, 10, R - 44]
    assert zk.verify(matmul_vk, proof, public, "native")


def test_unknown_backend_and_verifier_are_input_errors() -> None:
    from splitverify.errors import InputError

    with pytest.raises(InputError, match="native"):
        zk.get_prover("groth17")
    with pytest.raises(InputError, match="py_ecc"):
        zk.get_verifier("groth17")
