"""The two honest parties, independent of the transport: their halves of each step, their
proving and their checking of the other's messages.

Each party checks a received statement with one routine (:meth:`_Party._check_received`): its
values must be field elements and equal the statement rebuilt from what was received and what
this party expects, then the sender's signature, the proof (sent along, or asked for when this
party challenges) and the transcript record.

The parties cheat nowhere: the tamper scenarios (:mod:`.scenarios`) are subclasses that
override the small hooks marked "what is sent" (``outgoing_*``, ``next_params``).
"""

from __future__ import annotations

import random
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, TypeVar

import torch

from .. import model
from ..circuitgen import SplitCircuits, Statement, statements as st
from ..errors import InputError, SplitverifyError, TamperDetected
from ..identity import Identity, end_payload, signed_by, statement_payload
from ..label_table import LabelTable, SampleIds
from ..model import Params, SplitSpec
from ..pool import InlinePool, ProofJob, ProofResult, ProverPool, checked
from ..transcript import Transcript
from ..zk import Proof
from . import policy
from .pipeline import Checkpoints, InboundProofs, Key, OutboundProofs, first_unverified
from .state import ClientStep, ServerStep, params_from_lists, params_to_lists, tensor
from .wire import (BackwardMessage, ForwardMessage, GradientMessage, LateProof, ProofMode,
                   _Message, random_field)

# (kind, step, public values, proof hex or None) of a statement a party sends
StatementHook = Callable[[str, int, dict[str, int], str | None], None]
# asks the prover of (kind, step) for its proof: (proof hex, its signature of statement + proof)
ProofRequest = Callable[[str, int], tuple[str, str]]

_M = TypeVar("_M", bound=_Message)


@dataclass
class Verifier:
    """One party's checking of the other's messages: proof-mode policy and records."""
    circuits: SplitCircuits
    mode: ProofMode
    party: str                                   # who verifies: client | server
    rng: random.Random = field(default_factory=secrets.SystemRandom)
    verified: int = 0
    challenged: int = 0
    verify_seconds: dict[str, list[float]] = field(default_factory=dict)
    # pipelined:W: the other party's statements waiting for their proofs
    inbound: InboundProofs = field(default_factory=InboundProofs)

    decisions: dict[tuple[str, int], bool] = field(default_factory=dict)
    # the statement each open challenge was drawn on (until its proof verifies): the prover
    # must prove that very statement, not another it makes up once it knows it is challenged
    challenges: dict[tuple[str, int], dict[str, int]] = field(default_factory=dict)

    def wants_proof(self, kind: str = "", step: int = -1,
                    statement: dict[str, int] | None = None) -> bool:
        """Drawn once per (kind, step), after the statement is held, from randomness the prover
        cannot see (a re-sent message gets the same answer). A challenge binds to ``statement``:
        any other statement for that step is tampering. The caller persists the draw before it
        reveals it or acts on it."""
        if (kind, step) in self.decisions and step >= 0:
            hit = self.decisions[(kind, step)]
        else:
            hit = policy.challenge(self.mode, self.rng)
            if policy.draws_challenges(self.mode):
                self.challenged += hit
        if step >= 0:
            self.decisions[(kind, step)] = hit
        if hit and statement is not None and policy.draws_challenges(self.mode):
            bound = self.challenges.setdefault((kind, step), dict(statement))
            _require(bound == statement, step, self.party,
                     f"the {kind} statement of step {step} was challenged, and another "
                     "statement came instead of its proof (a prover must prove the statement "
                     "it was challenged on)")
        return hit

    def check(self, kind: str, step: int, proof_hex: str | None, expected: Statement) -> str:
        if proof_hex is None:
            raise TamperDetected(step, self.party, f"the {kind} proof is missing")
        try:
            proof = Proof.from_bytes(bytes.fromhex(proof_hex))
        except (ValueError, SplitverifyError) as exc:
            raise TamperDetected(step, self.party, f"the {kind} proof is malformed: {exc}") from exc
        start = time.perf_counter()
        ok = self.circuits.verify(kind, proof, expected)
        self.verify_seconds.setdefault(kind, []).append(time.perf_counter() - start)
        if not ok:
            raise TamperDetected(step, self.party, f"the {kind} proof does not verify against "
                                 "the statement built from what was received")
        self.verified += 1
        self.challenges.pop((kind, step), None)     # answered: the step is handled now
        return proof_hex


def _require(cond: bool, step: int, party: str, reason: str) -> None:
    if not cond:
        raise TamperDetected(step, party, reason)


