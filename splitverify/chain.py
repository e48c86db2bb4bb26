"""The ledger in the runtime: each party logs the statements it sends on a SplitLedger.

A :class:`LedgerSink` is a party's ``on_statement`` hook (see :mod:`splitverify.protocol`). For
every statement the party sends (client: ``client_forward`` and ``client_backward``; server:
``server_step``) it sends one transaction:

* ``record`` — the statement's commitments as claimed (the blockchain baseline: the chain
  keeps what was said, nobody checks it), or
* ``recordVerified`` — with ``verify_on_chain`` and a proof at hand: the chain runs the kind's
  Groth16 verifier and stores the commitments only if the proof verifies (the verifier of each
  kind is registered from the party's key the first time it is needed).

A record the contract refuses (``AlreadyRecorded`` for a replayed message, ``ProofRejected``
for a cheat) is the chain's verdict, not a failure of the run: it is kept in ``records`` with
its reason, nothing is stored on chain, and the session goes on to the other party's own checks.
A node that fails (``LedgerError``) stops the run.

Gas and seconds (the party's wall time on the ledger: simulation, sending, waiting for the
receipt) accumulate per step; a :class:`ChainLog` holds one session's ledger and its parties'
sinks, and gives the ``chain`` figures of ``summary.json``.

    with chain_log("embedded", verify_on_chain=False) as log:
        log.sink("client").attach(client_party)
        log.sink("server").attach(server_party)
        ...                                     # run the session
        log.summary()                           # entries, gas and seconds
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from .circuits import SplitCircuits, Statement
from .errors import InputError, LedgerRejected, SplitverifyError
from .ledger import KINDS, Commitments, Ledger, Receipt, Registration
from .protocol import ClientParty, ProofMode, ServerParty
from .zk import Proof

CHAIN_CHOICES = ("none", "embedded", "anvil")


def parse_chain(text: str) -> str | None:
    """``--chain``: None for ``none``, else a backend :meth:`Ledger.open` takes."""
    if text == "none":
        return None
    if text in CHAIN_CHOICES or text.startswith(("http://", "https://")):
        return text
    raise InputError(f"--chain {text!r}: use none, embedded (an in-process chain), anvil (a "
                     "local anvil node) or the http(s):// URL of an Ethereum node")


def check_chain_options(backend: str | None, verify_on_chain: bool, mode: ProofMode) -> None:
    """Refuse combinations that would log nothing (rather than log nothing silently)."""
    if verify_on_chain and backend is None:
        raise InputError("--verify-on-chain needs a chain: --chain embedded, anvil or a URL")
    if backend is not None and not mode.commits:
        raise InputError(f"--chain {backend} with --proof-mode {mode}: that mode sends no "
                         "statements, so there is nothing to record; use --proof-mode commit "
                         "(statements without proofs: the blockchain baseline), audit:P or every")
    if verify_on_chain and mode.kind != "every":
        raise InputError(f"--verify-on-chain with --proof-mode {mode}: the chain can only verify "
                         "proofs that are sent with the statements; use --proof-mode every")


@contextmanager
def deployed_ledger(backend: str) -> Iterator[Ledger]:
    """A ledger with a fresh SplitLedger deployed; closed (anvil stopped) on exit."""
    with Ledger.open(backend) as ledger:
        ledger.deploy()
        yield ledger


def register_verifiers(ledger: Ledger, circuits: SplitCircuits,
                       kinds: tuple[str, ...] = KINDS) -> list[Registration]:
    """Register the Groth16 verifier of each kind not registered yet (once per contract: two
    parties sharing a ledger register only once)."""
    return [ledger.register_verifier(kind, circuits.key(kind)) for kind in kinds
            if ledger.registration(kind) is None]


@dataclass(frozen=True)
class ChainRecord:
    """One statement a party tried to put on the ledger."""
    kind: str
    step: int
    verified: bool                 # recordVerified (the chain checked the proof), else record
    gas: int
    seconds: float                 # wall time on the ledger, simulation and receipt included
    refused: str | None = None     # the contract's revert reason; nothing was recorded


@dataclass
class LedgerSink:
    """One party's log of its own statements on ``ledger`` (its ``on_statement`` hook)."""
    ledger: Ledger
    circuits: SplitCircuits | None = None   # the keys whose verifiers verify_on_chain registers
    verify_on_chain: bool = False
    records: list[ChainRecord] = field(default_factory=list)
    registrations: list[Registration] = field(default_factory=list)

    def attach(self, party: ClientParty | ServerParty) -> LedgerSink:
        """Log ``party``'s statements; its keys (final once its key ceremony is done) are the
        ones registered for on-chain verification."""
        party.on_statement = self
        self.circuits = party.prover.circuits
        return self

    def __call__(self, kind: str, step: int, public: dict[str, int], proof: str | None) -> None:
        session = public.get("session")
        if not isinstance(session, int):
            raise InputError(f"a {kind} statement without a session cannot be recorded")
        verified = self.verify_on_chain and proof is not None
        if verified:
            self._ensure_verifier(kind)
        start = time.perf_counter()
        try:
            receipt = (self._record_verified(session, step, kind, public, proof) if verified
                       else self.ledger.record(session, step, kind,
                                               Commitments.of_statement(kind, public)))
        except LedgerRejected as exc:
            self.records.append(ChainRecord(kind, step, verified, 0,
                                            time.perf_counter() - start, _revert_reason(exc)))
            return
        self.records.append(ChainRecord(kind, step, verified, receipt.gas_used,
                                        time.perf_counter() - start))

    def _record_verified(self, session: int, step: int, kind: str, public: dict[str, int],
                         proof_hex: str) -> Receipt:
        try:
            proof = Proof.from_bytes(bytes.fromhex(proof_hex))
        except (ValueError, SplitverifyError) as exc:
            # the chain could not even decode it: refused like any proof that does not verify
            raise LedgerRejected(f"the {kind} proof of step {step} is malformed ({exc}); "
                                 "nothing was sent") from exc
        return self.ledger.record_verified(session, step, kind, proof, Statement(kind, public))

    def _ensure_verifier(self, kind: str) -> None:
        if self.circuits is None:
            raise InputError("on-chain verification needs the party's circuits: attach() the "
                             "sink to a party or pass circuits=")
        self.registrations += register_verifiers(self.ledger, self.circuits, (kind,))

    # -- figures --------------------------------------------------------------------------------
    def refused(self) -> list[ChainRecord]:
        return [r for r in self.records if r.refused is not None]

    def per_step(self) -> dict[int, tuple[int, float]]:
        """Gas and ledger seconds of each step's statements (refused ones cost no gas)."""
        return per_step(self.records)

    def totals(self) -> dict:
        recorded = [r for r in self.records if r.refused is None]
        return {
            "entries": len(recorded),
            "verified_entries": sum(r.verified for r in recorded),
            "gas": sum(r.gas for r in self.records),
            "seconds": round(sum(r.seconds for r in self.records), 4),
            "registration_gas": sum(r.deploy.gas_used + r.register.gas_used
                                    for r in self.registrations),
            "refused": [{"kind": r.kind, "step": r.step, "reason": r.refused}
                        for r in self.refused()],
        }


