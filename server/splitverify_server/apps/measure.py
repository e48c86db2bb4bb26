"""What the measuring commands (``bench``, ``compare``) share, below both: a spec's circuits with
their keys made before any clock starts, a fresh local session's two parties, and the machine
the figures come from."""

from __future__ import annotations

import os
import platform
from collections.abc import Callable

from splitverify.circuitgen import KINDS, SplitCircuits
from splitverify.model import SplitSpec
from splitverify.protocol import ProofMode


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def keyed_circuits(spec: SplitSpec, progress: Callable[[str], None]) -> SplitCircuits:
    """``spec``'s three circuits with their keys made now (compile and development setup come
    from the cache after the first run; the phase-2 contributions are fresh), so that no
    clock started later counts them. A run makes them once for all its measures."""
    circuits = SplitCircuits(spec, contributors=("bench-server", "bench-client"))
    for kind in KINDS:
        progress(f"{kind}: key (compile and dev setup cached after the first run)")
        circuits.key(kind)
    return circuits


def local_parties(spec: SplitSpec, circuits: SplitCircuits, mode: ProofMode | str, *,
                  malicious: str | None = None, seed: int = 0):
    """A fresh session's client and server (for ``run_local``): initial weights of ``seed``,
    the default prover (``zk.get_prover``), ``malicious`` played by the side it names."""
    from splitverify.protocol import random_field, scenarios
    from splitverify.refnet import initial_params

    client_params, server_params = initial_params(spec, seed)
    session, mode = random_field(), ProofMode.of(mode)
    if malicious is not None:
        scenarios.get(malicious)                # an unknown scenario is refused
    client = scenarios.party_class("client", malicious)(spec, session, mode, client_params,
                                                        circuits, backend=None)
    server = scenarios.party_class("server", malicious)(spec, session, mode, server_params,
                                                        circuits, backend=None)
    return client, server