# what each public value of a statement stands for, in mismatch messages
FIELD_MEANINGS = {
    "session": "the session id", "step": "the step",
    "messageCommitment": "the commitment to the activations and labels sent",
    "gradientCommitment": "the commitment to the gradient sent",
    "weightsCommitment": "the weight chain", "weightsBefore": "the weight chain",
    "weightsAfter": "the updated weights' commitment", "dataCommitment": "the data commitment",
    "stateCommitment": "the state commitment", "loss": "the loss"}


def _mismatch(whose: str, public: dict[str, int], expected: Statement) -> str:
    """Which fields of the statement received differ from the one rebuilt from the messages."""
    fields = [name for name, value in expected.values.items() if public.get(name) != value]
    fields += [f"{name} (not a field of this statement)" for name in public
               if name not in expected.values]
    return f"{whose} statement differs in " + ", ".join(
        f"{name} ({FIELD_MEANINGS[name]})" if name in FIELD_MEANINGS else name
        for name in fields)


@dataclass
class Prover:
    """One party's proving: proves now (``every``) or keeps the inputs of its latest statement
    of each kind until the verifier challenges it (``audit``). The proof is made by ``pool``
    (:mod:`splitverify.pool`; in the caller's thread unless a party is given another) and used
    only once it is checked to be the proof of its job."""
    circuits: SplitCircuits
    mode: ProofMode
    session_id: int
    pool: ProverPool
    prove_seconds: dict[str, list[float]] = field(default_factory=dict)
    # kind -> (step, witness inputs, statement values) of the latest statement of that kind
    kept: dict[str, tuple[int, dict, dict[str, int]]] = field(default_factory=dict)
    # pipelined:W: the proofs made in the background and not yet verified by the receiver
    outbound: OutboundProofs = field(default_factory=OutboundProofs)

    def attach(self, kind: str, step: int, statement: Statement,
               inputs: Callable[[], dict]) -> str | None:
        """Keep the witness inputs of this statement (built only when a proof may be asked
        for: ``commit`` and ``off`` never prove) and prove now in ``every`` mode; in
        ``pipelined:W`` the proof is handed to the pool now and delivered when made."""
        if not policy.keeps_witness(self.mode):
            return None
        if policy.proves_later(self.mode):
            self.outbound.submit(self.pool, ProofJob(self.session_id, kind, step, statement,
                                                     inputs()))
            return None
        self.kept[kind] = (step, inputs(), dict(statement.values))
        return self.prove(kind, step) if policy.proves_when_sent(self.mode) else None

    def late_results(self, through_step: int, timeout: float | None
                     ) -> list[tuple[ProofResult, dict[str, int], bool]]:
        """``pipelined:W``: the proofs made so far (those of steps up to ``through_step``
        waited for), each with the public values sent for its statement and whether it is
        handed out for the first time (its proving time is then recorded)."""
        out = []
        for result, public in self.outbound.ready(through_step, timeout):
            key = (result.kind, result.step)
            first = key not in self.outbound.timed
            if first:
                self.outbound.timed.add(key)
                self.prove_seconds.setdefault(result.kind, []).append(result.seconds)
            out.append((result, public, first))
        return out

    def job(self, kind: str, step: int) -> ProofJob:
        """The proof job of the kept statement of ``kind`` at ``step``."""
        kept = self.kept.get(kind)
        if kept is None or kept[0] != step:
            raise InputError(f"no {kind} statement of step {step} to prove (only the latest "
                             "step of each kind is kept)")
        return ProofJob(self.session_id, kind, step, Statement(kind, kept[2]), kept[1])

    def prove(self, kind: str, step: int) -> str:
        job = self.job(kind, step)
        result = checked(job, self.pool.submit(job).result())
        self.prove_seconds.setdefault(kind, []).append(result.seconds)
        return result.proof.to_bytes().hex()


def checking_state(prover: Prover, verifier: Verifier) -> dict:
    """What a party's prover and verifier hold: the challenge draws and the statements they
    bind, the counts and times, and the inputs of the latest statement of each kind (a
    challenge may come after a restart)."""
    return {
        "decisions": [[k, s, hit] for (k, s), hit in verifier.decisions.items()],
        "challenges": [[k, s, public] for (k, s), public in verifier.challenges.items()],
        "verified": verifier.verified, "challenged": verifier.challenged,
        "verify_seconds": verifier.verify_seconds,
        "prove_seconds": prover.prove_seconds,
        "kept": {kind: list(kept) for kind, kept in prover.kept.items()},
        "outbound": prover.outbound.snapshot(), "inbound": verifier.inbound.snapshot(),
    }


