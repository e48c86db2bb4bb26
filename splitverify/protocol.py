"""The split-learning protocol: the messages and the two parties' logic, independent of the
transport (the FastAPI server and the client SDK carry these messages over HTTP).

One step, with proofs on (``every``):

1. client → server ``ForwardMessage``: activations, labels, the message salt, the ClientForward
   statement (commitments) and proof. The server recomputes the message commitment from what it
   received, checks the client's weight commitment continues the chain (step t's "before" is
   step t−1's "after") and the step number, and verifies the proof against that statement.
2. server → client ``GradientMessage``: the activation gradient, its salt, the ServerStep
   statement and proof; the client checks it the same way (its own message commitment, the
   server's weight chain, the gradient's commitment).
3. client → server ``BackwardMessage``: the ClientBackward statement and proof; the server
   checks it refers to the same data, state and weights as step 1 and received its gradient.

``commit``: statements (commitments) travel and chain, nothing is ever proven — what a
ledger without proofs can hold (the blockchain baseline of ``splitverify compare``).
``audit:P``: messages carry statements (commitments) but no proof; once the verifier holds a
statement it draws, from its own randomness, whether to challenge that step (probability P);
a challenged prover must then prove the statement it already committed to. ``off``: no
commitments, no proofs — plain split learning through the same code path (the baseline).
Any failed check raises ``TamperDetected`` (step, party, reason); the session stops.

Every statement travels signed by its sender (:mod:`splitverify.identity`: session, step, kind,
public values, proof or none); the receiver checks the signature against the sender's identity
pinned at the session's creation before anything else, and records it in the transcript.

A party's ``on_statement`` hook (e.g. :class:`splitverify.chain.LedgerSink`) is called with every
statement the party itself sends — kind, step, public values and proof (None when not proven
now) — exactly as it goes on the wire, cheats included: a ledger holds what was claimed.
"""

from __future__ import annotations

import hashlib
import random
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Literal, TypeVar

import torch
from pydantic import BaseModel, ConfigDict, Field

from . import model
from .circuits import KINDS, SplitCircuits, Statement, statements as st
from .errors import InputError, SplitverifyError, TamperDetected
from .circuits.generator import describe
from .identity import ADDRESS_PATTERN, Identity, end_payload, signed_by, statement_payload
from .limits import Limits
from .model import Dense, Params, SplitSpec
from .transcript import Transcript
from .zk import Proof
from .zk.curve import R

# (kind, step, public values, proof hex or None) of a statement a party sends
StatementHook = Callable[[str, int, dict[str, int], str | None], None]
# asks the prover of (kind, step) for its proof: (proof hex, its signature of statement + proof)
ProofRequest = Callable[[str, int], tuple[str, str]]

SCENARIOS = ("server:wrong-gradient", "server:forged-proof", "server:skip-update",
             "client:poisoned-activation", "client:replay")


@dataclass(frozen=True)
class ProofMode:
    kind: str          # every | audit | off
    probability: float = 1.0

    @classmethod
    def parse(cls, text: str) -> "ProofMode":
        if text in ("every", "off", "commit"):
            return cls(text, 1.0 if text == "every" else 0.0)
        if text.startswith("audit:"):
            try:
                p = float(text.split(":", 1)[1])
            except ValueError:
                p = -1.0
            if 0.0 < p <= 1.0:
                return cls("audit", p)
        raise InputError(f"proof mode {text!r}: use every, off, commit or audit:P with "
                         "0 < P ≤ 1")

    def __str__(self) -> str:
        return f"audit:{self.probability:g}" if self.kind == "audit" else self.kind

    @property
    def commits(self) -> bool:
        return self.kind != "off"

    @property
    def proves(self) -> bool:
        """Whether any proof may be asked for (so the parties need keys)."""
        return self.kind in ("every", "audit")


def random_field() -> int:
    """A fresh salt or session id: 250 random bits (below the field's modulus)."""
    return secrets.randbits(250)


