"""The Aggregate circuit's key ceremony (SplitFed-V1, ``--aggregate``): one key per run, shared
by the server (the aggregator, who proves the averages) and the K clients (who verify them).

The server takes the circuit's initial key and adds its phase-2 contribution; then each client
in turn checks the key it is handed (``phase2.verify_chain`` against its own initial key) and
adds its own (fresh OS randomness each, ``phase2.contribute``). Every contribution is named by
its contributor's address and signed by that identity for the run (``keyorigin``'s
contribution payload: run id, circuit, index, name, hash). Nobody knows the final δ unless the
server and every client collude, so the server cannot forge an average proof alone.

:func:`check_aggregate_key` is what a client checks before it trusts a round, and what
``audit`` checks of a transcript: the record is complete and well formed, the first
contribution is the server's pinned identity's, the client's own signed contribution is in
it, every contribution is signed by the identity it names, the δ chain holds from the
generator (``keyorigin.check_delta_chain``) and the verification key's δ is the chain's last.
As for the other circuits without ``audit --ptau``, α, β, γ and the IC points are not
re-derived: whoever made the ptau may know a trapdoor (the development ptau's τ is known).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import zk
from .circuitgen import AGGREGATE, SplitCircuits
from .errors import SetupError, SplitverifyError
from .keyexchange import initial
from .keyorigin import (KeyRefused, ceremony_record, check_delta, check_delta_chain,
                        contribution_signed, key_origin, recorded_contribution,
                        sign_contribution)
from .zk import phase2
from .zk.curve import G2_GENERATOR


@dataclass
class AggregateCeremony:
    """The ceremony in progress: the key with every contribution so far (used by
    ``circuits`` once final) and each contributor's signature (address → signature)."""
    circuits: SplitCircuits
    run: int                       # the run the contributions are signed for
    folder: Path
    key: zk.CircuitKey | None = None
    signatures: dict[str, str] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """What the transcripts carry: the run, the circuit hash, the ptau the initial key
        came from and every contribution (its points, hash, name = contributor's address, and
        signature)."""
        if self.key is None:
            raise SetupError("the Aggregate key's ceremony has not begun (the server "
                             "contributes first)")
        return {"run": self.run, **key_origin(self.circuits, AGGREGATE),
                "contributions": ceremony_record(self.key, self.signatures)}

    def _add(self, identity, key: zk.CircuitKey, contribution_hash: str) -> None:
        index = len(self.signatures) + 1
        self.signatures[identity.address] = sign_contribution(
            identity, self.run, AGGREGATE, index, identity.address, contribution_hash)
        self.key = key
        self.circuits.use_key(AGGREGATE, key)


def server_begins(circuits: SplitCircuits, server_identity, folder: Path) -> AggregateCeremony:
    """The server's contribution on the initial key, for a run id drawn here."""
    folder.mkdir(parents=True, exist_ok=True)
    ceremony = AggregateCeremony(circuits, secrets.randbits(62), folder)
    key, mine = phase2.contribute(initial(circuits, AGGREGATE), server_identity.address,
                                  folder / "aggregate_1.zkey")
    ceremony._add(server_identity, key, mine)
    return ceremony


def client_contributes(ceremony: AggregateCeremony, client_identity) -> str:
    """A client's turn: check the key it is handed against its own initial key, add its
    contribution and sign it. Returns its contribution's hash."""
    if ceremony.key is None:
        raise SetupError("the Aggregate key's ceremony has not begun (the server contributes "
                         "first)")
    if client_identity.address in ceremony.signatures:
        raise SetupError(f"{client_identity.address} has contributed to this Aggregate key "
                         "already: each party contributes once")
    phase2.verify_chain(ceremony.key, initial(ceremony.circuits, AGGREGATE))
    index = len(ceremony.signatures) + 1
    key, mine = phase2.contribute(ceremony.key, client_identity.address,
                                  ceremony.folder / f"aggregate_{index}.zkey")
    ceremony._add(client_identity, key, mine)
    return mine


def check_aggregate_key(vk_json: dict[str, Any] | None, record: Any, server: str | None,
                        client: str | None) -> int:
    """Establish the Aggregate verification key ``vk_json`` from its ceremony ``record`` (see
    the module) for the server pinned as ``server`` and the client ``client``. Returns how
    many clients contributed; raises KeyRefused naming what failed."""
    kind = AGGREGATE
    if vk_json is None:
        raise KeyRefused(kind, "there is no verification key to check")
    if not (isinstance(record, dict) and isinstance(record.get("run"), int)
            and isinstance(record.get("contributions"), list)):
        raise KeyRefused(kind, "its ceremony record has no run id or no contributions")
    try:
        vk = zk.VerificationKey.from_snarkjs(vk_json)
    except (SplitverifyError, ValueError, KeyError, TypeError) as exc:
        raise KeyRefused(kind, f"the verification key is malformed: {exc}") from exc
    if vk.vk_gamma_2 != G2_GENERATOR or vk.vk_delta_2 == vk.vk_gamma_2:
        raise KeyRefused(kind, "γ is not the generator or δ = γ: the key was not made by zkey "
                               "new, or anyone can forge proofs for it")
    records = record["contributions"]
    if not all(isinstance(r, dict) for r in records):
        raise KeyRefused(kind, "its ceremony record holds a contribution that is not a record")
    names = [r.get("name") for r in records]
    if not names or names[0] != server:
        raise KeyRefused(kind, f"its first contribution is {names[:1]}, not the server's "
                               f"pinned identity {server}")
    if client not in names[1:]:
        raise KeyRefused(kind, f"this client's ({client}) signed contribution is missing: "
                               "the key may be known to the server")
    if len(set(names)) != len(names):
        raise KeyRefused(kind, f"a party contributed twice: {names}")
    contributions = []
    for index, (entry, name) in enumerate(zip(records, names), start=1):
        c = recorded_contribution(kind, index, entry, name)
        if not contribution_signed(name, record["run"], kind, index, name, c.hash,
                                   entry.get("signature")):
            raise KeyRefused(kind, f"contribution #{index} is not signed by the identity it "
                                   f"names, {name}")
        contributions.append(c)
    check_delta(kind, vk, check_delta_chain(kind, record.get("circuit_hash"), contributions))
    return len(contributions) - 1