def restore_checking(prover: Prover, verifier: Verifier, state: dict) -> None:
    verifier.decisions = {(k, s): hit for k, s, hit in state["decisions"]}
    verifier.challenges = {(k, s): public for k, s, public in state["challenges"]}
    verifier.verified, verifier.challenged = state["verified"], state["challenged"]
    verifier.verify_seconds = state["verify_seconds"]
    prover.prove_seconds = state["prove_seconds"]
    prover.kept = {kind: (step, inputs, public)
                   for kind, (step, inputs, public) in state["kept"].items()}
    if "outbound" in state:                 # states saved before pipelined:W have neither
        prover.outbound.restore(state["outbound"], prover.session_id)
        prover.outbound.resubmit(prover.pool)
        verifier.inbound.restore(state["inbound"])


class _Party:
    """What both parties hold: their half's parameters, a prover and a verifier."""
    role = ""                                   # client | server
    transcript: Transcript | None = None
    on_statement: StatementHook | None = None   # sees each statement this party sends
    # the server half is shared by several clients' sessions (``serve --shared-model``): its
    # weight chain runs across them, so a session's ServerStep starts from the shared chain's
    # head, not from this session's previous ServerStep
    shared_server_model = False

    def __init__(self, spec: SplitSpec, session_id: int, mode: ProofMode, params: Params,
                 circuits: SplitCircuits, *, backend: str | None = None,
                 identity: Identity | None = None, peer: str | None = None,
                 pool: ProverPool | None = None):
        self.spec, self.session_id, self.mode = spec, session_id, mode
        self.params = params
        self.prover = Prover(circuits, mode, session_id, pool or InlinePool(circuits, backend))
        self.verifier = Verifier(circuits, mode, self.role)
        self.weights_salt = random_field()
        # this party's signing key, and the other party's address pinned at session creation
        self.identity = identity or Identity.generate()
        self.peer = peer
        # the public values of the latest statement of each kind this party sent (a challenge
        # of it is answered with the proof signed together with them)
        self.sent_public: dict[str, tuple[int, dict[str, int]]] = {}
        # pipelined:W: the weights at the end of each step whose proofs may still fail
        self.checkpoints = Checkpoints()
        if policy.proves_later(mode):
            self.checkpoints.keep(-1, params)

    # -- persistence: what a restarted party needs to go on with the session -------------------
    def snapshot(self) -> dict:
        """The party's state as JSON-able data, taken after every message it handled so a
        restart resumes exactly there (the server keeps its transcript row by row)."""
        return {
            "params": params_to_lists(self.params), "weights_salt": self.weights_salt,
            **checking_state(self.prover, self.verifier),
            "sent_public": {kind: [step, public] for kind, (step, public)
                            in self.sent_public.items()},
            "checkpoints": self.checkpoints.snapshot(),
        }

    def restore(self, state: dict) -> None:
        self.params = params_from_lists(state["params"])
        self.weights_salt = state["weights_salt"]
        restore_checking(self.prover, self.verifier, state)
        self.sent_public = {kind: (step, public)
                            for kind, (step, public) in state["sent_public"].items()}
        self.checkpoints.restore(state.get("checkpoints", {}))

    # -- what is sent: the hooks a tamper scenario overrides (honest: unchanged) ---------------
    def outgoing_proof(self, proof: str | None) -> str | None:
        """The proof attached to a statement this party sends, or given on challenge."""
        return proof

    def prove(self, kind: str, step: int) -> str:
        """A proof of this party's statement (kind, step), on challenge."""
        return self.outgoing_proof(self.prover.prove(kind, step))

    def _record(self, kind: str, step: int, public: dict[str, int], proof: str | None,
                signature: str | None = None, challenged: bool | None = None) -> None:
        """What this party received and checked goes into the session's transcript, with the
        sender's signature of it and whether this party challenged it."""
        if self.transcript is not None:
            self.transcript.record(kind, step, public, proof, signature=signature,
                                   challenged=challenged)

    def _signed(self, kind: str, msg: _M) -> _M:
        """``msg`` with this party's signature of its statement and proof."""
        if msg.public is None:
            return msg
        self.sent_public[kind] = (msg.step, dict(msg.public))
        self.prover.outbound.record_sent(kind, msg.step, msg.public)
        return msg.model_copy(update={"signature": self.identity.sign_statement(
            self.session_id, msg.step, kind, msg.public, msg.proof)})

    def signed_proof(self, kind: str, step: int) -> tuple[str, str]:
        """The proof of this party's statement (kind, step) on challenge, signed together
        with the statement."""
        sent = self.sent_public.get(kind)
        if sent is None or sent[0] != step:
            raise InputError(f"no {kind} statement of step {step} was sent")
        proof = self.prove(kind, step)
        return proof, self.identity.sign_statement(self.session_id, step, kind, sent[1], proof)

    def _check_signed(self, kind: str, step: int, public: dict[str, int], proof: str | None,
                      signature: str | None) -> None:
        """The statement (and proof) must be signed by the other party's pinned identity."""
        sender = "server" if self.role == "client" else "client"
        if self.peer is None:
            raise InputError(f"the {sender}'s identity is not pinned in this session: pin it "
                             "(its address) when the session is created")
        _require(signed_by(self.peer, statement_payload(self.session_id, step, kind, public,
                                                        proof), signature),
                 step, self.role, f"the {kind} statement is not signed by the {sender}'s pinned "
                 f"identity {self.peer} (missing or bad signature)")

    # -- checking what the other party sent: one routine, in two halves -------------------------
    def _check_received(self, kind: str, step: int, msg: _Message, expected: Statement,
                        request_proof: ProofRequest, whose: str) -> dict[str, int]:
        """Check a received statement and its proof against what this party expects; its
        public values are returned."""
        public = self._expect_statement(step, msg, expected, whose)
        self._verify_statement(kind, step, msg, expected, request_proof)
        return public

    def _expect_statement(self, step: int, msg: _Message, expected: Statement, whose: str
                          ) -> dict[str, int]:
        """The statement received must be field elements and equal ``expected`` (rebuilt from
        what was received and what this party holds)."""
        public = msg.public or {}
        outside = [name for name, value in public.items() if not 0 <= value < st.FIELD]
        _require(not outside, step, self.role, f"{whose} statement has {outside} outside the "
                 "field [0, r): no proof can carry such a value")
        _require(public == expected.values, step, self.role, _mismatch(whose, public, expected))
        return public

    def _verify_statement(self, kind: str, step: int, msg: _Message, expected: Statement,
                          request_proof: ProofRequest) -> None:
        """The sender's signature, then the proof (sent along, or asked for when this party
        draws a challenge, or when ``every`` wants one), then the transcript record."""
        public = msg.public or {}
        self._check_signed(kind, step, public, msg.proof, msg.signature)
        challenged = self.verifier.wants_proof(kind, step, public)
        proof, signature = msg.proof, msg.signature
        if challenged and proof is None:
            proof, signature = request_proof(kind, step)
            self._check_signed(kind, step, public, proof, signature)
        if proof is not None:     # a proof offered unasked is checked too: it is signed
            proof = self.verifier.check(kind, step, proof, expected)
        self._record(kind, step, public, proof, signature,
                     challenged if policy.draws_challenges(self.mode) else None)
        if proof is None and policy.proves_later(self.mode):
            self.verifier.inbound.hold(kind, step, public)

    # -- pipelined:W: proofs that follow their statements (see :mod:`.pipeline`) ---------------
    @property
    def other(self) -> str:
        return "server" if self.role == "client" else "client"

    def late_proofs(self, through_step: int, timeout: float | None = None) -> list[LateProof]:
        """This party's proofs made so far (waiting for those of steps up to
        ``through_step``), each signed together with the statement it sent."""
        out = []
        for result, public, first in self.prover.late_results(through_step, timeout):
            proof = self.outgoing_proof(result.proof.to_bytes().hex())
            out.append(LateProof(kind=result.kind, step=result.step, proof=proof,
                                 signature=self.identity.sign_statement(
                                     self.session_id, result.step, result.kind, public, proof)))
            if first and self.on_statement is not None:
                # the statement's hook sees its proof too (a ledger marks the entry verified)
                self.on_statement(result.kind, result.step, public, proof)
        return out

    def receive_late_proofs(self, proofs: list[LateProof]) -> list[Key]:
        """Verify each proof against the statement this party holds for it (and the sender's
        signature of the two); the transcript entry gains the proof. Returns the statements
        whose proofs are verified (a proof delivered again is acknowledged again)."""
        verified = []
        for late in proofs:
            key = (late.kind, late.step)
            if key in self.verifier.inbound.verified:
                verified.append(key)
                continue
            public = self.verifier.inbound.held.get(key)
            if public is None:
                raise InputError(f"a proof of the {self.other}'s {late.kind} statement of step "
                                 f"{late.step} came, but no such statement waits for its proof "
                                 f"here (waiting: {sorted(self.verifier.inbound.held)})")
            self._check_signed(late.kind, late.step, public, late.proof, late.signature)
            self.verifier.check(late.kind, late.step, late.proof, Statement(late.kind, public))
            if self.transcript is not None:
                self.transcript.add_proof(late.kind, late.step, late.proof, late.signature)
            self.verifier.inbound.proven(key)
            verified.append(key)
        self._prune_checkpoints()
        return verified

    def acknowledged(self, keys: list[Key]) -> None:
        """The other party verified these proofs of this party's statements."""
        self.prover.outbound.acknowledge([(kind, step) for kind, step in keys])
        self._prune_checkpoints()

    def require_proofs_through(self, through_step: int) -> None:
        """The lag bound: every proof of the other party's statements of steps up to
        ``through_step`` must be verified by now; one that has not come is tampering at its
        step."""
        overdue = self.verifier.inbound.overdue(through_step)
        if overdue is not None:
            kind, step = overdue
            raise TamperDetected(step, self.role, f"the {self.other}'s proof of its {kind} "
                                 f"statement of step {step} did not come within the lag bound "
                                 f"({self.mode}: due before step {step + self.mode.lag} began)")

    def first_unverified_step(self) -> int | None:
        """The earliest step with a proof this party has not seen verified (its own not yet
        acknowledged, or the other's not yet verified)."""
        return first_unverified(self.verifier.inbound.steps(), self.prover.outbound.steps())

    def roll_back_to(self, step: int) -> int:
        """Go back to the weights at the end of ``step`` (-1: the initial ones), the last step
        whose proofs all verified; returns how many steps were undone."""
        latest = max(self.checkpoints.params)
        self.params = self.checkpoints.at(step)
        return latest - step

    def _prune_checkpoints(self) -> None:
        # the other party may learn of a verification one exchange later than this one, and
        # roll back to what it knows: keep W + 2 steps beyond what this party knows verified
        latest = max(self.checkpoints.params, default=-1)
        first = self.first_unverified_step()
        self.checkpoints.prune(min(latest if first is None else first - 1,
                                   latest - self.mode.lag - 2))

    def _emit(self, kind: str, msg: _Message) -> None:
        """Hand a statement this party sends to its hook (``off`` sends none)."""
        if self.on_statement is not None and msg.public is not None:
            self.on_statement(kind, msg.step, msg.public, msg.proof)


