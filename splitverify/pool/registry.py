"""Which prover pool a party proves on, chosen by name or by the commands' flags
(``--provers N``, ``--ray auto|ADDRESS``).

:class:`PoolChoice` is the choice, checked when it is made (before any session starts): it makes
one pool per party (``make(circuits)``), which the party's owner closes when its session ends.
Other pools register a factory under a name with :func:`register_pool`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..circuitgen import SplitCircuits
from ..errors import InputError
from . import InlinePool, ProverPool

# name -> factory(circuits, workers, backend, threads, address)
PoolFactory = Callable[[SplitCircuits, int, "str | None", int, "str | None"], ProverPool]
_POOLS: dict[str, PoolFactory] = {}


def register_pool(name: str, factory: PoolFactory) -> None:
    _POOLS[name] = factory


def _local(circuits, workers, backend, threads, _address):
    from .local import LocalPool

    return LocalPool(circuits, workers, backend=backend, threads=threads)


def _ray(circuits, workers, backend, threads, address):
    from .local import default_size
    from .ray_pool import RayPool

    return RayPool(circuits, workers or default_size(), address=address or "auto",
                   backend=backend, threads=threads)


register_pool("inline", lambda circuits, _w, backend, _t, _a: InlinePool(circuits, backend))
register_pool("local", _local)
register_pool("ray", _ray)


def get_pool(name: str, circuits: SplitCircuits, *, workers: int = 0,
             backend: str | None = None, threads: int = 1,
             address: str | None = None) -> ProverPool:
    """The pool called ``name`` (``inline``, ``local``, ``ray`` or a registered one) for
    ``circuits``: ``workers`` of ``threads`` prover threads each (0: one per core)."""
    if name not in _POOLS:
        raise InputError(f"unknown prover pool {name!r}: choose one of {sorted(_POOLS)}")
    return _POOLS[name](circuits, workers, backend, threads, address)


@dataclass(frozen=True)
class PoolChoice:
    """The commands' flags: ``provers`` local processes (0: prove inline), or ``ray`` (``auto``
    or a cluster's address) with ``provers`` actors (0: one per core here)."""
    provers: int = 0
    ray: str | None = None
    threads: int = 1
    backend: str | None = None

    def __post_init__(self):
        if self.provers < 0:
            raise InputError(f"--provers {self.provers}: give a number of prover processes "
                             "(0 proves in the party's own thread)")
        if self.threads < 1:
            raise InputError(f"--prover-threads {self.threads}: give at least 1")
        if self.ray is not None and not self.ray.strip():
            raise InputError("--ray needs `auto` or a Ray cluster's address (host:port or "
                             "ray://host:port)")

    @property
    def name(self) -> str:
        return "ray" if self.ray is not None else "local" if self.provers else "inline"

    def connect(self) -> None:
        """Join the Ray cluster now (if any), so that a bad address fails before a session."""
        if self.ray is not None:
            from .ray_pool import connect

            connect(self.ray)

    @property
    def factory(self) -> Callable[[SplitCircuits], ProverPool] | None:
        """What the parties are given: None when no pool was asked for, so each party keeps
        its default (inline, or a background thread where proofs are made later)."""
        return None if self.name == "inline" else self.make

    def make(self, circuits: SplitCircuits) -> ProverPool:
        return get_pool(self.name, circuits, workers=self.provers, backend=self.backend,
                        threads=self.threads, address=self.ray)

    def describe(self) -> str:
        if self.name == "inline":
            return "inline (the party's own thread)"
        where = f"Ray ({self.ray})" if self.ray is not None else "local processes"
        count = self.provers or "one per core"
        return f"{where}: {count} worker(s), {self.threads} prover thread(s) each"
