"""The local prover pool: worker processes on this machine (issue 18).

Each worker is a process of its own (started on its pool's first jobs, by ``spawn``: no torch,
no copy of the party's memory) that keeps every key it is given loaded; the mcl prover runs on
``threads`` threads in each (one by default: the pool's parallelism is its processes). A worker
that dies with a job in hand (killed, out of memory) is started again and the job retried.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Mapping
from multiprocessing.connection import wait

from ..circuitgen import SplitCircuits
from ..errors import ProverWorkerLost
from ..zk import CircuitKey
from ..zk.kept_keys import KeyIdent, serve
from .workers import DEFAULT_RETRIES, WorkerPool


def default_size() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class ProcessWorker:
    """One worker process and the pipe to it."""

    def __init__(self, slot: int, backend: str | None, threads: int):
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=serve, args=(child, backend, threads),
                                       name=f"splitverify prover {slot}", daemon=True)
        self.process.start()
        child.close()
        self.pid = self.process.pid
        self.name = f"process {slot} (pid {self.pid})"

    def _ask(self, request: tuple) -> object:
        try:
            self.conn.send(request)
            ready = wait([self.conn, self.process.sentinel])
            if self.conn not in ready and not self.conn.poll():
                raise EOFError
            status, value = self.conn.recv()
        except (EOFError, OSError) as exc:
            self.process.join(timeout=5)
            raise ProverWorkerLost(f"prover {self.name} died (exit code "
                                   f"{self.process.exitcode}) with a job in hand") from exc
        if status == "error":
            raise value
        return value

    def load(self, ident: KeyIdent, key: CircuitKey) -> None:
        self._ask(("load", ident, key))

    def prove(self, ident: KeyIdent, inputs: Mapping[str, object]):
        return self._ask(("prove", ident, dict(inputs)))

    def stop(self) -> None:
        self.conn.close()          # the worker's loop ends on the closed pipe
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


class LocalPool(WorkerPool):
    """``size`` worker processes (default: one per core), ``threads`` prover threads each."""

    def __init__(self, circuits: SplitCircuits, size: int | None = None, *,
                 backend: str | None = None, threads: int = 1,
                 retries: int = DEFAULT_RETRIES):
        super().__init__(circuits, size or default_size(),
                         lambda slot: ProcessWorker(slot, backend, threads), retries=retries,
                         label="local prover pool")