class ClientParty(_Party):
    """The data owner: runs its half, proves it, checks the server's proofs."""
    role = "client"

    def __init__(self, *args, label_table: tuple[int, int] | None = None, **kwargs):
        """``label_table``: --labels server, the (commitment, depth) of the label table the
        server committed at the session's creation; the client's batches then name their
        rows by sample id and it holds no labels."""
        super().__init__(*args, **kwargs)
        self.label_table = label_table
        self.server_chain: int | None = None      # the server's last proven weightsAfter
        self.pending: ClientStep | None = None    # the forward step waiting for its gradient
        # a shared server half: how much of the server's published chain this client has seen
        # (its length and digest, splitverify.shared_chain.check_served)
        self.chain_seen: tuple[int, str] | None = None

    def weights_commitment(self) -> int:
        """The commitment of the client's current weights: before step 0, what the session's
        creation binds (``SessionCreate.initial_weights_commitment``)."""
        return st.weights_commitment(self.spec, self.params, self.weights_salt)

    # -- what is sent (hooks) -------------------------------------------------------------------
    def outgoing_activations(self, activations: torch.Tensor, labels: torch.Tensor,
                             salts: st.ClientSalts, statement: Statement | None
                             ) -> tuple[torch.Tensor, Statement | None]:
        """The activations sent and the statement sent with them."""
        return activations, statement

    def outgoing_forward(self, msg: ForwardMessage) -> ForwardMessage:
        """The forward message sent (signed)."""
        return msg

    def forward(self, step: int, x: torch.Tensor, labels: torch.Tensor) -> ForwardMessage:
        """``labels``: the batch's labels, or its rows' sample ids under --labels server."""
        spec = self.spec
        sample_ids = None
        if self.label_table is not None:
            sample_ids = [int(i) for i in labels]
            labels = SampleIds(torch.as_tensor(labels, dtype=torch.int64), self.label_table[1])
        fwd = model.client_forward(spec, self.params, x,
                                   None if sample_ids is not None else labels)
        salts = st.ClientSalts(random_field(), self.weights_salt, random_field(), random_field())
        statement, proof = None, None
        if self.mode.commits:
            statement = st.client_forward_statement(spec, self.params, x, labels, fwd, salts,
                                                    self.session_id, step)
            proof = self.prover.attach("client_forward", step, statement,
                                       lambda: st.client_forward_inputs(
                spec, self.params, x, labels, fwd, salts, self.session_id, step))
        activations, statement = self.outgoing_activations(fwd.output, labels, salts, statement)
        # the statement sent: the server's reply must consume its message commitment (a
        # cheating client stays consistent with itself too)
        self.pending = ClientStep(step, x, labels, fwd, salts, statement)
        msg = ForwardMessage(session_id=self.session_id, step=step,
                             activations=activations.tolist(),
                             labels=None if sample_ids is not None else labels.tolist(),
                             ids=sample_ids, message_salt=salts.message,
                             public=statement.values if statement else None, proof=proof)
        msg = self.outgoing_forward(self._signed("client_forward", msg))
        self._emit("client_forward", msg)
        return msg

    def snapshot(self) -> dict:
        """Adds the server's weight chain and the forward step waiting for its gradient (its
        forward pass is recomputed on restore: the weights are still those it ran on)."""
        pending = self.pending
        return {**super().snapshot(), "server_chain": self.server_chain,
                "shared_server_model": self.shared_server_model,
                "chain_seen": None if self.chain_seen is None else list(self.chain_seen),
                "pending": None if pending is None else pending.to_state()}

    def restore(self, state: dict) -> None:
        super().restore(state)
        self.server_chain = state["server_chain"]
        self.shared_server_model = state.get("shared_server_model", False)
        seen = state.get("chain_seen")
        self.chain_seen = None if seen is None else (seen[0], seen[1])
        pending = state["pending"]
        self.pending = (None if pending is None
                        else ClientStep.from_state(pending, self.spec, self.params))

    def end_session(self, steps: int) -> None:
        """Record (signed) that the session ended after ``steps`` steps, so an auditor sees a
        transcript cut short."""
        if self.transcript is not None:
            self.transcript.end = {"steps": steps, "signature": self.identity.sign(
                end_payload(self.session_id, steps))}

    def receive_gradient(self, msg: GradientMessage, request_proof: ProofRequest
                         ) -> BackwardMessage:
        """Check the server's step, then back-propagate, update and prove."""
        pending = self.pending
        if pending is None:
            raise InputError("no forward step is waiting for a gradient")
        spec, step = self.spec, pending.step
        _require(msg.session_id == self.session_id, step, "client",
                 f"the gradient message is for another session ({msg.session_id})")
        _require(msg.step == step, step, "client",
                 f"the gradient message is for step {msg.step}, expected {step}")
        gradient = tensor(msg.gradient)
        _require(tuple(gradient.shape) == (spec.batch, spec.cut_width), step, "client",
                 "the gradient has the wrong shape")
        if self.mode.commits:
            public = msg.public or {}
            table = ({} if self.label_table is None
                     else {"labelTable": self.label_table[0]})   # the session's, not the sent
            expected = Statement("server_step", {
                **table,
                "messageCommitment": pending.statement.values["messageCommitment"],
                # a shared server half moves with other clients' steps in between: the chain
                # across sessions is the server's published one (the SDK checks this step in
                # it, shared_chain.check_served; audit --chain checks all of it)
                "weightsBefore": (self.server_chain if self.server_chain is not None
                                  and not self.shared_server_model
                                  else public.get("weightsBefore", -1)),
                "loss": public.get("loss", -1), "weightsAfter": public.get("weightsAfter", -1),
                "gradientCommitment": st.gradient_commitment(spec, gradient, msg.gradient_salt),
                "session": self.session_id, "step": step})
            public = self._check_received("server_step", step, msg, expected, request_proof,
                                          "the server's")
            self.server_chain = public["weightsAfter"]
        bwd = model.client_backward(spec, self.params, pending.fwd, gradient)
        statement, proof = None, None
        if self.mode.commits:
            args = (spec, self.params, pending.x, pending.labels, pending.fwd, gradient,
                    msg.gradient_salt, bwd, pending.salts, self.session_id, step)
            statement = st.client_backward_statement(*args)
            proof = self.prover.attach("client_backward", step, statement,
                                       lambda: st.client_backward_inputs(*args))
        self.params = bwd.new_params
        if policy.proves_later(self.mode):
            self.checkpoints.keep(step, self.params)
        self.pending = None
        backward = self._signed("client_backward", BackwardMessage(
            session_id=self.session_id, step=step,
            public=statement.values if statement else None, proof=proof))
        self._emit("client_backward", backward)
        return backward


