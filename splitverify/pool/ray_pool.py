"""The Ray prover pool: the same workers as the local pool, as Ray actors (issue 18).

``address="auto"`` joins the cluster this machine belongs to (one started by ``ray start``, or
by this process) or starts a local one; any other address joins that cluster. Each actor keeps
the keys it is given, by path: the keys must be on a path every node reads (on one machine they
are; on a cluster, a shared file system for ``$SPLITVERIFY_CACHE`` and the session keys). An
actor that dies with a job in hand is replaced and the job retried; the party uses a result only
once :func:`splitverify.pool.checked` has matched it to its job.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..circuitgen import SplitCircuits
from ..errors import InputError, ProverWorkerLost
from ..priority import DEFAULT_PROVER_NICE, check_nice
from ..zk import CircuitKey
from ..zk.kept_keys import KeptKeysProver, KeyIdent
from .workers import DEFAULT_RETRIES, WorkerPool

INSTALL_HINT = "pip install 'splitverify[ray]'"


def _ray():
    try:
        import ray
    except ImportError as exc:
        raise InputError(f"the Ray prover pool needs Ray: {INSTALL_HINT}") from exc
    return ray


def connect(address: str) -> None:
    """Join the cluster at ``address`` (``auto``: this machine's, started here if none runs);
    nothing to do when this process is connected already."""
    ray = _ray()
    if ray.is_initialized():
        return
    try:
        if address == "auto":
            ray.init(include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise InputError(f"could not join the Ray cluster at {address!r}: {exc}; start one with "
                         "`ray start --head` (or give --ray auto to start one here)") from exc


class ActorWorker:
    """One Ray actor that keeps its keys (a :class:`KeptKeysProver`)."""

    def __init__(self, slot: int, backend: str | None, threads: int, nice: int):
        ray = _ray()
        self._ray = ray
        self.actor = ray.remote(num_cpus=threads, max_restarts=0)(KeptKeysProver).remote(
            backend, threads, nice)
        self.name = f"ray actor {slot}"
        self.pid = self._call(self.actor.pid.remote())
        self.name = f"ray actor {slot} (pid {self.pid})"

    def _call(self, ref):
        ray = self._ray
        try:
            return ray.get(ref)
        except ray.exceptions.RayActorError as exc:
            raise ProverWorkerLost(f"prover {self.name} died with a job in hand "
                                   f"({type(exc).__name__})") from exc
        except ray.exceptions.RayTaskError as exc:
            # the worker's own error (a witness that fails, a key not on its node), as raised
            raise exc.cause from None

    def load(self, ident: KeyIdent, key: CircuitKey) -> None:
        self._call(self.actor.load.remote(ident, key))

    def prove(self, ident: KeyIdent, inputs: Mapping[str, object]):
        return self._call(self.actor.prove.remote(ident, dict(inputs)))

    def stop(self) -> None:
        self._ray.kill(self.actor)


class RayPool(WorkerPool):
    """``size`` Ray actors of ``threads`` CPUs (prover threads) each, on the cluster at
    ``address``, ``nice`` below a normal process's priority (:mod:`splitverify.priority`)."""

    def __init__(self, circuits: SplitCircuits, size: int, *, address: str = "auto",
                 backend: str | None = None, threads: int = 1,
                 nice: int = DEFAULT_PROVER_NICE, retries: int = DEFAULT_RETRIES):
        check_nice(nice)
        connect(address)
        super().__init__(circuits, size, lambda slot: ActorWorker(slot, backend, threads, nice),
                         retries=retries, label=f"Ray prover pool ({address})")