class SessionCreate(BaseModel):
    """What a client asks for when it opens a session (``POST /sessions``)."""
    model_config = ConfigDict(extra="forbid")
    model: Literal["refnet", "layers"] = Field(
        "refnet", description="'refnet' (REFERENCE.md) or 'layers'")
    client_layers: list[tuple[int, int, bool]] | None = None   # (n_in, n_out, relu) for 'layers'
    server_layers: list[tuple[int, int, bool]] | None = None
    batch: int = Field(16, ge=1, description="At most the server's dimension limit.")
    proof_mode: str = "every"
    # torch seeds the second half with seed + 1, and a torch seed is below 2^64
    seed: int = Field(0, ge=0, lt=1 << 63)
    # binds the client's starting point: step 0's weightsCommitment must equal it, so a client
    # cannot pick its weights (e.g. ones that steer the server out of range) after it has seen
    # anything of the session
    initial_weights_commitment: int | None = Field(
        None, ge=0, lt=R, description="The commitment of the client's initial weights (step "
        "0's weightsCommitment); required unless proof_mode is 'off'.")
    # the client's identity (splitverify.identity): the address its signatures must recover to
    client_identity: str | None = Field(
        None, pattern=ADDRESS_PATTERN,
        description="The client's Ethereum address; required when statements travel.")
    # the client's party id (two-party phase 1, cached per pair) and the ptau it was told to
    # use ({"origin", "sha256"}); a server using another one refuses the session
    party_id: str | None = None
    ptau: dict[str, str | None] | None = None

    @classmethod
    def of(cls, spec: SplitSpec, mode: "ProofMode", seed: int,
           initial_weights_commitment: int | None = None,
           client_identity: str | None = None) -> "SessionCreate":
        bound = {"initial_weights_commitment": initial_weights_commitment,
                 "client_identity": client_identity}
        if spec == SplitSpec.refnet(batch=spec.batch):
            return cls(batch=spec.batch, proof_mode=str(mode), seed=seed, **bound)
        return cls(model="layers", batch=spec.batch, proof_mode=str(mode), seed=seed,
                   client_layers=[(d.n_in, d.n_out, d.relu) for d in spec.client],
                   server_layers=[(d.n_in, d.n_out, d.relu) for d in spec.server], **bound)

    def spec(self) -> SplitSpec:
        if self.model == "refnet":
            return SplitSpec.refnet(batch=self.batch)
        if self.model == "layers" and self.client_layers and self.server_layers:
            return SplitSpec(tuple(Dense(*d) for d in self.client_layers),
                             tuple(Dense(*d) for d in self.server_layers), self.batch)
        raise InputError("model must be 'refnet', or 'layers' with client_layers and "
                         "server_layers")

    def within(self, limits: Limits) -> None:
        """Refuse a model the server will not hold, before its spec or weights are built."""
        layers = ([(64, 32), (32, 10)] if self.model == "refnet" else
                  [(n_in, n_out) for n_in, n_out, _ in
                   (self.client_layers or []) + (self.server_layers or [])])
        too_wide = [d for layer in layers for d in layer if d > limits.dim]
        if too_wide or self.batch > limits.dim:
            raise InputError(f"layer widths and the batch must be ≤ {limits.dim} (the server's "
                             f"dimension limit); got {max(too_wide + [self.batch])}")
        params = sum(n_out * (n_in + 1) for n_in, n_out in layers)
        if params > limits.params:
            raise InputError(f"the model has {params} parameters; this server takes at most "
                             f"{limits.params}")


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    session_id: int
    step: int
    public: dict[str, int] | None = None   # the statement's values (None when mode is off)
    proof: str | None = None               # 256-byte Groth16 proof (EIP-197 order), hex
    # the sender's signature of (session, step, kind, public, proof) (splitverify.identity)
    signature: str | None = None


# a salt is a field element: salt and salt + r commit alike, so a salt past r would make one
# statement travel as two different messages
Salt = Field(0, ge=0, lt=R, description="A field element (< the BN254 scalar modulus).")


class ForwardMessage(_Message):
    activations: list[list[int]]
    labels: list[int]
    message_salt: int = Salt


class GradientMessage(_Message):
    gradient: list[list[int]]
    gradient_salt: int = Salt


class BackwardMessage(_Message):
    pass


_M = TypeVar("_M", bound=_Message)


def statement_digest(msg: BaseModel) -> str:
    """A message's identity: everything it states (public values, the tensors and salts it
    carries) but not its proof. Groth16 proofs are malleable (anyone can re-randomize a valid
    proof into another valid one), so proof bytes never decide whether two messages are one."""
    return hashlib.sha256(msg.model_dump_json(exclude={"proof"}).encode()).hexdigest()


