"""SplitCircuits end to end: a Groth16 proof of each generated circuit verifies against the
statement the verifier builds itself, and not against any other statement."""

from __future__ import annotations

import dataclasses

import pytest

from splitverify.circuitgen import KINDS, PUBLIC_SIGNALS, Statement
from splitverify.errors import InputError


@pytest.fixture(scope="module")
def proofs(tiny_circuits, tiny_case):
    return {kind: tiny_circuits.prove(kind, tiny_case.inputs[kind], backend="native")
            for kind in KINDS}


@pytest.mark.parametrize("kind", KINDS)
def test_proof_verifies_against_the_expected_statement(tiny_circuits, tiny_case, proofs, kind):
    proof, statement = proofs[kind]
    assert statement == tiny_case.statements[kind]
    assert tiny_circuits.verify(kind, proof, tiny_case.statements[kind])
    assert tiny_circuits.verify(kind, proof, tiny_case.statements[kind], verifier="snarkjs")


@pytest.mark.parametrize("kind,field", [(kind, name) for kind in KINDS
                                        for name in PUBLIC_SIGNALS[kind]])
def test_proof_does_not_verify_another_statement(tiny_circuits, tiny_case, proofs, kind, field):
    """Every public signal binds: change any one and the proof is rejected."""
    proof, _ = proofs[kind]
    values = dict(tiny_case.statements[kind].values)
    values[field] += 1
    assert not tiny_circuits.verify(kind, proof, Statement(kind, values))


def test_statement_errors_are_named(tiny_circuits, tiny_case, proofs):
    with pytest.raises(InputError, match="needs"):
        Statement("server_step", {"loss": 1})
    proof, _ = proofs["client_forward"]
    wrong_kind = dataclasses.replace(tiny_case.statements["server_step"])
    with pytest.raises(InputError, match="cannot check"):
        tiny_circuits.verify("client_forward", proof, wrong_kind)
