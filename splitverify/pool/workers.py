"""A prover pool over a fixed number of workers, whatever they are (processes, Ray actors).

One dispatcher thread per worker slot takes jobs from one queue, starts its worker on its first
job, hands it each key once (then only the witness inputs of each job) and turns its answer into
a :class:`ProofResult`. A worker that dies with a job in hand is replaced and the job goes back
on the queue (at most ``retries`` times); any other failure reaches the job's waiter as is.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol

from ..circuitgen import SplitCircuits, Statement
from ..errors import InputError, ProofError, ProverWorkerLost
from ..zk import CircuitKey, Proof, PublicSignals
from ..zk.kept_keys import KeyIdent, key_ident
from . import ProofJob, ProofResult

DEFAULT_RETRIES = 2


class Worker(Protocol):
    """One worker of a pool; ``load`` and ``prove`` raise ProverWorkerLost if it dies."""
    name: str

    def load(self, ident: KeyIdent, key: CircuitKey) -> None: ...

    def prove(self, ident: KeyIdent, inputs: Mapping[str, object]
              ) -> tuple[Proof, PublicSignals, float]: ...

    def stop(self) -> None: ...


@dataclass
class _Queued:
    job: ProofJob
    key: CircuitKey
    ident: KeyIdent
    future: Future
    attempts: int = 0


@dataclass
class _Warm:
    """An order to every slot: start the worker and give it these keys (``warm``)."""
    keys: dict[KeyIdent, CircuitKey]
    all_taken: threading.Barrier     # a slot waits here, so that each takes exactly one order
    done: Future


class _Slot:
    """One slot's worker (started when first needed) and the keys it was given."""

    def __init__(self, pool: "WorkerPool", index: int):
        self.pool, self.index = pool, index
        self.worker: Worker | None = None
        self.loaded: set[KeyIdent] = set()

    def ready(self, keys: Mapping[KeyIdent, CircuitKey]) -> Worker:
        """The worker, started if none runs, holding ``keys`` (each given once)."""
        if self.worker is None:
            self.worker, self.loaded = self.pool._start_worker(self.index), set()
            self.pool.workers[self.index] = self.worker
        for ident in keys.keys() - self.loaded:
            self.worker.load(ident, keys[ident])
            self.loaded.add(ident)
            with self.pool._lock:
                self.pool.key_loads += 1
        return self.worker

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.worker = None
            self.pool.workers.pop(self.index, None)


class WorkerPool:
    """``size`` workers made by ``start_worker(slot)``, started on the first job after the pool
    was made or closed: ``close`` releases them (a party closes its pool when its session
    ends), and a later job starts them again."""

    def __init__(self, circuits: SplitCircuits, size: int,
                 start_worker: Callable[[int], Worker], *, retries: int = DEFAULT_RETRIES,
                 label: str = "prover pool"):
        if size < 1:
            raise InputError(f"a {label} needs at least one worker, not {size}")
        self.circuits, self.size, self.retries, self.label = circuits, size, retries, label
        self._start_worker = start_worker
        self._lock = threading.Lock()
        # the running slots' queue and threads (None: stopped); each start has its own queue, so
        # that close's end marks reach exactly the threads they stop
        self._queue: queue.Queue[_Queued | _Warm | None] | None = None
        self._threads: list[threading.Thread] = []
        self.workers: dict[int, Worker] = {}              # slot -> its live worker
        self.in_flight: dict[tuple[int, str, int], str] = {}  # (session, kind, step) -> worker
        self.retried = 0                                  # jobs put back after a worker died
        self.key_loads = 0                                # keys handed to a worker

    def submit(self, job: ProofJob) -> Future[ProofResult]:
        future: Future[ProofResult] = Future()
        key = self.circuits.key(job.kind)
        self._put(_Queued(job, key, key_ident(key), future))
        return future

    def warm(self, kinds: tuple[str, ...]) -> None:
        """Start every worker and give each the keys of ``kinds`` now, so that no proof's clock
        pays a start or a key load."""
        keys = {key_ident(key): key for key in map(self.circuits.key, kinds)}
        barrier = threading.Barrier(self.size)
        orders = [_Warm(keys, barrier, Future()) for _ in range(self.size)]
        for order in orders:
            self._put(order)
        for order in orders:
            order.done.result()

    def _put(self, item: _Queued | _Warm) -> None:
        with self._lock:
            if self._queue is None:
                self._queue = queue.Queue()
                self._threads = [threading.Thread(target=self._serve_slot,
                                                  args=(slot, self._queue),
                                                  name=f"{self.label} slot {slot}", daemon=True)
                                 for slot in range(self.size)]
                for thread in self._threads:
                    thread.start()
            self._queue.put(item)

    def _serve_slot(self, index: int, jobs: queue.Queue[_Queued | _Warm | None]) -> None:
        slot = _Slot(self, index)
        while (item := jobs.get()) is not None:
            if isinstance(item, _Warm):
                try:
                    slot.ready(item.keys)
                    item.all_taken.wait()
                    item.done.set_result(None)
                except Exception as exc:  # noqa: BLE001 — handed to warm's caller
                    item.all_taken.abort()       # the other slots do not wait for this one
                    item.done.set_exception(exc)
                continue
            # a retried job's future is running already (its waiter may not cancel it any more)
            if item.attempts == 0 and not item.future.set_running_or_notify_cancel():
                continue
            job = item.job
            try:
                worker = slot.ready({item.ident: item.key})
                self.in_flight[(job.session_id, job.kind, job.step)] = worker.name
                proof, public, seconds = worker.prove(item.ident, job.inputs)
                item.future.set_result(ProofResult(
                    job.session_id, job.kind, job.step,
                    Statement.from_signals(job.kind, public, "labelTable" in job.statement.values),
                    proof, seconds, worker.name))
            except ProverWorkerLost as lost:
                slot.stop()
                self._retry(item, lost, jobs)
            except Exception as exc:  # noqa: BLE001 — handed to the waiter, who re-raises it
                item.future.set_exception(exc)
            finally:
                self.in_flight.pop((job.session_id, job.kind, job.step), None)
        slot.stop()

    def _retry(self, item: _Queued, lost: ProverWorkerLost,
               jobs: queue.Queue[_Queued | _Warm | None]) -> None:
        item.attempts += 1
        if item.attempts > self.retries:
            item.future.set_exception(ProverWorkerLost(
                f"{lost}; the job for {item.job.kind} step {item.job.step} was tried on "
                f"{item.attempts} workers of the {self.label} and each died: check the workers' "
                "memory and logs"))
            return
        self.retried += 1
        jobs.put(item)      # after close's end marks it is failed by close, not lost

    def close(self) -> None:
        """Stop the workers once the jobs already submitted are done."""
        with self._lock:
            jobs, threads = self._queue, self._threads
            self._queue, self._threads = None, []
            if jobs is None:
                return
            for _ in threads:
                jobs.put(None)
        for thread in threads:
            thread.join()
        while not jobs.empty():
            item = jobs.get_nowait()
            if isinstance(item, _Queued) and not item.future.done():
                item.future.set_exception(ProofError(
                    f"the {self.label} was closed before {item.job.kind} step {item.job.step} "
                    "was proven (its worker had died with it)"))
