"""Prover pools: where a statement's proof is made, behind one interface (issue 18).

A party hands a pool a :class:`ProofJob` — which session, circuit and step, the statement the
party has already sent (or will send) and the witness inputs kept for it — and gets back a
``concurrent.futures.Future`` of a :class:`ProofResult`. The party uses a result only after
:func:`checked` has matched it to its job: a worker cannot hand back another step's proof, or a
proof of another statement, and have it sent.

:class:`InlinePool` proves in the calling thread (the behaviour of ``every`` before pools); other
pools (worker processes, Ray) register here by name.
"""

from __future__ import annotations

import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Mapping, Protocol

from ..circuitgen import SplitCircuits
from ..circuitgen.statements import Statement
from ..errors import ProofError
from .. import zk
from ..zk import Proof


@dataclass(frozen=True)
class ProofJob:
    """One proof to make: of ``statement`` (circuit ``kind``) at ``step`` of ``session_id``."""
    session_id: int
    kind: str
    step: int
    statement: Statement
    inputs: Mapping[str, object]


@dataclass(frozen=True)
class ProofResult:
    """What a worker hands back: the proof and the statement its public signals carry."""
    session_id: int
    kind: str
    step: int
    statement: Statement
    proof: Proof
    seconds: float          # the worker's own proving time (witness + proof)
    worker: str             # who proved it, for reports (e.g. "inline", "process 2", a Ray node)


class ProverPool(Protocol):
    """Makes proofs; ``submit`` returns at once, the future completes when the proof is made."""

    def submit(self, job: ProofJob) -> Future[ProofResult]: ...

    def warm(self, kinds: tuple[str, ...]) -> None:
        """Load the keys of ``kinds`` where the proofs will be made, now."""

    def close(self) -> None: ...


def warm_in_process(pool: ProverPool, kinds: tuple[str, ...]) -> None:
    """``pool.warm(kinds)`` where the pool proves in this process (inline or on its own
    threads). A worker pool (processes, Ray actors) is warmed by whoever starts it: a shared
    pool's workers may be busy with other sessions' proofs, which a new session's start should
    not wait for."""
    if getattr(pool, "proves_in_process", False):
        pool.warm(kinds)


def load_keys_here(circuits: SplitCircuits, kinds: tuple[str, ...], backend: str | None) -> None:
    """The keys of ``kinds`` loaded into this process's ``backend`` prover now, so that no
    proof's clock pays the load (snarkjs keeps no key: nothing to load)."""
    load = getattr(zk.get_prover(backend), "load", None)
    if load is not None:
        for kind in kinds:
            load(circuits.key(kind))


def checked(job: ProofJob, result: ProofResult) -> ProofResult:
    """``result`` if it is the proof of exactly ``job`` (session, circuit, step, statement);
    ProofError naming the first field that differs otherwise."""
    for name in ("session_id", "kind", "step"):
        if getattr(result, name) != getattr(job, name):
            raise ProofError(f"a prover worker answered the job for {job.kind} step {job.step} "
                             f"of session {job.session_id} with a result whose {name} is "
                             f"{getattr(result, name)!r}, not {getattr(job, name)!r}; the result "
                             "is discarded")
    if result.statement != job.statement:
        differ = sorted(k for k in job.statement.values
                        if result.statement.values.get(k) != job.statement.values[k])
        raise ProofError(f"a prover worker's proof of {job.kind} step {job.step} proves another "
                         f"statement (differs in {', '.join(differ) or 'its circuit'}); the "
                         "result is discarded")
    return result


class InlinePool:
    """Proves in the caller's thread: ``submit`` returns a future that is already done."""

    proves_in_process = True

    def __init__(self, circuits: SplitCircuits, backend: str | None = None):
        self.circuits, self.backend = circuits, backend

    def submit(self, job: ProofJob) -> Future[ProofResult]:
        done: Future[ProofResult] = Future()
        start = time.perf_counter()
        try:
            proof, statement = self.circuits.prove(job.kind, job.inputs, self.backend)
        except Exception as exc:  # noqa: BLE001 — handed to the waiter, who re-raises it
            done.set_exception(exc)
            return done
        done.set_result(ProofResult(job.session_id, job.kind, job.step, statement, proof,
                                    time.perf_counter() - start, "inline"))
        return done

    def warm(self, kinds: tuple[str, ...]) -> None:
        load_keys_here(self.circuits, kinds, self.backend)

    def close(self) -> None:
        """Nothing to release: the caller's thread did the work."""
