"""A prover pool of background threads in the party's own process: proofs overlap training
(the mcl prover and the witness calculator release the GIL while they compute), with no second
copy of the keys. What ``pipelined:W`` needs to prove off the critical path in one process."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

from ..circuitgen import SplitCircuits
from ..errors import InputError
from ..protocol.policy import proves_later
from ..protocol.wire import ProofMode
from . import ProofJob, ProofResult, load_keys_here
from ..priority import DEFAULT_PROVER_NICE, check_nice, lower_this_thread


class ThreadPool:
    """Proves each job on one of ``workers`` background threads, ``nice`` below the party's
    priority (:mod:`.priority`); ``submit`` returns at once."""

    proves_in_process = True

    def __init__(self, circuits: SplitCircuits, backend: str | None = None, workers: int = 1,
                 nice: int = DEFAULT_PROVER_NICE):
        if workers < 1:
            raise InputError(f"a thread pool needs at least one worker thread, not {workers}")
        self.circuits, self.backend = circuits, backend
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sv-prover",
                                            initializer=lower_this_thread,
                                            initargs=(check_nice(nice),))
        # a circuit's key is made or loaded on first use: once, not by two threads at a time
        self._key_lock = threading.Lock()

    def submit(self, job: ProofJob) -> Future[ProofResult]:
        return self._executor.submit(self._prove, job)

    def warm(self, kinds: tuple[str, ...]) -> None:
        with self._key_lock:
            load_keys_here(self.circuits, kinds, self.backend)

    def _prove(self, job: ProofJob) -> ProofResult:
        with self._key_lock:
            self.circuits.key(job.kind)
        start = time.perf_counter()
        proof, statement = self.circuits.prove(job.kind, job.inputs, self.backend)
        return ProofResult(job.session_id, job.kind, job.step, statement, proof,
                           time.perf_counter() - start, threading.current_thread().name)

    def close(self) -> None:
        """Finish the jobs already submitted, then stop the threads."""
        self._executor.shutdown(wait=True)


def background_pool(mode: ProofMode, circuits: SplitCircuits, backend: str | None = None
                    ) -> ThreadPool | None:
    """A party's pool by default: one background prover thread where proofs are made off the
    critical path (``pipelined:W``); None (the party proves inline) otherwise."""
    return ThreadPool(circuits, backend) if proves_later(mode) else None
