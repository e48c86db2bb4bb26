"""The local prover pool: worker processes on this machine (issue 18).

Each worker is a process of its own (a fresh interpreter started on its pool's first jobs: no
torch, no copy of the party's memory) that keeps every key it is given loaded; the mcl prover runs on
``threads`` threads in each (one by default: the pool's parallelism is its processes). A worker
that dies with a job in hand (killed, out of memory) is started again and the job retried.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from multiprocessing.connection import Connection

from ..circuitgen import SplitCircuits
from ..errors import ProverWorkerLost
from ..priority import DEFAULT_PROVER_NICE, check_nice
from ..zk import CircuitKey
from ..zk.kept_keys import KeyIdent
from .workers import DEFAULT_RETRIES, WorkerPool


def default_size() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class ProcessWorker:
    """One worker process and the two pipes to it (started as a fresh interpreter that imports
    the zk layer only: not by multiprocessing, which would import the party's main script)."""

    def __init__(self, slot: int, backend: str | None, threads: int, nice: int):
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", "from splitverify.zk.kept_keys import main; main()",
                 str(to_child_r), str(from_child_w), backend or "-", str(threads),
                 str(nice)],
                pass_fds=(to_child_r, from_child_w), stdin=subprocess.DEVNULL)
        finally:
            os.close(to_child_r)        # the child's ends: only the child holds them now
            os.close(from_child_w)
        self.requests = Connection(to_child_w, readable=False)
        self.answers = Connection(from_child_r, writable=False)
        self.pid = self.process.pid
        self.name = f"process {slot} (pid {self.pid})"

    def _ask(self, request: tuple) -> object:
        try:
            self.requests.send(request)
            status, value = self.answers.recv()     # EOF: the worker died
        except (EOFError, OSError) as exc:
            raise ProverWorkerLost(f"prover {self.name} died (exit code "
                                   f"{self.process.wait(timeout=10)}) with a job in hand") from exc
        if status == "error":
            raise value
        return value

    def load(self, ident: KeyIdent, key: CircuitKey) -> None:
        self._ask(("load", ident, key))

    def prove(self, ident: KeyIdent, inputs: Mapping[str, object]):
        return self._ask(("prove", ident, dict(inputs)))

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        self.requests.close()          # the worker's loop ends on the closed pipe
        self.answers.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class LocalPool(WorkerPool):
    """``size`` worker processes (default: one per core), ``threads`` prover threads each,
    ``nice`` below the party's priority (:mod:`splitverify.priority`)."""

    def __init__(self, circuits: SplitCircuits, size: int | None = None, *,
                 backend: str | None = None, threads: int = 1,
                 nice: int = DEFAULT_PROVER_NICE, retries: int = DEFAULT_RETRIES):
        check_nice(nice)
        super().__init__(circuits, size or default_size(),
                         lambda slot: ProcessWorker(slot, backend, threads, nice),
                         retries=retries, label="local prover pool")