def _tensor(rows: list[list[int]] | list[int]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.int64)


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
        elif self.mode.kind == "every":
            hit = True
        elif self.mode.kind == "audit":
            hit = self.rng.random() < self.mode.probability
            self.challenged += hit
        else:
            hit = False
        if step >= 0:
            self.decisions[(kind, step)] = hit
        if hit and statement is not None and self.mode.kind == "audit":
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


def _require_field_elements(public: dict[str, int], step: int, party: str, whose: str) -> None:
    """Every public value must be a field element in [0, r): no proof can carry another."""
    outside = [name for name, value in public.items() if not 0 <= value < st.FIELD]
    _require(not outside, step, party, f"{whose} statement has {outside} outside the field "
                                       "[0, r): no proof can carry such a value")


@dataclass
class Prover:
    """One party's proving: proves now (``every``) or keeps the inputs of its latest statement
    of each kind until the verifier challenges it (``audit``)."""
    circuits: SplitCircuits
    mode: ProofMode
    backend: str | None = None
    prove_seconds: dict[str, list[float]] = field(default_factory=dict)
    _kept: dict[str, tuple[int, dict]] = field(default_factory=dict)

    def attach(self, kind: str, step: int, inputs: Callable[[], dict]) -> str | None:
        """Keep the witness inputs of this statement (built only when a proof may be asked
        for: ``commit`` and ``off`` never prove) and prove now in ``every`` mode."""
        if not self.mode.proves:
            return None
        self._kept[kind] = (step, inputs())
        return self.prove(kind, step) if self.mode.kind == "every" else None

    def prove(self, kind: str, step: int) -> str:
        kept = self._kept.get(kind)
        if kept is None or kept[0] != step:
            raise InputError(f"no {kind} statement of step {step} to prove (only the latest "
                             "step of each kind is kept)")
        start = time.perf_counter()
        proof, _ = self.circuits.prove(kind, kept[1], self.backend)
        self.prove_seconds.setdefault(kind, []).append(time.perf_counter() - start)
        return proof.to_bytes().hex()


@dataclass
class _ClientStep:
    step: int
    x: torch.Tensor
    labels: torch.Tensor
    fwd: model.Forward
    salts: st.ClientSalts
    statement: Statement | None


class _Party:
    """What both parties hold: their half's parameters, a prover and a verifier."""
    role = ""                                   # client | server
    transcript: Transcript | None = None
    on_statement: StatementHook | None = None   # sees each statement this party sends

    def __init__(self, spec: SplitSpec, session_id: int, mode: ProofMode, params: Params,
                 circuits: SplitCircuits, *, backend: str | None = None,
                 malicious: str | None = None, identity: Identity | None = None,
                 peer: str | None = None):
        self.spec, self.session_id, self.mode = spec, session_id, mode
        self.params = params
        self.prover = Prover(circuits, mode, backend)
        self.verifier = Verifier(circuits, mode, self.role)
        self.malicious = malicious
        self.weights_salt = random_field()
        # this party's signing key, and the other party's address pinned at session creation
        self.identity = identity or Identity.generate()
        self.peer = peer
        # the public values of the latest statement of each kind this party sent (a challenge
        # of it is answered with the proof signed together with them)
        self.sent_public: dict[str, tuple[int, dict[str, int]]] = {}

    # -- persistence: what a restarted party needs to go on with the session -------------------
    def snapshot(self) -> dict:
        """The party's state as JSON-able data, taken after every message it handled so a
        restart resumes exactly there (the server keeps its transcript row by row)."""
        return {
            "params": params_to_lists(self.params), "weights_salt": self.weights_salt,
            "decisions": [[k, s, hit] for (k, s), hit in self.verifier.decisions.items()],
            "challenges": [[k, s, public] for (k, s), public in
                           self.verifier.challenges.items()],
            "verified": self.verifier.verified, "challenged": self.verifier.challenged,
            "verify_seconds": self.verifier.verify_seconds,
            "prove_seconds": self.prover.prove_seconds,
            # the inputs of the latest statement of each kind: a challenge may come after a restart
            "kept": {kind: [step, inputs] for kind, (step, inputs) in self.prover._kept.items()},
            "sent_public": {kind: [step, public] for kind, (step, public)
                            in self.sent_public.items()},
        }

    def restore(self, state: dict) -> None:
        self.params = params_from_lists(state["params"])
        self.weights_salt = state["weights_salt"]
        self.verifier.decisions = {(k, s): hit for k, s, hit in state["decisions"]}
        self.verifier.challenges = {(k, s): public for k, s, public in state["challenges"]}
        self.verifier.verified, self.verifier.challenged = state["verified"], state["challenged"]
        self.verifier.verify_seconds = state["verify_seconds"]
        self.prover.prove_seconds = state["prove_seconds"]
        self.prover._kept = {kind: (step, inputs) for kind, (step, inputs) in state["kept"].items()}
        self.sent_public = {kind: (step, public)
                            for kind, (step, public) in state["sent_public"].items()}

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

    def _checked_statement(self, kind: str, step: int, msg: _Message, expected: Statement,
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
                     challenged if self.mode.kind == "audit" else None)

    def _emit(self, kind: str, msg: _Message) -> None:
        """Hand a statement this party sends to its hook (``off`` sends none)."""
        if self.on_statement is not None and msg.public is not None:
            self.on_statement(kind, msg.step, msg.public, msg.proof)


