"""The ledger in the runtime: each party logs the statements it sends on a SplitLedger.

A :class:`LedgerSink` is a party's ``on_statement`` hook (see :mod:`splitverify.protocol`). For
every statement the party sends (client: ``client_forward`` and ``client_backward``; server:
``server_step``) it sends one transaction:

* ``record`` — the statement's commitments as claimed (the blockchain baseline: the chain
  keeps what was said, nobody checks it), or
* ``recordVerified`` — with ``verify_on_chain`` and a proof at hand: the chain runs the
  session's Groth16 verifier of the kind and stores the commitments only if the proof verifies.

Each party sends from its own account (``ChainLog(accounts={"client": key, "server": key})``;
a party without a key gets a fresh one, funded from the node's first account). The first
statement of a session opens it on the ledger (SplitLedger's owned sessions): the sending party
proposes the terms — both addresses and, when the session has keys, each kind's key hash and,
with ``verify_on_chain``, the keyed verifier it deployed for it — and the other party signs them
after checking them against its own keys (every key hash, and each verifier's code).
Where the other party does not log on this ChainLog (``train --chain``: a remote server), a
stand-in account of this process signs for it: until the parties' identity keys are wired in,
that session's "server" address is not the real server's.

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
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from eth_account import Account

from ..circuitgen import SplitCircuits, Statement
from ..errors import InputError, LedgerMismatch, LedgerRejected, SplitverifyError
from .contract import KINDS, Commitments, Ledger, Receipt, SessionTerms, VerifierDeployment
from ..protocol import ClientParty, ProofMode, ServerParty
from ..transcript import Transcript
from ..zk import Proof

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
    if verify_on_chain and mode.kind not in ("every", "pipelined"):
        raise InputError(f"--verify-on-chain with --proof-mode {mode}: the chain can only verify "
                         "proofs of every statement; use --proof-mode every or pipelined:W")


@contextmanager
def deployed_ledger(backend: str) -> Iterator[Ledger]:
    """A ledger with a fresh SplitLedger deployed; closed (anvil stopped) on exit."""
    with Ledger.open(backend) as ledger:
        ledger.deploy()
        yield ledger


def deploy_verifiers(ledger: Ledger, circuits: SplitCircuits) -> list[VerifierDeployment]:
    """The keyed verifier of each kind's key, deployed once per key (``ledger`` reuses one it
    deployed before: then its ``deploy`` receipt is None)."""
    return [ledger.deploy_verifier(kind, circuits.key(kind)) for kind in KINDS]


def session_keys(circuits: SplitCircuits, proves: bool) -> dict[str, dict]:
    """A party's verification keys by kind as the transcript holds them (none without proofs)."""
    return {kind: circuits.verification_key(kind).to_snarkjs() for kind in KINDS} if proves \
        else {}


@dataclass(frozen=True)
class ChainRecord:
    """One statement a party tried to put on the ledger."""
    kind: str
    step: int
    verified: bool                 # recordVerified (the chain checked the proof), else record
    gas: int
    seconds: float                 # wall time on the ledger, simulation and receipt included
    refused: str | None = None     # the contract's revert reason; nothing was recorded


@dataclass(frozen=True)
class Counterpart:
    """The other party of a session as the opener sees it: its address (looked up when the
    session is opened: the other party's account may be set after this sink is made), and how
    to ask it to sign proposed terms (it refuses terms that disagree with its own keys)."""
    account: Callable[[], str]
    sign: Callable[[SessionTerms], bytes]

    @property
    def address(self) -> str:
        return self.account()


