"""The prover pool's contract (splitverify.pool): a result is used only if it is the proof of
exactly its job — session, circuit, step and statement — and the inline pool's proofs verify."""

from __future__ import annotations

import dataclasses

import pytest

from splitverify.errors import ProofError, SplitverifyError
from splitverify.pool import InlinePool, ProofJob, checked
from splitverify.circuitgen.statements import Statement

from conftest import TINY_SPEC
from split_cases import SESSION, STEP, random_case


@pytest.fixture(scope="module")
def case():
    return random_case(TINY_SPEC, 11)


@pytest.fixture(scope="module")
def job_and_result(tiny_keys, case):
    job = ProofJob(SESSION, "server_step", STEP, case.statements["server_step"],
                   case.inputs["server_step"])
    return job, InlinePool(tiny_keys, "native").submit(job).result()


def test_the_inline_pool_proves_its_job(tiny_keys, job_and_result):
    job, result = job_and_result
    assert checked(job, result) is result
    assert result.worker == "inline" and result.seconds > 0
    assert tiny_keys.verify(job.kind, result.proof, job.statement)


@pytest.mark.parametrize("field, value", [("session_id", SESSION + 1), ("step", STEP + 1),
                                          ("kind", "client_forward")])
def test_a_result_for_another_job_is_refused(job_and_result, field, value):
    job, result = job_and_result
    with pytest.raises(ProofError, match=field):
        checked(job, dataclasses.replace(result, **{field: value}))


def test_a_proof_of_another_statement_is_refused(job_and_result):
    job, result = job_and_result
    values = dict(result.statement.values, step=STEP + 1)
    with pytest.raises(ProofError, match="another statement.*step"):
        checked(job, dataclasses.replace(result, statement=Statement(job.kind, values)))


def test_a_failed_proof_reaches_the_waiter(tiny_keys, case):
    inputs = dict(case.inputs["server_step"])
    inputs.pop(next(iter(inputs)))
    job = ProofJob(SESSION, "server_step", STEP, case.statements["server_step"], inputs)
    with pytest.raises(SplitverifyError, match="input|signal"):
        InlinePool(tiny_keys, "native").submit(job).result()
