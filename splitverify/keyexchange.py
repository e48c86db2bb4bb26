"""The per-session key ceremony between the two parties, one circuit at a time:

1. the server takes the circuit's initial key (from the circuit and the ptau: development ptau
   unless one is given; each side computes it itself) and adds its phase-2 contribution;
2. the client downloads that key, checks it against its own initial key (every section that δ
   does not touch is equal, the δ-scaled ones are consistent, every contribution proves
   knowledge of its factor), adds its contribution, checks the result the same way and
   uploads it;
3. the server checks the uploaded key the same way and that its own contribution is in the
   chain, unaltered, followed by exactly one more (the client's).

Neither party alone knows the final δ, so neither can forge a proof the other would accept
(the development ptau's τ is still known to whoever made it: see README, "Security").
The checks are :func:`splitverify.zk.phase2.verify_chain` (native, seconds); ``snarkjs zkey
verify`` accepts the same keys (tested) but recomputes the initial key in JavaScript, minutes
for a RefNet circuit.
"""

from __future__ import annotations

from pathlib import Path

from . import zk
from .circuitgen import KINDS, SplitCircuits
from .errors import SetupError, SplitverifyError
from .zk import phase2
from .zk.ceremony import Contribution


def initial(circuits: SplitCircuits, kind: str) -> zk.CircuitKey:
    return zk.initial_key(circuits.circuit(kind), circuits.ptau, circuits.cache)


def _received(circuits: SplitCircuits, kind: str, data: bytes, path: Path) -> zk.CircuitKey:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    start = initial(circuits, kind)
    return zk.CircuitKey(path, start.circuit, start.ptau_blake2b, start.insecure, [])


def _checked(key: zk.CircuitKey, start: zk.CircuitKey, chain: list[tuple[str, str]]
             ) -> zk.CircuitKey:
    """Verify ``key`` against our initial key; its contributions must be exactly ``chain``
    ((name, hash), with "" for a hash we cannot know in advance)."""
    found = phase2.verify_chain(key, start)
    names = [(c.name, c.hash) for c in found]
    ok = len(found) == len(chain) and all(
        name == want_name and (not want_hash or h == want_hash)
        for (name, h), (want_name, want_hash) in zip(names, chain))
    if not ok:
        changed = [f"{name}'s contribution hash is {h[:16]}…, expected {want[:16]}…"
                   for (name, h), (_, want) in zip(names, chain) if want and h != want]
        if [n for n, _ in names] == [n for n, _ in chain] and changed:
            raise SetupError(f"the {key.circuit.name} key verifies but {'; '.join(changed)} "
                             "(a contribution other than the one announced): refuse it and "
                             "start a new session")
        raise SetupError(f"the {key.circuit.name} key verifies but its contributions are "
                         f"{[n for n, _ in names]} (hashes {[h[:16] for _, h in names]}), "
                         f"expected {[n for n, _ in chain]}: refuse it and start a new session")
    key.transcript = found
    return key


def server_contribute(circuits: SplitCircuits, kind: str, folder: Path
                      ) -> tuple[zk.CircuitKey, str]:
    """Step 1: the server's contribution on top of the initial key."""
    folder.mkdir(parents=True, exist_ok=True)
    return phase2.contribute(initial(circuits, kind), "server", folder / f"{kind}_server.zkey")


def client_contribute(circuits: SplitCircuits, kind: str, server_zkey: bytes, server_hash: str,
                      folder: Path) -> tuple[zk.CircuitKey, str]:
    """Step 2: check the server's key, contribute, check the result; the key is the client's
    key for ``kind`` from now on."""
    start = initial(circuits, kind)
    theirs = _checked(_received(circuits, kind, server_zkey, folder / f"{kind}_server.zkey"),
                      start, [("server", server_hash)])
    key, mine = phase2.contribute(theirs, "client", folder / f"{kind}_final.zkey")
    _checked(key, start, [("server", server_hash), ("client", mine)])
    circuits.use_key(kind, key)
    return key, mine


def server_accept(circuits: SplitCircuits, kind: str, final_zkey: bytes, server_hash: str,
                  folder: Path, client_hash: str = "") -> zk.CircuitKey:
    """Step 3: the client's final key, checked (its contribution's hash must be
    ``client_hash`` when given: the one the client signed); the server's key for ``kind`` from
    now on. A key refused leaves nothing on disk."""
    path = folder / f"{kind}_final.zkey"
    try:
        key = _checked(_received(circuits, kind, final_zkey, path),
                       initial(circuits, kind), [("server", server_hash), ("client", client_hash)])
    except SplitverifyError:
        path.unlink(missing_ok=True)
        raise
    circuits.use_key(kind, key)
    return key


def load_final(circuits: SplitCircuits, kind: str, path: Path, blake2b: str,
               transcript: list[dict]) -> zk.CircuitKey:
    """A final key this party accepted before (a restarted server), unchanged since: its
    blake2b is the one recorded when it was accepted."""
    start = initial(circuits, kind)
    if not path.is_file():
        raise SetupError(f"the session's {kind} key {path} is gone; the session cannot resume")
    key = zk.CircuitKey(path, start.circuit, start.ptau_blake2b, start.insecure,
                        [Contribution(**c) for c in transcript])
    key.check_integrity(blake2b)
    circuits.use_key(kind, key)
    return key


def local_ceremony(server_circuits: SplitCircuits, client_circuits: SplitCircuits,
                   session_id: int, server_identity, client_identity, folder: Path
                   ) -> dict[str, dict[str, str]]:
    """Both parties' halves of every circuit's ceremony in one process (``run_local`` sessions:
    tests, benchmarks), each contribution signed by its party's identity. Returns circuit →
    contributor → signature, what ``protocol.new_transcript`` records."""
    from .keyorigin import sign_contribution

    signatures = {}
    for kind in KINDS:
        server_key, server_hash = server_contribute(server_circuits, kind, folder / "server")
        client_key, client_hash = client_contribute(client_circuits, kind,
                                                    server_key.zkey.read_bytes(), server_hash,
                                                    folder / "client")
        server_accept(server_circuits, kind, client_key.zkey.read_bytes(), server_hash,
                      folder / "server", client_hash)
        signatures[kind] = {
            "server": sign_contribution(server_identity, session_id, kind, 1, "server",
                                        server_hash),
            "client": sign_contribution(client_identity, session_id, kind, 2, "client",
                                        client_hash)}
    return signatures