@dataclass
class LedgerSink:
    """One party's log of its own statements on ``ledger`` (its ``on_statement`` hook);
    ``ledger`` sends from the party's account."""
    ledger: Ledger
    circuits: SplitCircuits | None = None   # the keys registered with the session
    verify_on_chain: bool = False
    role: str = "client"
    proves: bool = False                    # the party's mode makes proofs: its session has keys
    # pipelined:W: each statement is recorded as it is sent, and its proof, when it comes, is
    # recorded with recordVerified (superseding the unverified entry) under verify_on_chain
    proofs_follow: bool = False
    counterpart: Counterpart | None = None  # signs the terms this party proposes
    records: list[ChainRecord] = field(default_factory=list)
    deployments: list[VerifierDeployment] = field(default_factory=list)
    session_receipts: list[Receipt] = field(default_factory=list)
    _open: set[int] = field(default_factory=set)

    def attach(self, party: ClientParty | ServerParty) -> LedgerSink:
        """Log ``party``'s statements; its keys (final once its key ceremony is done) are the
        ones registered with the session."""
        party.on_statement = self
        self.circuits = party.prover.circuits
        self.role, self.proves = party.role, party.mode.proves
        self.proofs_follow = party.mode.kind == "pipelined"
        return self

    def __call__(self, kind: str, step: int, public: dict[str, int], proof: str | None) -> None:
        session = public.get("session")
        if not isinstance(session, int):
            raise InputError(f"a {kind} statement without a session cannot be recorded")
        if self.proofs_follow and proof is not None and not self.verify_on_chain:
            return                  # the statement is on the ledger; its proof is not checked
        verified = self.verify_on_chain and proof is not None
        if verified and self.circuits is None:
            raise InputError("on-chain verification needs the party's circuits: attach() the "
                             "sink to a party or pass circuits=")
        start = time.perf_counter()
        try:
            self._ensure_open(session)
            receipt = (self._record_verified(session, step, kind, public, proof) if verified
                       else self.ledger.record(session, step, kind,
                                               Commitments.of_statement(kind, public)))
        except (LedgerRejected, LedgerMismatch) as exc:  # the chain's or the other party's no
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

    # -- the session's opening -----------------------------------------------------------------
    def terms(self, session: int, counterpart: str,
              verifiers: dict[str, VerifierDeployment] | None = None) -> SessionTerms:
        """This party's terms for ``session``: its keys (when its mode proves) and ``verifiers``."""
        me = self.ledger.account
        client, server = (me, counterpart) if self.role == "client" else (counterpart, me)
        keys = session_keys(self.circuits, self.proves) if self.circuits is not None else {}
        return SessionTerms.of(session, client, server, keys=keys, verifiers=verifiers)

    def _ensure_open(self, session: int) -> None:
        """Open ``session`` unless this party's opening exists (the other party may have made it)."""
        if session in self._open or self.ledger.session(session, self.ledger.account) is not None:
            self._open.add(session)
            return
        if self.counterpart is None:
            raise InputError("opening a session needs the other party's signature: make the "
                             "sink with ChainLog.sink, or pass counterpart=")
        verifiers = {}
        if self.verify_on_chain and self.proves and self.circuits is not None:
            deployed = deploy_verifiers(self.ledger, self.circuits)
            self.deployments += [d for d in deployed if d.deploy is not None]
            verifiers = {d.kind: d for d in deployed}
        proposed = self.terms(session, self.counterpart.address, verifiers)
        self.session_receipts.append(
            self.ledger.open_session(proposed, self.counterpart.sign(proposed)))
        self._open.add(session)

    def agree(self, proposed: SessionTerms) -> bytes:
        """Sign terms the other party proposes, after checking them against this party's own
        keys: the same key hash per kind, and each named verifier's code generated by that key
        (LedgerMismatch / InputError otherwise: nothing is signed)."""
        role_address = proposed.client if self.role == "client" else proposed.server
        if role_address != self.ledger.account:
            raise InputError(f"the proposed terms name {role_address} as the {self.role}, not "
                             f"this party's account {self.ledger.account}")
        keys = session_keys(self.circuits, self.proves) if self.circuits is not None else {}
        mine = SessionTerms.of(proposed.session, proposed.client, proposed.server, keys=keys)
        for kind, theirs, own in zip(KINDS, proposed.kinds, mine.kinds):
            if theirs.key_hash != own.key_hash:
                raise LedgerMismatch(f"the proposed terms of session {proposed.session:#x} bind "
                                     f"{kind} to key hash 0x{theirs.key_hash.hex()}, this "
                                     f"party's {kind} key hashes to 0x{own.key_hash.hex()}: "
                                     "not signed")
            if theirs.verifier is not None and kind in keys:
                self.ledger.check_verifier_code(theirs.verifier, kind, keys[kind],
                                                f"session {proposed.session:#x}: ")
        return self.ledger.sign_terms(proposed)

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
            "registration_gas": sum(d.deploy.gas_used for d in self.deployments if d.deploy),
            "session_gas": sum(r.gas_used for r in self.session_receipts),
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


