"""The Ray prover pool (splitverify.pool.ray_pool), on a real local Ray cluster started once for
this module (two CPUs, loopback): a tiny session proven on it in ``every`` mode, an actor killed
with a job in hand and its job retried, and a result for another job refused by the party."""

from __future__ import annotations

import dataclasses
import os
import signal

import pytest
import torch

from splitverify.errors import ProofError
from splitverify.pool import ProofJob, checked
from splitverify.protocol import ClientParty, ProofMode, ServerParty, random_field, run_local
from splitverify.protocol.parties import Prover

from conftest import TINY_SPEC
from split_cases import SESSION, STEP, data_batches, random_case
from test_pool_local import wait_for

ray = pytest.importorskip("ray", reason="the Ray prover pool's tests need Ray: "
                                        "pip install 'splitverify[ray]'")
from splitverify.pool.ray_pool import RayPool  # noqa: E402 — only with Ray installed


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster of two CPUs on loopback, for this module's tests."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             _node_ip_address="127.0.0.1")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def case():
    return random_case(TINY_SPEC, 11)


def test_a_tiny_session_in_every_mode_proves_on_ray(cluster, tiny_keys):
    data = data_batches(TINY_SPEC, 2, seed=3)
    case = random_case(TINY_SPEC, seed=11)
    session, mode = random_field(), ProofMode.parse("every")
    pools = [RayPool(tiny_keys, 1), RayPool(tiny_keys, 1)]
    try:
        client = ClientParty(TINY_SPEC, session, mode, case.client, tiny_keys, pool=pools[0])
        server = ServerParty(TINY_SPEC, session, mode, case.server, tiny_keys, pool=pools[1])
        result = run_local(client, server, data)
        # each actor was given each of its party's keys once, for all the steps
        assert (pools[0].key_loads, pools[1].key_loads) == (2, 1)
    finally:
        for pool in pools:
            pool.close()
    assert result.detected is None and result.steps == 2
    assert client.verifier.verified == 2 and server.verifier.verified == 4
    plain_client = ClientParty(TINY_SPEC, session, ProofMode.parse("off"), case.client, tiny_keys)
    plain_server = ServerParty(TINY_SPEC, session, ProofMode.parse("off"), case.server, tiny_keys)
    run_local(plain_client, plain_server, data)
    for a, b in zip(client.params + server.params, plain_client.params + plain_server.params):
        assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_an_actor_killed_with_a_job_in_hand_has_the_job_retried(cluster, tiny_keys, case):
    pool = RayPool(tiny_keys, 1)
    try:
        job = ProofJob(SESSION, "server_step", STEP, case.statements["server_step"],
                       case.inputs["server_step"])
        first = pool.submit(job).result(timeout=120)
        actor = pool.workers[0]
        os.kill(actor.pid, signal.SIGSTOP)     # it cannot answer the next job: it dies with it
        again = dataclasses.replace(job, step=STEP + 1)
        future = pool.submit(again)
        wait_for(lambda: pool.in_flight.get((SESSION, "server_step", STEP + 1)),
                 "the job to reach the actor")
        os.kill(actor.pid, signal.SIGKILL)
        result = future.result(timeout=120)
        assert pool.retried == 1 and result.worker != first.worker
        assert pool.workers[0].pid != actor.pid
        # the statement carries the step it was built for: the retried proof is of that job's
        assert tiny_keys.verify("server_step", result.proof, job.statement)
    finally:
        pool.close()


class MisroutingPool:
    """Hands the Ray pool each job as the job of the next step: its workers answer with a real
    proof, of another job."""

    def __init__(self, pool: RayPool):
        self.pool = pool

    def submit(self, job: ProofJob):
        return self.pool.submit(dataclasses.replace(job, step=job.step + 1))

    def close(self) -> None:
        self.pool.close()


def test_a_proof_of_another_job_is_refused_by_the_party(cluster, tiny_keys, case):
    pool = MisroutingPool(RayPool(tiny_keys, 1))
    try:
        prover = Prover(tiny_keys, ProofMode.parse("every"), SESSION, pool)
        with pytest.raises(ProofError, match="step"):
            prover.attach("server_step", STEP, case.statements["server_step"],
                          lambda: case.inputs["server_step"])
        assert prover.prove_seconds == {}          # nothing was taken from the refused result
        # the other job's proof is a real one: refused for being another job's, not for failing
        other = ProofJob(SESSION, "server_step", STEP + 1, case.statements["server_step"],
                         case.inputs["server_step"])
        assert checked(other, pool.pool.submit(other).result(timeout=120))
    finally:
        pool.close()