def per_step(records: Iterable[ChainRecord]) -> dict[int, tuple[int, float]]:
    """Gas and ledger seconds summed per step."""
    steps: dict[int, tuple[int, float]] = {}
    for r in records:
        gas, seconds = steps.get(r.step, (0, 0.0))
        steps[r.step] = (gas + r.gas, seconds + r.seconds)
    return steps


def _revert_reason(exc: LedgerRejected) -> str:
    """The part of the message after 'reverted: ' (the decoded custom error), else all of it."""
    text = str(exc)
    return text.split("reverted: ", 1)[1].split("; nothing", 1)[0] if "reverted: " in text \
        else text


@dataclass
class ChainLog:
    """The ledger of one session and the sinks of the parties that log to it (in the demo both
    parties share it; a client training against a remote server logs alone)."""
    ledger: Ledger
    verify_on_chain: bool = False
    sinks: dict[str, LedgerSink] = field(default_factory=dict)

    def sink(self, party: str) -> LedgerSink:
        """The sink of ``party`` (client/server), made on first use."""
        if party not in self.sinks:
            self.sinks[party] = LedgerSink(self.ledger, verify_on_chain=self.verify_on_chain)
        return self.sinks[party]

    def per_step(self) -> dict[int, tuple[int, float]]:
        """Gas and ledger seconds per step, over every party that logs."""
        return per_step(r for sink in self.sinks.values() for r in sink.records)

    def summary(self) -> dict:
        """``summary.json``'s ``chain``: entries, gas and seconds, in total and per party."""
        parties = {name: sink.totals() for name, sink in self.sinks.items()}
        steps = self.per_step()
        gas = sum(p["gas"] for p in parties.values())
        seconds = sum(p["seconds"] for p in parties.values())
        return {
            "backend": self.ledger.backend, "contract": self.ledger.address,
            "verify_on_chain": self.verify_on_chain, "logged_by": sorted(self.sinks),
            "entries": sum(p["entries"] for p in parties.values()),
            "verified_entries": sum(p["verified_entries"] for p in parties.values()),
            "refused": [{"party": name, **r} for name, p in parties.items()
                        for r in p["refused"]],
            "gas_total": gas, "seconds_total": round(seconds, 3),
            "gas_per_step": round(gas / len(steps)) if steps else 0,
            "seconds_per_step": round(seconds / len(steps), 4) if steps else 0.0,
            "deploy_gas": sum(r.gas_used for r in self.ledger.receipts
                              if r.function == "SplitLedger.constructor"),
            "registration_gas": sum(p["registration_gas"] for p in parties.values()),
            "parties": {name: {k: v for k, v in p.items() if k != "refused"}
                        for name, p in parties.items()},
        }


@contextmanager
def chain_log(backend: str | None, verify_on_chain: bool = False) -> Iterator[ChainLog | None]:
    """A session's ChainLog on a freshly deployed ledger (None for ``--chain none``)."""
    if backend is None:
        yield None
        return
    with deployed_ledger(backend) as ledger:
        yield ChainLog(ledger, verify_on_chain)