def _revert_reason(exc: LedgerRejected | LedgerMismatch) -> str:
    """The part of the message after 'reverted: ' (the decoded custom error), else all of it."""
    text = str(exc)
    return text.split("reverted: ", 1)[1].split("; nothing", 1)[0] if "reverted: " in text \
        else text


ROLES = ("client", "server")


@dataclass
class ChainLog:
    """The ledger of one session and the sinks of the parties that log to it (in the demo both
    parties share it; a client training against a remote server logs alone). ``accounts``: each
    party's private key by role; a role without one gets a fresh key (funded from the node's
    first account when its balance is 0)."""
    ledger: Ledger
    verify_on_chain: bool = False
    accounts: dict[str, str | bytes] = field(default_factory=dict)
    sinks: dict[str, LedgerSink] = field(default_factory=dict)
    _views: dict[str, Ledger] = field(default_factory=dict)

    def party_ledger(self, role: str) -> Ledger:
        """``ledger`` sending from ``role``'s account."""
        if role not in ROLES:
            raise InputError(f"unknown party {role!r}: use client or server")
        if role not in self._views:
            key = self.accounts.setdefault(role, bytes(Account.create().key))
            view = self.ledger.with_account(key)
            if self.ledger.w3.eth.get_balance(view.account) == 0:
                self.ledger.fund(view.account)
            self._views[role] = view
        return self._views[role]

    def sink(self, party: str) -> LedgerSink:
        """The sink of ``party`` (client/server), made on first use."""
        if party not in self.sinks:
            ledger = self.party_ledger(party)              # refuses an unknown role
            other = ROLES[1 - ROLES.index(party)]
            counterpart = Counterpart(lambda: self.party_ledger(other).account,
                                      lambda terms: self._sign_as(other, terms))
            self.sinks[party] = LedgerSink(ledger, verify_on_chain=self.verify_on_chain,
                                           role=party, counterpart=counterpart)
        return self.sinks[party]

    def _sign_as(self, role: str, terms: SessionTerms) -> bytes:
        """``role``'s signature of proposed terms: its sink checks them against its own keys;
        a role that does not log here (a remote server) has a stand-in account that signs."""
        sink = self.sinks.get(role)
        if sink is not None and sink.circuits is not None:
            return sink.agree(terms)
        return self.party_ledger(role).sign_terms(terms)

    def check_keys(self, transcript: Transcript) -> dict[str, str | None]:
        """The reader's check of a logged session against its ceremony (the transcript's
        verification keys): every kind's key hash on chain, and each verifier's code (the
        verifier address by kind, None for a kind without one); LedgerMismatch when they
        differ, LedgerError when the session was never opened."""
        client = self.party_ledger("client").account
        return self.ledger.check_session_keys(transcript.session_id,
                                              transcript.verification_keys, party=client)

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
            "session_gas": sum(p["session_gas"] for p in parties.values()),
            "parties": {name: {"account": self._views[name].account,
                               **{k: v for k, v in p.items() if k != "refused"}}
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
