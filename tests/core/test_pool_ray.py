"""The Ray prover pool (splitverify.pool.ray_pool), on a real local Ray cluster started once for
this module (two CPUs, loopback): a tiny session proven on it in ``every`` mode, an actor killed
with a job in hand and its job retried, and a result for another job refused by the party."""

from __future__ import annotations

import dataclasses
import os
import signal

import pytest

from splitverify.errors import ProofError
from splitverify.pool import ProofJob, checked
from splitverify.protocol import ProofMode
from splitverify.protocol.parties import Prover

from conftest import TINY_SPEC
from split_cases import SESSION, STEP, random_case
from pooled import session_on_pools, wait_for

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
    def each_actor_took_each_key_once(pools):       # once for all the steps
        assert (pools[0].key_loads, pools[1].key_loads) == (2, 1)

    session_on_pools(tiny_keys, [RayPool(tiny_keys, 1), RayPool(tiny_keys, 1)],
                     each_actor_took_each_key_once)


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
