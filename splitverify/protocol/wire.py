"""The HTTP contract, one set of models for both sides: every message, request and response the
server and the client exchange (the server declares them on its routes, the client parses the
server's answers with them), and ``ProofMode``, parsed once where its text enters."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (AliasChoices, BaseModel, ConfigDict, Field, ValidationError,
                      model_serializer)
from pydantic_core import core_schema

from ..errors import InputError, MalformedAnswer, TamperDetected
from ..identity import ADDRESS_PATTERN
from ..limits import Limits
from ..model import Dense, Layer, SplitSpec, named_spec
from ..zk.curve import R

MAX_PREDICT_ROWS = 4096
MAX_OFFERS_PER_KIND = 8       # finished keys a client may offer per circuit (one per ptau)
_Model = TypeVar("_Model", bound=BaseModel)


@dataclass(frozen=True)
class ProofMode:
    """How much of a session is committed to and proven:

    - ``every``: every message carries its statement and a proof of it;
    - ``audit:P`` (0 < P ≤ 1): statements travel without proofs; the receiver challenges each
      with probability P and the sender must then prove the statement it already sent;
    - ``pipelined:W`` (W ≥ 1 an integer): every message carries its statement at once, as in
      ``commit``; the sender proves every statement in the background (its prover pool) and
      delivers the proof later, at most W steps late: a party with W steps' proofs unverified
      waits for them before it goes on (:mod:`.pipeline`);
    - ``commit``: statements travel and chain, nothing is ever proven (a ledger without proofs:
      the blockchain baseline);
    - ``off``: no statements, no proofs (plain split learning through the same code).

    Parsed once where its text enters (a CLI option, a wire model's ``proof_mode`` field, which
    takes the text and holds a ProofMode); ``str()`` gives the text back, and wire models
    serialize it as that text."""
    kind: Literal["every", "audit", "commit", "off", "pipelined"]
    probability: float = 1.0
    lag: int = 0            # pipelined:W: W, the most steps a proof may come after its statement

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
        if text.startswith("pipelined:"):
            lag = text.split(":", 1)[1]
            if lag.isascii() and lag.isdigit() and int(lag) >= 1:
                return cls("pipelined", 1.0, int(lag))
            raise InputError(f"proof mode {text!r}: the lag W of pipelined:W must be a whole "
                             "number of steps ≥ 1 (e.g. pipelined:4)")
        raise InputError(f"proof mode {text!r}: use every, off, commit, audit:P with "
                         "0 < P ≤ 1, or pipelined:W with W ≥ 1 an integer")

    @classmethod
    def of(cls, mode: "ProofMode | str") -> "ProofMode":
        """``mode`` itself, or parsed from its text (an API that takes either)."""
        return mode if isinstance(mode, ProofMode) else cls.parse(mode)

    @classmethod
    def _from_wire(cls, value: Any) -> "ProofMode":
        if isinstance(value, ProofMode):
            return value
        if not isinstance(value, str):
            raise ValueError("proof mode: give it as text (every, off, commit, audit:P or "
                             "pipelined:W)")
        try:
            return cls.parse(value)
        except InputError as exc:
            raise ValueError(str(exc)) from exc

    @classmethod
    def __get_pydantic_core_schema__(cls, _source: Any, _handler: Any) -> core_schema.CoreSchema:
        # a field of this type reads the mode's text, holds the parsed mode, writes the text
        return core_schema.no_info_plain_validator_function(
            cls._from_wire, json_schema_input_schema=core_schema.str_schema(),
            serialization=core_schema.plain_serializer_function_ser_schema(str))

    @classmethod
    def __get_pydantic_json_schema__(cls, _schema: Any, _handler: Any) -> dict[str, Any]:
        # the OpenAPI document shows the mode as its text (a plain validator has no schema)
        return {"type": "string",
                "examples": ["every", "audit:0.25", "commit", "off", "pipelined:4"],
                "description": "every, audit:P (0 < P <= 1), commit, off or pipelined:W "
                               "(W >= 1 an integer)"}

    def __str__(self) -> str:
        if self.kind == "pipelined":
            return f"pipelined:{self.lag}"
        return f"audit:{self.probability:g}" if self.kind == "audit" else self.kind

    @property
    def commits(self) -> bool:
        return self.kind != "off"

    @property
    def proves(self) -> bool:
        """Whether any proof may be asked for (so the parties need keys)."""
        return self.kind in ("every", "audit", "pipelined")


EVERY = ProofMode("every")


def random_field() -> int:
    """A fresh salt or session id: 250 random bits (below the field's modulus)."""
    return secrets.randbits(250)


class OfferedKey(BaseModel):
    """A finished ceremony key the client holds for this server identity (issue 19)."""
    model_config = ConfigDict(extra="forbid")
    blake2b: str = Field(..., pattern=r"^[0-9a-f]{128}$")
    origin_session: int = Field(..., ge=0, lt=R)


class KeyReuseOffer(BaseModel):
    """The finished keys a client offers to reuse, per circuit kind: the server takes a kind
    only if its own cache holds the identical key (same blake2b, verified by the server, its
    own contribution in it) for this very pair of identities; every other kind runs the
    ceremony."""
    model_config = ConfigDict(extra="forbid")
    server_identity: str = Field(..., pattern=ADDRESS_PATTERN,
                                 description="The server identity the keys were made with.")
    keys: dict[Literal["client_forward", "server_step", "client_backward"],
               Annotated[list[OfferedKey], Field(max_length=MAX_OFFERS_PER_KIND)]] = Field(
        default_factory=dict)


class SessionCreate(BaseModel):
    """What a client asks for when it opens a session (``POST /sessions``)."""
    model_config = ConfigDict(extra="forbid")
    model: Literal["refnet", "cnn", "layers"] = Field(
        "refnet", description="'refnet' (REFERENCE.md), 'cnn' (the reference CNN) or 'layers' "
                              "(Linear layers)")
    client_layers: list[tuple[int, int, bool]] | None = None   # (n_in, n_out, relu) for 'layers'
    server_layers: list[tuple[int, int, bool]] | None = None
    batch: int = Field(16, ge=1, description="At most the server's dimension limit.")
    # the default is written as its text in the API's schema (a ProofMode is text on the wire)
    proof_mode: ProofMode = Field(EVERY, json_schema_extra={"default": str(EVERY)})
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
    # finished ceremony keys the client offers to reuse (absent: the ceremony runs for all)
    key_offers: KeyReuseOffer | None = None
    # SplitFed-V1 (--aggregate every:R): the client hands its half over every R steps; it must
    # be what the server averages at (a server that averages refuses a session without it)
    aggregate_every: int | None = Field(None, ge=1)
    # who holds the labels: the client sends each batch's labels, or ('server', a vertical
    # split) the server holds them in its committed label table and the client sends ids
    labels: Literal["client", "server"] = Field(
        "client", description="'client': forward messages carry labels; 'server': the server's "
        "committed label table holds them and forward messages carry sample ids")

    @classmethod
    def of(cls, spec: SplitSpec, mode: ProofMode, seed: int,
           initial_weights_commitment: int | None = None,
           client_identity: str | None = None,
           labels: Literal["client", "server"] = "client") -> "SessionCreate":
        bound = {"initial_weights_commitment": initial_weights_commitment,
                 "client_identity": client_identity, "labels": labels}
        if spec == SplitSpec.refnet(batch=spec.batch):
            return cls(batch=spec.batch, proof_mode=mode, seed=seed, **bound)
        if spec == SplitSpec.refcnn(batch=spec.batch):
            return cls(model="cnn", batch=spec.batch, proof_mode=mode, seed=seed, **bound)
        if not all(isinstance(layer, Dense) for layer in spec.client + spec.server):
            raise InputError("a session's model travels as 'refnet', 'cnn' or Linear layers; "
                             "other convolutional models are not yet supported over HTTP")
        return cls(model="layers", batch=spec.batch, proof_mode=mode, seed=seed,
                   client_layers=[(d.n_in, d.n_out, d.relu) for d in spec.client],
                   server_layers=[(d.n_in, d.n_out, d.relu) for d in spec.server], **bound)

    def spec(self) -> SplitSpec:
        return SplitSpec(*self.layers(), self.batch)

    def layers(self) -> tuple[tuple[Layer, ...], tuple[Layer, ...]]:
        """The client's and the server's layers as asked for (not yet checked as a model)."""
        if self.model in ("refnet", "cnn"):
            named = named_spec(self.model, batch=1)
            return named.client, named.server
        if self.model == "layers" and self.client_layers and self.server_layers:
            return (tuple(Dense(*d) for d in self.client_layers),
                    tuple(Dense(*d) for d in self.server_layers))
        raise InputError("model must be 'refnet', 'cnn', or 'layers' with client_layers and "
                         "server_layers")

    def within(self, limits: Limits) -> None:
        """Refuse a model the server will not hold, before its spec or weights are built: the
        sizes come from its layers, whatever their type."""
        layers = [layer for half in self.layers() for layer in half]
        too_wide = [d for layer in layers for d in (layer.n_in, layer.n_out) if d > limits.dim]
        if too_wide or self.batch > limits.dim:
            raise InputError(f"layer widths and the batch must be ≤ {limits.dim} (the server's "
                             f"dimension limit); got {max(too_wide + [self.batch])}")
        params = sum(layer.parameter_count for layer in layers)
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
    # the batch's labels, or under --labels server its rows' sample ids (the server holds the
    # labels): exactly one of the two
    labels: list[int] | None = None
    ids: list[int] | None = None
    message_salt: int = Salt


class GradientMessage(_Message):
    gradient: list[list[int]]
    gradient_salt: int = Salt


class BackwardMessage(_Message):
    pass


def statement_digest(msg: BaseModel) -> str:
    """A message's identity: everything it states (public values, the tensors and salts it
    carries) but not its proof. Groth16 proofs are malleable (anyone can re-randomize a valid
    proof into another valid one), so proof bytes never decide whether two messages are one."""
    return hashlib.sha256(msg.model_dump_json(exclude={"proof"}).encode()).hexdigest()


# -- the server's answers -------------------------------------------------------------------------

class StopRecord(BaseModel):
    """Where tampering stopped a session: the one shape of that record, in a 409 answer, the
    session's status, its transcript and the client's state folder. (``step`` is read as
    ``detected_step``: records written before this model used that key.)"""
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    detected_step: int = Field(validation_alias=AliasChoices("detected_step", "step"))
    detected_by: str
    reason: str
    # pipelined:W: the step whose end both parties went back to (the last step whose proofs all
    # verified; -1: the initial weights); None in the other modes
    rolled_back_to: int | None = None

    @model_serializer(mode="wrap")
    def _without_rollback_unless_made(self, handler: Any) -> dict[str, Any]:
        # the record keeps its shape in the modes that never roll back
        data = handler(self)
        if data.get("rolled_back_to") is None:
            data.pop("rolled_back_to", None)
        return data

    @classmethod
    def of(cls, exc: TamperDetected) -> "StopRecord":
        return cls(detected_step=exc.step, detected_by=exc.detected_by, reason=exc.reason,
                   rolled_back_to=exc.rolled_back_to)

    def error(self) -> TamperDetected:
        return TamperDetected(self.detected_step, self.detected_by, self.reason,
                              self.rolled_back_to)


class ErrorBody(BaseModel):
    """Every 4xx answer. ``error`` says what was wrong; a 409 adds where the session stopped
    (``detected_step``, ``detected_by``, ``reason``), a 428 what to prove (``challenge``,
    ``step``)."""
    error: str
    detected_step: int | None = None
    detected_by: str | None = None
    reason: str | None = None
    rolled_back_to: int | None = None
    challenge: str | None = None
    step: int | None = None


class LabelTableInfo(BaseModel):
    """What a client learns of the server's label table (``labels: server``): its commitment
    (every ServerStep statement names it), its depth (the bits of a sample id in the client's
    circuits) and its size (valid ids are 0 … size − 1). Never a label."""
    model_config = ConfigDict(extra="forbid")
    commitment: int = Field(..., ge=0, lt=R)
    depth: int = Field(..., ge=1, le=32)
    size: int = Field(..., ge=1)

    def check(self) -> "LabelTableInfo":
        """The depth must be the one of a table of ``size`` rows (what the server's circuits
        use), else the client's circuits would not match the server's."""
        from ..label_table import table_depth

        if table_depth(self.size) != self.depth:
            raise MalformedAnswer(f"the server's label table has {self.size} rows but says "
                                  f"depth {self.depth} (a table of that size has depth "
                                  f"{table_depth(self.size)})")
        return self


class SessionCreated(BaseModel):
    session_id: int
    token: str
    spec: str
    proof_mode: ProofMode
    ceremony: bool = False       # the client must contribute to the keys before the first step
    idle_expiry_s: int = 0       # the session is removed after this long without a request
    server_identity: str | None = None   # the server's address: its signatures recover to it
    # the session's powers of tau (the transcript's ``ptau`` record), or, while a two-party
    # phase 1 is to be made, {"origin": "two-party", "phase1": true, "power": p}
    ptau: dict | None = None
    server_party: str | None = None   # the server's party id (two-party phase 1): its address
    # kind → the session whose finished key this session reuses (no ceremony for that kind)
    reused_keys: dict[str, int] = Field(default_factory=dict)
    # kind → why an offered key was not taken (the ceremony runs for it)
    key_reuse_declined: dict[str, str] = Field(default_factory=dict)
    # the server half is shared with other clients' sessions (``serve --shared-model``): its
    # ServerSteps start from the server's chain head, which other clients' steps move
    shared_model: bool = False
    # labels 'server': the server's label table as the client may know it (no label)
    label_table: LabelTableInfo | None = None


class HalfSubmission(BaseModel):
    """SplitFed-V1 (``--aggregate every:R``), client → server at the end of round ``round``
    (its last step ``step``): the client half and its weights salt, whose commitment must be
    the session's last proven weightsAfter (``protocol.aggregation``)."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    session_id: int
    round: int = Field(ge=0)
    step: int = Field(ge=0)
    params: list[list[Any]]            # per layer [weights, bias], fixed point (nested lists)
    weights_salt: int = Salt


class RoundStatus(BaseModel):
    """The server's answer to a half: how many of the round's halves it holds."""
    round: int
    received: int
    clients: int
    complete: bool


class AverageAnswer(BaseModel):
    """Server → one client of a completed round: its average and the Aggregate statement,
    proof and signature sent to it (``aggregation.AverageMessage`` on the wire)."""
    session_id: int
    round: int
    step: int
    slot: int                          # the client's place among the round's halves
    average: list[list[Any]]
    public: dict[str, int] | None = None
    proof: str | None = None
    signature: str | None = None


class PublishedRound(BaseModel):
    """A round as ``GET /chain`` publishes it (``rounds``): the Aggregate statement and proof,
    the sessions averaged (in slot order), the round's last step and how many ServerSteps the
    chain held when it was averaged. Commitments only."""
    round: int
    step: int
    sessions: list[str]
    public: dict[str, int]
    proof: str | None = None
    chain_index: int


class ProveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str
    step: int


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    activations: list[list[int]] = Field(..., max_length=MAX_PREDICT_ROWS)


class SessionStatus(BaseModel):
    session_id: int
    next_step: int
    stopped: StopRecord | None
    proof_mode: ProofMode
    proofs_verified: int
    challenged: int
    losses: list[int]
    prove_s: dict[str, list[float]]
    verify_s: dict[str, list[float]]
    idle_expiry_s: int = 0       # the session is removed after this long without a request


class StepDone(BaseModel):
    step: int


class ProofBody(BaseModel):
    proof: str = Field(description="256-byte Groth16 proof (EIP-197 order), hex")
    signature: str | None = Field(None, description="The server's signature of the statement "
                                  "with this proof (splitverify.identity).")


class LateProof(BaseModel):
    """``pipelined:W``: the proof of a statement its sender sent earlier (``kind`` at ``step``),
    with the sender's signature of that statement together with this proof."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: str
    step: int = Field(ge=0)
    proof: str = Field(description="256-byte Groth16 proof (EIP-197 order), hex")
    signature: str


class ProofExchange(BaseModel):
    """``pipelined:W`` (``POST /sessions/{id}/proofs`` and its answer): the sender's proofs
    made so far, the other party's statements (kind, step) whose proofs the sender has
    verified (their prover stops offering them), and ``through_step``: every proof of the
    steps up to it must be delivered now (the lag bound; the answering party waits for its own
    proofs of those steps). ``stopped``: the client tells the server the tampering it detected
    and the step both roll back to."""
    model_config = ConfigDict(extra="forbid")
    proofs: list[LateProof] = Field(default_factory=list, max_length=4096)
    verified: list[tuple[str, int]] = Field(default_factory=list, max_length=4096)
    through_step: int = -1
    stopped: StopRecord | None = None


class Predictions(BaseModel):
    classes: list[int]


class SessionDeleted(BaseModel):
    session_id: int
    deleted: bool


class Phase1Accepted(BaseModel):
    sha256: str = Field(description="sha256 of the prepared ptau: the client's must be equal")
    power: int


class KeyAccepted(BaseModel):
    kind: str
    accepted: bool
    contributions: list[str]


def parse_answer(model: type[_Model], data: Any, what: str) -> _Model:
    """``data`` (a decoded JSON answer) as ``model``; a malformed answer is a MalformedAnswer
    naming the fields that are wrong."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(body)'}: {e['msg']}"
                             for e in exc.errors()[:5])
        raise MalformedAnswer(f"{what}: the server's answer is not a {model.__name__} "
                              f"({problems}); is it a splitverify server of this version?"
                              ) from exc