class ClientParty(_Party):
    """The data owner: runs its half, proves it, checks the server's proofs."""
    role = "client"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.server_chain: int | None = None      # the server's last proven weightsAfter
        self._pending: _ClientStep | None = None
        self._sent: list[ForwardMessage] = []

    def weights_commitment(self) -> int:
        """The commitment of the client's current weights: before step 0, what the session's
        creation binds (``SessionCreate.initial_weights_commitment``)."""
        return st.weights_commitment(self.spec, self.params, self.weights_salt)

    def forward(self, step: int, x: torch.Tensor, labels: torch.Tensor) -> ForwardMessage:
        spec = self.spec
        fwd = model.client_forward(spec, self.params, x, labels)
        salts = st.ClientSalts(random_field(), self.weights_salt, random_field(), random_field())
        statement, proof = None, None
        if self.mode.commits:
            statement = st.client_forward_statement(spec, self.params, x, labels, fwd, salts,
                                                    self.session_id, step)
            proof = self.prover.attach("client_forward", step, lambda: st.client_forward_inputs(
                spec, self.params, x, labels, fwd, salts, self.session_id, step))
        activations = fwd.output
        if self.malicious == "client:poisoned-activation":
            # sends activations its committed weights and data did not produce, and commits to
            # what it sends (a consistent cheat: only a proof can tell)
            activations = activations.clone()
            activations[0, 0] += spec.quant.scale
            if statement is not None:
                statement = Statement("client_forward", {
                    **statement.values, "messageCommitment": st.message_commitment(
                        spec, activations, labels, salts.message)})
        # the statement sent: the server's reply must consume its message commitment (a
        # poisoning client stays consistent with itself too)
        self._pending = _ClientStep(step, x, labels, fwd, salts, statement)
        msg = ForwardMessage(session_id=self.session_id, step=step,
                             activations=activations.tolist(), labels=labels.tolist(),
                             message_salt=salts.message,
                             public=statement.values if statement else None, proof=proof)
        msg = self._signed("client_forward", msg)
        if self.malicious == "client:replay" and self._sent:
            msg = self._sent[0]                     # re-sends step 0's message and proof
        self._sent.append(msg)
        self._emit("client_forward", msg)
        return msg

    def snapshot(self) -> dict:
        """Adds the server's weight chain and the forward step waiting for its gradient (its
        forward pass is recomputed on restore: the weights are still those it ran on)."""
        pending = self._pending
        return {**super().snapshot(), "server_chain": self.server_chain,
                "pending": None if pending is None else {
                    "step": pending.step, "x": pending.x.tolist(),
                    "labels": pending.labels.tolist(), "salts": asdict(pending.salts),
                    "statement": None if pending.statement is None else pending.statement.values}}

    def restore(self, state: dict) -> None:
        super().restore(state)
        self.server_chain = state["server_chain"]
        pending = state["pending"]
        if pending is None:
            self._pending = None
            return
        x, labels = _tensor(pending["x"]), _tensor(pending["labels"])
        self._pending = _ClientStep(
            pending["step"], x, labels, model.client_forward(self.spec, self.params, x, labels),
            st.ClientSalts(**pending["salts"]),
            None if pending["statement"] is None else
            Statement("client_forward", pending["statement"]))

    def prove(self, kind: str, step: int) -> str:
        return self.prover.prove(kind, step)

    def end_session(self, steps: int) -> None:
        """Record (signed) that the session ended after ``steps`` steps, so an auditor sees a
        transcript cut short."""
        if self.transcript is not None:
            self.transcript.end = {"steps": steps, "signature": self.identity.sign(
                end_payload(self.session_id, steps))}

    def receive_gradient(self, msg: GradientMessage, request_proof: ProofRequest
                         ) -> BackwardMessage:
        """Check the server's step, then back-propagate, update and prove."""
        pending = self._pending
        if pending is None:
            raise InputError("no forward step is waiting for a gradient")
        spec, step = self.spec, pending.step
        _require(msg.session_id == self.session_id, step, "client",
                 f"the gradient message is for another session ({msg.session_id})")
        _require(msg.step == step, step, "client",
                 f"the gradient message is for step {msg.step}, expected {step}")
        gradient = _tensor(msg.gradient)
        _require(tuple(gradient.shape) == (spec.batch, spec.cut_width), step, "client",
                 "the gradient has the wrong shape")
        if self.mode.commits:
            public = msg.public or {}
            _require_field_elements(public, step, "client", "the server's")
            expected = Statement("server_step", {
                "messageCommitment": pending.statement.values["messageCommitment"],
                "weightsBefore": (self.server_chain if self.server_chain is not None
                                  else public.get("weightsBefore", -1)),
                "loss": public.get("loss", -1), "weightsAfter": public.get("weightsAfter", -1),
                "gradientCommitment": st.gradient_commitment(spec, gradient, msg.gradient_salt),
                "session": self.session_id, "step": step})
            _require(public == expected.values, step, "client",
                     _mismatch("the server's", public, expected))
            self._checked_statement("server_step", step, msg, expected, request_proof)
            self.server_chain = public["weightsAfter"]
        bwd = model.client_backward(spec, self.params, pending.fwd, gradient)
        statement, proof = None, None
        if self.mode.commits:
            args = (spec, self.params, pending.x, pending.labels, pending.fwd, gradient,
                    msg.gradient_salt, bwd, pending.salts, self.session_id, step)
            statement = st.client_backward_statement(*args)
            proof = self.prover.attach("client_backward", step,
                                       lambda: st.client_backward_inputs(*args))
        self.params = bwd.new_params
        self._pending = None
        backward = self._signed("client_backward", BackwardMessage(
            session_id=self.session_id, step=step,
            public=statement.values if statement else None, proof=proof))
        self._emit("client_backward", backward)
        return backward


