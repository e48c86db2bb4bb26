"""The local prover pool (splitverify.pool.local): worker processes that load each key once,
prove whole sessions in ``every`` mode, and retry the job of a worker killed with it in hand."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from splitverify.circuitgen import KINDS
from splitverify.errors import SplitverifyError
from splitverify.pool import ProofJob, checked
from splitverify.pool.local import LocalPool

from conftest import TINY_SPEC
from pooled import session_on_pools, wait_for
from split_cases import SESSION, STEP, random_case


@pytest.fixture(scope="module")
def case():
    return random_case(TINY_SPEC, 11)


def job_of(case, kind: str, step: int = STEP) -> ProofJob:
    return ProofJob(SESSION, kind, step, case.statements[kind], case.inputs[kind])


def test_two_workers_prove_every_kind_loading_each_key_once_per_worker(tiny_keys, case):
    pool = LocalPool(tiny_keys, 2)
    try:
        jobs = [job_of(case, kind) for kind in KINDS for _ in range(3)]
        results = [checked(job, future.result(timeout=120))
                   for job, future in [(job, pool.submit(job)) for job in jobs]]
        for job, result in zip(jobs, results):
            assert tiny_keys.verify(job.kind, result.proof, job.statement)
            assert result.worker.startswith("process") and result.seconds > 0
        # nine jobs, three keys, two workers: no worker was given a key twice
        assert 3 <= pool.key_loads <= 2 * len(KINDS)
        assert len({r.worker for r in results}) == 2
        workers = list(pool.workers.values())
    finally:
        pool.close()
    # closed, the pool has stopped its processes; a later job starts a worker again
    assert pool.workers == {} and not any(worker.alive() for worker in workers)
    try:
        assert checked(jobs[0], pool.submit(jobs[0]).result(timeout=120))
    finally:
        pool.close()


def test_a_worker_killed_with_a_job_in_hand_has_the_job_retried(tiny_keys, case):
    pool = LocalPool(tiny_keys, 1)
    try:
        first = pool.submit(job_of(case, "server_step")).result(timeout=120)
        worker = pool.workers[0]
        # stopped, the worker takes the next job off its pipe but cannot answer it: it dies
        # with the job in hand, every time
        os.kill(worker.pid, signal.SIGSTOP)
        job = job_of(case, "server_step", STEP + 1)
        future = pool.submit(job)
        wait_for(lambda: pool.in_flight.get((SESSION, "server_step", STEP + 1)),
                 "the job to reach the worker")
        os.kill(worker.pid, signal.SIGKILL)
        result = checked(job, future.result(timeout=120))
        assert pool.retried == 1 and result.worker != first.worker
        assert tiny_keys.verify("server_step", result.proof, job.statement)
        assert str(worker.pid) not in result.worker and pool.workers[0].pid != worker.pid
    finally:
        pool.close()


def test_a_job_the_worker_cannot_prove_fails_with_the_reason_and_the_worker_goes_on(tiny_keys,
                                                                                     case):
    pool = LocalPool(tiny_keys, 1)
    try:
        bad = dict(case.inputs["server_step"])
        bad.pop(next(iter(bad)))
        job = ProofJob(SESSION, "server_step", STEP, case.statements["server_step"], bad)
        with pytest.raises(SplitverifyError, match="input|signal"):
            pool.submit(job).result(timeout=120)
        assert pool.retried == 0
        good = job_of(case, "server_step")
        assert checked(good, pool.submit(good).result(timeout=120))
    finally:
        pool.close()


def test_a_tiny_session_in_every_mode_proves_on_the_pool_like_inline(tiny_keys):
    session_on_pools(tiny_keys, [LocalPool(tiny_keys, 1), LocalPool(tiny_keys, 1)])


def test_provers_run_below_the_partys_priority(tiny_keys, case):
    """Background proving yields to training: a local pool's worker processes and a thread
    pool's prover thread run at the party's nice value + 10 (the default) or + what is asked."""
    from splitverify.pool.threads import ThreadPool

    party_nice = os.getpriority(os.PRIO_PROCESS, 0)
    pool = LocalPool(tiny_keys, 1, nice=5)
    try:
        checked(job_of(case, "client_forward"),
                pool.submit(job_of(case, "client_forward")).result(timeout=120))
        assert os.getpriority(os.PRIO_PROCESS, pool.workers[0].pid) == min(19, party_nice + 5)
    finally:
        pool.close()
    threads = ThreadPool(tiny_keys)
    try:
        seen = threads._executor.submit(
            lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())).result(60)
        assert seen == min(19, party_nice + 10)
        # the party's own thread is untouched
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == party_nice
    finally:
        threads.close()
    with pytest.raises(SplitverifyError, match="nice value 20"):
        LocalPool(tiny_keys, 1, nice=20)
