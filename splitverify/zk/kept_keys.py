"""A prover that keeps the keys it is given: the body of a prover pool's worker (a process of
:mod:`splitverify.pool.local`, an actor of :mod:`splitverify.pool.ray_pool`).

A key reaches a worker once, as a path (the worker reads and keeps it; jobs then name it by its
identity), and each job brings only its witness inputs: the witness is computed here, beside the
proof. This module imports the zk layer only (no torch), so a worker starts in well under a
second.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from multiprocessing.connection import Connection
from pathlib import Path

from ..errors import InputError, IntegrityError, ProofError, SplitverifyError
from ..priority import check_nice, lower_this_thread
from .ceremony import CircuitKey
from .mcl_prover import ENV_THREADS
from .models import Proof, PublicSignals
from .prover import get_prover
from .witness import prepare_witness

# a key file as the party sees it: (resolved path, mtime, size); a worker refuses a file that
# differs (another machine's file under the same path, a key replaced since)
KeyIdent = tuple[str, float, int]


def key_ident(key: CircuitKey) -> KeyIdent:
    path = Path(key.zkey).resolve()
    stat = path.stat()
    return (str(path), stat.st_mtime, stat.st_size)


class KeptKeysProver:
    """Proves with ``backend`` on ``threads`` threads, with the keys it was given kept loaded;
    made in the thread it proves in, which it lowers by ``nice`` (:mod:`splitverify.priority`)."""

    def __init__(self, backend: str | None, threads: int, nice: int = 0):
        if threads < 1:
            raise InputError(f"a prover worker needs at least one thread, not {threads}")
        lower_this_thread(check_nice(nice))
        # this process is the worker's own: its mcl prover (made on first use) takes this many
        os.environ[ENV_THREADS] = str(threads)
        self.backend = backend
        self.keys: dict[KeyIdent, CircuitKey] = {}

    def pid(self) -> int:
        return os.getpid()

    def load(self, ident: KeyIdent, key: CircuitKey) -> float:
        """Read ``key`` (and ready its witness calculator) once; seconds it took."""
        start = time.perf_counter()
        path = Path(ident[0])
        if not path.is_file():
            raise IntegrityError(f"the proving key {path} is not on the prover worker "
                                 f"(pid {os.getpid()}): put the keys on a path every worker "
                                 "reads (e.g. $SPLITVERIFY_CACHE on a shared file system)")
        stat = path.stat()
        if (stat.st_mtime, stat.st_size) != ident[1:]:
            raise IntegrityError(f"the proving key {path} on the prover worker (pid "
                                 f"{os.getpid()}) is not the party's (its size or time differ): "
                                 "give the workers the party's key on a shared path")
        prover = get_prover(self.backend)
        if hasattr(prover, "load"):
            prover.load(key)
        prepare_witness(key.circuit)
        self.keys[ident] = key
        return time.perf_counter() - start

    def prove(self, ident: KeyIdent, inputs: Mapping[str, object]
              ) -> tuple[Proof, PublicSignals, float]:
        """The witness of ``inputs`` and its proof with the kept key ``ident``; seconds of both."""
        from . import prove

        key = self.keys.get(ident)
        if key is None:
            raise InputError(f"the prover worker (pid {os.getpid()}) was not given the key "
                             f"{ident[0]} before a job that needs it")
        start = time.perf_counter()
        proof, public = prove(key, inputs, self.backend)
        return proof, public, time.perf_counter() - start


def serve(requests: Connection, answers: Connection, backend: str | None, threads: int,
          nice: int = 0) -> None:
    """A worker process's loop: ("load", ident, key) and ("prove", ident, inputs) requests, each
    answered ("ok", value) or ("error", exception); ends when the party closes the pipe."""
    prover = KeptKeysProver(backend, threads, nice)
    while True:
        try:
            request = requests.recv()
        except EOFError:
            return
        op, ident, arg = request
        try:
            answer = prover.load(ident, arg) if op == "load" else prover.prove(ident, arg)
        except SplitverifyError as exc:
            answers.send(("error", exc))
            continue
        except Exception as exc:  # noqa: BLE001 — the party raises it; this worker goes on
            answers.send(("error", ProofError(f"the prover worker (pid {os.getpid()}) failed: "
                                           f"{type(exc).__name__}: {exc}")))
            continue
        answers.send(("ok", answer))


def main() -> None:
    """``python -c 'from splitverify.zk.kept_keys import main; main()' REQUESTS_FD ANSWERS_FD
    BACKEND THREADS NICE``: a local pool's worker (started so, not by multiprocessing, so that the
    party's main script is never imported again in the worker)."""
    import sys

    requests_fd, answers_fd, backend, threads, nice = sys.argv[1:6]
    serve(Connection(int(requests_fd), writable=False), Connection(int(answers_fd), readable=False),
          None if backend == "-" else backend, int(threads), int(nice))