@dataclass
class _ServerStep:
    step: int
    forward: dict[str, int] | None
    gradient_commitment: int | None
    loss: int


def params_to_lists(params: Params) -> list[list]:
    return [[w.tolist(), b.tolist()] for w, b in params]


def params_from_lists(rows: list[list]) -> Params:
    return [(_tensor(w), _tensor(b)) for w, b in rows]


class ServerParty(_Party):
    """The label-side half: checks the client's proofs, runs its step, proves it."""
    role = "server"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.client_chain: int | None = None      # the client's last proven weightsAfter
        self.next_step = 0
        self._pending: _ServerStep | None = None
        self.losses: list[int] = []

    def snapshot(self) -> dict:
        pending = self._pending
        return {**super().snapshot(), "client_chain": self.client_chain,
                "next_step": self.next_step, "losses": self.losses,
                "pending": None if pending is None else asdict(pending)}

    def restore(self, state: dict) -> None:
        super().restore(state)
        self.client_chain, self.next_step = state["client_chain"], state["next_step"]
        pending = state["pending"]
        self._pending = None if pending is None else _ServerStep(**pending)
        self.losses = list(state["losses"])

    @property
    def pending_step(self) -> int | None:
        """The step whose backward message this party waits for (None: none)."""
        return None if self._pending is None else self._pending.step

    def prove(self, kind: str, step: int) -> str:
        """A proof on challenge (audit mode)."""
        return self._forge(self.prover.prove(kind, step))

    def _forge(self, proof: str | None) -> str | None:
        if self.malicious != "server:forged-proof" or proof is None:
            return proof
        raw = bytearray(bytes.fromhex(proof))
        raw[200] ^= 0x01                            # one bit of C
        return raw.hex()

    def receive_forward(self, msg: ForwardMessage, request_proof: ProofRequest
                        ) -> GradientMessage:
        spec, step = self.spec, self.next_step
        _require(msg.session_id == self.session_id, step, "server",
                 f"the message is for session {msg.session_id}, not this one (a replay from "
                 "another session?)")
        _require(msg.step == step, step, "server",
                 f"the message is for step {msg.step}, expected step {step} (a replay?)")
        try:
            acts, labels = _tensor(msg.activations), _tensor(msg.labels)
        except (ValueError, TypeError, RuntimeError) as exc:
            raise InputError(f"activations and labels must be integer arrays: {exc}") from exc
        if tuple(acts.shape) != (spec.batch, spec.cut_width) or \
                tuple(labels.shape) != (spec.batch,):
            raise InputError(f"activations must be {spec.batch}×{spec.cut_width} and labels "
                             f"{spec.batch} class indices; got {tuple(acts.shape)} and "
                             f"{tuple(labels.shape)}")
        spec.quant.check_range(acts, "the activations")
        if int(labels.min()) < 0 or int(labels.max()) >= spec.classes:
            raise InputError(f"labels must lie in [0, {spec.classes})")
        public = msg.public
        if self.mode.commits:
            public = public or {}
            expected = Statement("client_forward", {
                "dataCommitment": public.get("dataCommitment", -1),
                "weightsCommitment": (self.client_chain if self.client_chain is not None
                                      else public.get("weightsCommitment", -1)),
                "messageCommitment": st.message_commitment(spec, acts, labels, msg.message_salt),
                "stateCommitment": public.get("stateCommitment", -1),
                "session": self.session_id, "step": step})
            _require(public == expected.values, step, "server",
                     _mismatch("the client's", public, expected))
        # The server's own step and statement are computed before the client's proof is drawn
        # on or anything is recorded: a message the server cannot handle (e.g. an SGD step out
        # of the circuits' range) is refused with nothing changed, and a message whose proof
        # was verified can no longer fail here.
        result = model.server_step(spec, self.params, acts, labels)
        salts = st.ServerSalts(self.weights_salt, random_field())
        statement = None
        if self.mode.commits:
            args = (spec, self.params, acts, labels, msg.message_salt, result, salts,
                    self.session_id, step)
            statement = st.server_step_statement(*args)
            self._checked_statement("client_forward", step, msg, expected, request_proof)
        proof = None
        if statement is not None:
            proof = self.prover.attach("server_step", step, lambda: st.server_step_inputs(*args))
        if self.malicious != "server:skip-update":
            self.params = result.backward.new_params
        gradient = result.gradient
        if self.malicious == "server:wrong-gradient":
            # a gradient its proven computation does not give, committed to consistently: the
            # statement matches what is sent, the proof (of the honest step) does not
            gradient = gradient.clone()
            gradient[0, 0] += spec.quant.scale // 4
            if statement is not None:
                statement = Statement("server_step", {
                    **statement.values, "gradientCommitment": st.gradient_commitment(
                        spec, gradient, salts.gradient)})
        proof = self._forge(proof)
        self._pending = _ServerStep(step, public if self.mode.commits else None,
                                    statement.values["gradientCommitment"] if statement else None,
                                    result.loss)
        self.losses.append(result.loss)
        reply = self._signed("server_step", GradientMessage(
            session_id=self.session_id, step=step, gradient=gradient.tolist(),
            gradient_salt=salts.gradient, public=statement.values if statement else None,
            proof=proof))
        self._emit("server_step", reply)
        return reply

    def receive_backward(self, msg: BackwardMessage, request_proof: ProofRequest
                         ) -> None:
        pending = self._pending
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
            _require(public == expected.values, step, "server",
                     _mismatch("the client's backward", public, expected))
            self._checked_statement("client_backward", step, msg, expected, request_proof)
            self.client_chain = public["weightsAfter"]
        self._pending = None
        self.next_step += 1