class ServerParty(_Party):
    """The label-side half: checks the client's proofs, runs its step, proves it."""
    role = "server"

    def __init__(self, *args, label_table: LabelTable | None = None, **kwargs):
        """``label_table``: --labels server, the labels this server holds by sample id,
        committed once for the session (``label_table.commitment``)."""
        super().__init__(*args, **kwargs)
        self.label_table = label_table
        self.client_chain: int | None = None      # the client's last proven weightsAfter
        self.next_step = 0
        self.pending: ServerStep | None = None    # the step waiting for the backward message
        self.losses: list[int] = []
        # per step, how many of the batch's labels the server half predicted (its logits): the
        # training accuracy the server knows (the dashboard's curve)
        self.correct: list[int] = []

    def snapshot(self) -> dict:
        """Adds, under --labels server, the table's salt and commitment: whoever makes the
        party again (a restarted server) rebuilds the same table from its labels and this salt
        (:meth:`restore` leaves the table to the party's maker)."""
        pending = self.pending
        table = self.label_table
        return {**super().snapshot(), "client_chain": self.client_chain,
                "next_step": self.next_step, "losses": self.losses, "correct": self.correct,
                "pending": None if pending is None else asdict(pending),
                "label_table": None if table is None else {"salt": table.salt,
                                                           "commitment": table.commitment}}

    def restore(self, state: dict) -> None:
        super().restore(state)
        self.client_chain, self.next_step = state["client_chain"], state["next_step"]
        pending = state["pending"]
        self.pending = None if pending is None else ServerStep(**pending)
        self.losses = list(state["losses"])
        self.correct = list(state.get("correct", []))    # absent in states stored before it

    def handles_now(self, kind: str, step: int) -> bool:
        """Is a message of ``kind`` ("forward" or "backward") for ``step`` the one this party
        just handled, with the session not moved past it (a re-sent message)?"""
        pending = self.pending
        if kind == "forward":
            return pending is not None and pending.step == step
        return pending is None and self.next_step == step + 1

    # -- what is sent (hooks) -------------------------------------------------------------------
    def step_from(self, head: Params) -> Params:
        """A shared server half (``serve --shared-model``): the weights this session's next
        step runs on, given the head of the published chain."""
        return head

    def publishes_step(self) -> bool:
        """A shared server half: whether the step just taken joins the published chain (and
        becomes its head)."""
        return True

    def next_params(self, result: model.ServerResult) -> Params:
        """The weights the server goes on with after its step."""
        return result.backward.new_params

    def step_table(self) -> LabelTable:
        """--labels server: the table whose labels the step uses and proves against."""
        return self.label_table

    def outgoing_gradient(self, gradient: torch.Tensor, salts: st.ServerSalts,
                          statement: Statement | None
                          ) -> tuple[torch.Tensor, Statement | None]:
        """The gradient sent and the statement sent with it."""
        return gradient, statement

    def outgoing_average(self, average: Params, statement: Statement | None, slot: int,
                         salt: int) -> tuple[Params, Statement | None]:
        """SplitFed-V1 (:mod:`.aggregation`): the average this session's client (the
        ``slot``-th of the round, weights salt ``salt``) is sent, and the Aggregate statement
        sent with it."""
        return average, statement

    def receive_forward(self, msg: ForwardMessage, request_proof: ProofRequest
                        ) -> GradientMessage:
        spec, step = self.spec, self.next_step
        _require(msg.session_id == self.session_id, step, "server",
                 f"the message is for session {msg.session_id}, not this one (a replay from "
                 "another session?)")
        _require(msg.step == step, step, "server",
                 f"the message is for step {msg.step}, expected step {step} (a replay?)")
        if policy.proves_later(self.mode):      # the lag bound, before step ``step`` begins
            self.require_proofs_through(step - self.mode.lag)
        table = self.label_table
        held, sent = ("ids", msg.ids) if table is not None else ("labels", msg.labels)
        other = msg.labels if table is not None else msg.ids
        if sent is None or other is not None:
            raise InputError(f"this session's forward messages carry {held} (the server "
                             f"{'holds' if table is not None else 'holds no'} label table), "
                             f"not {'labels' if table is not None else 'sample ids'}")
        try:
            acts, rows = tensor(msg.activations), tensor(sent)
        except (ValueError, TypeError, RuntimeError) as exc:
            raise InputError(f"activations and {held} must be integer arrays: {exc}") from exc
        if tuple(acts.shape) != (spec.batch, spec.cut_width) or \
                tuple(rows.shape) != (spec.batch,):
            raise InputError(f"activations must be {spec.batch}×{spec.cut_width} and {held} "
                             f"{spec.batch} integers; got {tuple(acts.shape)} and "
                             f"{tuple(rows.shape)}")
        spec.quant.check_range(acts, "the activations")
        if table is not None:
            table.check_ids(rows)                   # InputError for an id past the table
            step_table = self.step_table()
            named: torch.Tensor | SampleIds = SampleIds(rows, table.depth)
        else:
            if int(rows.min()) < 0 or int(rows.max()) >= spec.classes:
                raise InputError(f"labels must lie in [0, {spec.classes})")
            labels = named = rows
        public = msg.public
        if self.mode.commits:
            public = public or {}
            expected = Statement("client_forward", {
                "dataCommitment": public.get("dataCommitment", -1),
                "weightsCommitment": (self.client_chain if self.client_chain is not None
                                      else public.get("weightsCommitment", -1)),
                "messageCommitment": st.message_commitment(spec, acts, named, msg.message_salt),
                "stateCommitment": public.get("stateCommitment", -1),
                "session": self.session_id, "step": step})
            self._expect_statement(step, msg, expected, "the client's")
        # The server's own step and statement are computed before the client's proof is drawn
        # on or anything is recorded: a message the server cannot handle (e.g. an SGD step out
        # of the circuits' range) is refused with nothing changed, and a message whose proof
        # was verified can no longer fail here.
        if table is not None:
            labels = step_table.labels_at(rows)
        result = model.server_step(spec, self.params, acts, labels)
        salts = st.ServerSalts(self.weights_salt, random_field())
        statement = None
        if self.mode.commits:
            if table is None:
                args = (spec, self.params, acts, labels, msg.message_salt, result, salts,
                        self.session_id, step)
                statement = st.server_step_statement(*args)
                inputs = lambda: st.server_step_inputs(*args)        # noqa: E731
            else:
                tail = (msg.message_salt, result, salts, self.session_id, step)
                statement = st.server_step_table_statement(
                    spec, self.params, acts, rows, step_table.depth, step_table.commitment, *tail)
                inputs = lambda: st.server_step_table_inputs(        # noqa: E731
                    spec, self.params, acts, rows, step_table, *tail)
            self._verify_statement("client_forward", step, msg, expected, request_proof)
        proof = None
        if statement is not None:
            proof = self.prover.attach("server_step", step, statement, inputs)
        self.params = self.next_params(result)
        if policy.proves_later(self.mode):
            self.checkpoints.keep(step, self.params)
        gradient, statement = self.outgoing_gradient(result.gradient, salts, statement)
        proof = self.outgoing_proof(proof)
        self.pending = ServerStep(step, public if self.mode.commits else None,
                                  statement.values["gradientCommitment"] if statement else None,
                                  result.loss)
        self.losses.append(result.loss)
        self.correct.append(int((result.logits.argmax(1) == labels).sum()))
        reply = self._signed("server_step", GradientMessage(
            session_id=self.session_id, step=step, gradient=gradient.tolist(),
            gradient_salt=salts.gradient, public=statement.values if statement else None,
            proof=proof))
        self._emit("server_step", reply)
        return reply

    def receive_backward(self, msg: BackwardMessage, request_proof: ProofRequest
                         ) -> None:
        pending = self.pending
        if pending is None:
            raise InputError("no server step is waiting for the client's backward message")
        step = pending.step
        _require(msg.session_id == self.session_id, step, "server",
                 f"the backward message is for session {msg.session_id}, not this one (a "
                 "replay from another session?)")
        _require(msg.step == step, step, "server",
                 f"the backward message is for step {msg.step}, expected {step}")
        if self.mode.commits:
            public = msg.public or {}
            fwd = pending.forward
            expected = Statement("client_backward", {
                "gradientCommitment": pending.gradient_commitment,
                "dataCommitment": fwd["dataCommitment"], "stateCommitment": fwd["stateCommitment"],
                "weightsBefore": fwd["weightsCommitment"],
                "weightsAfter": public.get("weightsAfter", -1),
                "session": self.session_id, "step": step})
            public = self._check_received("client_backward", step, msg, expected,
                                          request_proof, "the client's backward")
            self.client_chain = public["weightsAfter"]
        self.pending = None
        self.next_step += 1
