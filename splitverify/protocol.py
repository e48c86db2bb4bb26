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

A party's ``on_statement`` hook (e.g. :class:`splitverify.chain.LedgerSink`) is called with every
statement the party itself sends — kind, step, public values and proof (None when not proven
now) — exactly as it goes on the wire, cheats included: a ledger holds what was claimed.
"""

from __future__ import annotations

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
from .limits import Limits
from .model import Dense, Params, SplitSpec
from .transcript import Transcript
from .zk import Proof

# (kind, step, public values, proof hex or None) of a statement a party sends
StatementHook = Callable[[str, int, dict[str, int], str | None], None]

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
    # the client's party id (two-party phase 1, cached per pair) and the ptau it was told to
    # use ({"origin", "sha256"}); a server using another one refuses the session
    party_id: str | None = None
    ptau: dict[str, str | None] | None = None

    @classmethod
    def of(cls, spec: SplitSpec, mode: "ProofMode", seed: int) -> "SessionCreate":
        if spec == SplitSpec.refnet(batch=spec.batch):
            return cls(batch=spec.batch, proof_mode=str(mode), seed=seed)
        return cls(model="layers", batch=spec.batch, proof_mode=str(mode), seed=seed,
                   client_layers=[(d.n_in, d.n_out, d.relu) for d in spec.client],
                   server_layers=[(d.n_in, d.n_out, d.relu) for d in spec.server])

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


class ForwardMessage(_Message):
    activations: list[list[int]]
    labels: list[int]
    message_salt: int = 0


class GradientMessage(_Message):
    gradient: list[list[int]]
    gradient_salt: int = 0


class BackwardMessage(_Message):
    pass


_M = TypeVar("_M", bound=_Message)


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

    def wants_proof(self, kind: str = "", step: int = -1) -> bool:
        """Drawn once per (kind, step), after the statement is held, from randomness the prover
        cannot see (a re-sent message gets the same answer)."""
        if (kind, step) in self.decisions and step >= 0:
            return self.decisions[(kind, step)]
        if self.mode.kind == "every":
            hit = True
        elif self.mode.kind == "audit":
            hit = self.rng.random() < self.mode.probability
            self.challenged += hit
        else:
            hit = False
        if step >= 0:
            self.decisions[(kind, step)] = hit
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
        return proof_hex


def _require(cond: bool, step: int, party: str, reason: str) -> None:
    if not cond:
        raise TamperDetected(step, party, reason)


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
                 malicious: str | None = None):
        self.spec, self.session_id, self.mode = spec, session_id, mode
        self.params = params
        self.prover = Prover(circuits, mode, backend)
        self.verifier = Verifier(circuits, mode, self.role)
        self.malicious = malicious
        self.weights_salt = random_field()

    # -- persistence: what a restarted party needs to go on with the session -------------------
    def snapshot(self) -> dict:
        """The party's state as JSON-able data, taken after every message it handled so a
        restart resumes exactly there (the server keeps its transcript row by row)."""
        return {
            "params": params_to_lists(self.params), "weights_salt": self.weights_salt,
            "decisions": [[k, s, hit] for (k, s), hit in self.verifier.decisions.items()],
            "verified": self.verifier.verified, "challenged": self.verifier.challenged,
            "verify_seconds": self.verifier.verify_seconds,
            "prove_seconds": self.prover.prove_seconds,
            # the inputs of the latest statement of each kind: a challenge may come after a restart
            "kept": {kind: [step, inputs] for kind, (step, inputs) in self.prover._kept.items()},
        }

    def restore(self, state: dict) -> None:
        self.params = params_from_lists(state["params"])
        self.weights_salt = state["weights_salt"]
        self.verifier.decisions = {(k, s): hit for k, s, hit in state["decisions"]}
        self.verifier.verified, self.verifier.challenged = state["verified"], state["challenged"]
        self.verifier.verify_seconds = state["verify_seconds"]
        self.prover.prove_seconds = state["prove_seconds"]
        self.prover._kept = {kind: (step, inputs) for kind, (step, inputs) in state["kept"].items()}

    def _record(self, kind: str, step: int, public: dict[str, int], proof: str | None) -> None:
        """What this party received and checked goes into the session's transcript."""
        if self.transcript is not None:
            self.transcript.record(kind, step, public, proof)

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

    def receive_gradient(self, msg: GradientMessage, request_proof: Callable[[str, int], str]
                         ) -> BackwardMessage:
        """Check the server's step, then back-propagate, update and prove."""
        pending = self._pending
        if pending is None:
            raise InputError("no forward step is waiting for a gradient")
        spec, step = self.spec, pending.step
        _require(msg.session_id == self.session_id and msg.step == step, step, "client",
                 f"the gradient message is for session/step {msg.session_id}/{msg.step}")
        gradient = _tensor(msg.gradient)
        _require(tuple(gradient.shape) == (spec.batch, spec.cut_width), step, "client",
                 "the gradient has the wrong shape")
        if self.mode.commits:
            public = msg.public or {}
            expected = Statement("server_step", {
                "messageCommitment": pending.statement.values["messageCommitment"],
                "weightsBefore": (self.server_chain if self.server_chain is not None
                                  else public.get("weightsBefore", -1)),
                "loss": public.get("loss", -1), "weightsAfter": public.get("weightsAfter", -1),
                "gradientCommitment": st.gradient_commitment(spec, gradient, msg.gradient_salt),
                "session": self.session_id, "step": step})
            _require(public == expected.values, step, "client",
                     "the server's statement does not match what the client sent and received "
                     "(message, gradient or the server's weight chain)")
            proof = None
            if self.verifier.wants_proof("server_step", step):
                proof = self.verifier.check("server_step", step,
                                            msg.proof or request_proof("server_step", step),
                                            expected)
            self._record("server_step", step, public, proof)
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
        backward = BackwardMessage(session_id=self.session_id, step=step,
                                   public=statement.values if statement else None, proof=proof)
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

    def prove(self, kind: str, step: int) -> str:
        """A proof on challenge (audit mode)."""
        return self._forge(self.prover.prove(kind, step))

    def _forge(self, proof: str | None) -> str | None:
        if self.malicious != "server:forged-proof" or proof is None:
            return proof
        raw = bytearray(bytes.fromhex(proof))
        raw[200] ^= 0x01                            # one bit of C
        return raw.hex()

    def receive_forward(self, msg: ForwardMessage, request_proof: Callable[[str, int], str]
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
                     "the client's statement does not match the activations received or the "
                     "client's weight chain")
            proof = None
            if self.verifier.wants_proof("client_forward", step):
                proof = self.verifier.check("client_forward", step, msg.proof or
                                            request_proof("client_forward", step), expected)
            self._record("client_forward", step, public, proof)
        result = model.server_step(spec, self.params, acts, labels)
        salts = st.ServerSalts(self.weights_salt, random_field())
        statement, proof = None, None
        if self.mode.commits:
            args = (spec, self.params, acts, labels, msg.message_salt, result, salts,
                    self.session_id, step)
            statement = st.server_step_statement(*args)
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
        reply = GradientMessage(session_id=self.session_id, step=step,
                                gradient=gradient.tolist(), gradient_salt=salts.gradient,
                                public=statement.values if statement else None, proof=proof)
        self._emit("server_step", reply)
        return reply

    def receive_backward(self, msg: BackwardMessage, request_proof: Callable[[str, int], str]
                         ) -> None:
        pending = self._pending
        if pending is None:
            raise InputError("no server step is waiting for the client's backward message")
        step = pending.step
        _require(msg.session_id == self.session_id and msg.step == step, step, "server",
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
                     "the client's backward statement does not refer to this step's forward "
                     "pass and gradient")
            proof = None
            if self.verifier.wants_proof("client_backward", step):
                proof = self.verifier.check("client_backward", step, msg.proof or
                                            request_proof("client_backward", step), expected)
            self._record("client_backward", step, public, proof)
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
              on_message: Callable[[_Message], None] = lambda _msg: None) -> SessionResult:
    """Both parties in one process (tests, benchmarks): the same messages and checks as over
    HTTP, without the transport; ``on_message`` sees each message as it is handed over.
    Stops at the first TamperDetected."""
    start = time.perf_counter()
    done, step_seconds, detected = 0, [], None
    transcript = new_transcript(client)
    client.transcript = server.transcript = transcript

    def handed(msg: _M) -> _M:
        on_message(msg)
        return msg
    try:
        for step, (x, labels) in enumerate(batches):
            step_start = time.perf_counter()
            step_seconds.append(0.0)
            forward = handed(client.forward(step, x, labels))
            gradient = handed(server.receive_forward(forward, client.prove))
            backward = handed(client.receive_gradient(gradient, server.prove))
            server.receive_backward(backward, client.prove)
            step_seconds[-1] = time.perf_counter() - step_start
            done = step + 1
    except TamperDetected as exc:
        step_seconds[-1] = time.perf_counter() - step_start
        transcript.detected = {"step": exc.step, "detected_by": exc.detected_by,
                               "reason": exc.reason}
        detected = exc
    return SessionResult(done, server.losses, detected, client, server,
                         time.perf_counter() - start, transcript, step_seconds)


def new_transcript(party: "ClientParty | ServerParty") -> Transcript:
    circuits = party.prover.circuits
    kinds = KINDS if party.mode.proves else ()
    return Transcript(
        session_id=party.session_id, spec=describe(party.spec), proof_mode=str(party.mode),
        verification_keys={kind: circuits.verification_key(kind).to_snarkjs() for kind in kinds},
        ceremony={kind: [asdict(c) for c in circuits.key(kind).transcript] for kind in kinds})