@dataclass
class SessionResult:
    steps: int                                   # steps completed
    losses: list[int]
    detected: TamperDetected | None
    client: ClientParty
    server: ServerParty
    seconds: float
    transcript: Transcript
    step_seconds: list[float] = field(default_factory=list)   # wall time of each step begun

    def summary(self) -> dict:
        def means(d: dict[str, list[float]]) -> dict[str, float]:
            return {k: round(sum(v) / len(v), 4) for k, v in d.items() if v}
        det = self.detected
        return {
            "steps": self.steps, "proof_mode": str(self.client.mode),
            "verified": det is None, "detected": det is not None,
            "detected_step": det.step if det else None,
            "detected_by": det.detected_by if det else None,
            "reason": det.reason if det else None,
            "final_loss": (self.losses[-1] / self.client.spec.quant.scale) if self.losses else None,
            "proofs_verified": {"client": self.client.verifier.verified,
                                "server": self.server.verifier.verified},
            "challenged": {"client": self.client.verifier.challenged,
                           "server": self.server.verifier.challenged},
            "prove_s": {**means(self.client.prover.prove_seconds),
                        **means(self.server.prover.prove_seconds)},
            "verify_s": {**means(self.client.verifier.verify_seconds),
                         **means(self.server.verifier.verify_seconds)},
            "seconds": round(self.seconds, 3),
        }


def run_local(client: ClientParty, server: ServerParty, batches,
              on_message: Callable[[_Message], None] = lambda _msg: None,
              contribution_signatures: dict[str, dict[str, str]] | None = None
              ) -> SessionResult:
    """Both parties in one process (tests, benchmarks): the same messages and checks as over
    HTTP, without the transport; ``on_message`` sees each message as it is handed over;
    ``contribution_signatures`` are the parties' signatures of their keys' ceremony
    (``keyexchange.local_ceremony``), for the transcript. Stops at the first TamperDetected."""
    start = time.perf_counter()
    done, step_seconds, detected = 0, [], None
    # in one process each party knows the other's identity from the start
    client.peer, server.peer = server.identity.address, client.identity.address
    transcript = new_transcript(client, contribution_signatures)
    client.transcript = server.transcript = transcript

    def handed(msg: _M) -> _M:
        on_message(msg)
        return msg
    try:
        for step, (x, labels) in enumerate(batches):
            step_start = time.perf_counter()
            step_seconds.append(0.0)
            forward = handed(client.forward(step, x, labels))
            gradient = handed(server.receive_forward(forward, client.signed_proof))
            backward = handed(client.receive_gradient(gradient, server.signed_proof))
            server.receive_backward(backward, client.signed_proof)
            step_seconds[-1] = time.perf_counter() - step_start
            done = step + 1
    except TamperDetected as exc:
        step_seconds[-1] = time.perf_counter() - step_start
        transcript.detected = {"step": exc.step, "detected_by": exc.detected_by,
                               "reason": exc.reason}
        detected = exc
    client.end_session(done)
    return SessionResult(done, server.losses, detected, client, server,
                         time.perf_counter() - start, transcript, step_seconds)


def new_transcript(party: "ClientParty | ServerParty",
                   contribution_signatures: dict[str, dict[str, str]] | None = None
                   ) -> Transcript:
    """The session's transcript as ``party`` starts it: the keys with their ceremony records
    (each contribution's points and its contributor's signature, from
    ``contribution_signatures``: circuit → contributor name → signature) and where their
    ptau came from, and both parties' pinned identities."""
    from .keyorigin import ceremony_record, key_origin

    circuits = party.prover.circuits
    kinds = KINDS if party.mode.proves else ()
    signatures = contribution_signatures or {}
    mine, theirs = party.identity.address, party.peer
    origins = {kind: key_origin(circuits, kind) for kind in kinds}
    ptaus = [o["ptau"] for o in origins.values()]
    return Transcript(
        session_id=party.session_id, spec=describe(party.spec), proof_mode=str(party.mode),
        verification_keys={kind: circuits.verification_key(kind).to_snarkjs() for kind in kinds},
        ceremony={kind: ceremony_record(circuits.key(kind), signatures.get(kind, {}))
                  for kind in kinds},
        key_origin=origins,
        # one ptau for every circuit (a published or two-party one); the development setup
        # makes one per circuit, recorded in key_origin only
        ptau=ptaus[0] if ptaus and all(p == ptaus[0] for p in ptaus) else None,
        identities={"client": mine if party.role == "client" else theirs,
                    "server": mine if party.role == "server" else theirs})

