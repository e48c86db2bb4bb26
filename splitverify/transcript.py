"""Session transcripts and their offline audit.

A transcript holds what a third party needs to re-verify a session without either party: the
model spec, the proof mode, the verification key of each circuit with its ceremony record and
ptau (``keyorigin``), both parties' pinned identities, per step the public statement, proof (if
one was made) and sender's signature of every message, and the client's signed end. ``audit``
establishes the keys from their ceremony before it trusts a proof, checks every signature and
the proof mode's promises, re-verifies every proof and the whole chain of commitments: each
message's commitment is the one the next proof consumed, and every party's weights after step t
are its weights before step t + 1.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from . import zk
from .circuitgen import KINDS, Statement
from .circuitgen.statements import AGGREGATE, aggregate_signal_names, signal_names
from .errors import InputError, SplitverifyError
from .identity import end_payload, round_payload, signed_by, statement_payload
from .protocol.wire import ProofMode, StopRecord
from .zk.curve import R as FIELD_MODULUS

class TranscriptEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    step: int
    kind: str
    public: dict[str, int]
    proof: str | None = None      # 256-byte proof, hex; None when the step was not challenged
    # the sender's signature of (session, step, kind, public, proof) (splitverify.identity)
    signature: str | None = None
    # audit:P: whether the receiver's draw challenged this statement (None in other modes)
    challenged: bool | None = None


class RoundEntry(BaseModel):
    """SplitFed-V1 (``protocol.aggregation``): a round this session's client half was averaged
    in, as the client checked it: the Aggregate statement and proof."""
    model_config = ConfigDict(extra="forbid")
    after_step: int               # the round ended with this step of the session
    round: int
    slot: int                     # this session's place among the round's clients
    public: dict[str, int]
    proof: str | None = None
    # the server's signature of it (splitverify.identity.round_payload)
    signature: str | None = None


class Transcript(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = 1
    session_id: int
    spec: str
    proof_mode: ProofMode                       # written as its text (every, audit:P, …)
    verification_keys: dict[str, dict[str, Any]]
    # per circuit, the phase-2 contributions of its key: index, name, kind and snarkjs hash,
    # with the contribution's points (hex, LEM as in the zkey) and its contributor's signature
    ceremony: dict[str, list[dict[str, Any]]] = {}
    entries: list[TranscriptEntry] = []
    detected: StopRecord | None = None        # where tampering stopped the session
    # per circuit: its ptau ({"sha256", "power", "origin", "name"}) and circuit hash
    key_origin: dict[str, dict[str, Any]] = {}
    # the ptau of every circuit when they share one: {"sha256": hex of the file, "power": int,
    # "origin": "development" | "published" | "two-party", "name": str | None}
    ptau: dict[str, Any] | None = None
    # the parties' pinned identities (Ethereum addresses): {"client": …, "server": …}
    identities: dict[str, str | None] = {}
    # the client's signed end of the session: {"steps": n, "signature": hex}
    end: dict[str, Any] | None = None
    # the server half was shared with other clients' sessions (``serve --shared-model``): its
    # ServerSteps continue the server's chain across sessions, not this session's own
    shared_server_model: bool = False
    # --labels server: the commitment of the server's label table, bound once for the session;
    # every ServerStep proves its labels came from it
    label_table: int | None = None
    # SplitFed-V1: the rounds this session's client half was averaged in, and the Aggregate
    # circuit's verification key (snarkjs JSON)
    rounds: list[RoundEntry] = []
    aggregate_key: dict[str, Any] | None = None
    # the Aggregate key's ceremony as the client checked it (``aggregate_ceremony``): the run,
    # the circuit hash, every contribution with its contributor's address and signature
    aggregate_ceremony: dict[str, Any] | None = None

    def record(self, kind: str, step: int, public: dict[str, int] | None,
               proof: str | None, *, signature: str | None = None,
               challenged: bool | None = None) -> None:
        if public is not None:
            self.entries.append(TranscriptEntry(step=step, kind=kind, public=public, proof=proof,
                                                signature=signature, challenged=challenged))

    def add_proof(self, kind: str, step: int, proof: str, signature: str | None
                  ) -> TranscriptEntry:
        """``pipelined:W``: the proof of a statement recorded earlier has come and verified;
        its entry holds it now, with the sender's signature of the statement and proof."""
        for i, entry in enumerate(self.entries):
            if (entry.kind, entry.step) == (kind, step):
                self.entries[i] = entry.model_copy(update={"proof": proof,
                                                           "signature": signature})
                return self.entries[i]
        raise InputError(f"the transcript holds no {kind} statement of step {step} to add "
                         "its proof to")

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.model_dump_json(indent=1))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Transcript":
        path = Path(path)
        try:
            return cls.model_validate_json(path.read_text())
        except FileNotFoundError as exc:
            raise InputError(f"transcript {path} does not exist") from exc
        except ValueError as exc:
            raise InputError(f"{path} is not a splitverify transcript: {exc}") from exc


@dataclass
class AuditReport:
    valid: bool
    steps: int
    proofs_verified: int
    bad_step: int | None = None
    reason: str | None = None
    established: str | None = None     # what a valid transcript establishes, in words


def _chain_errors(entries: dict[tuple[int, str], TranscriptEntry], step: int,
                  session_id: int, shared_server_model: bool = False,
                  label_table: int | None = None,
                  rounds: dict[int, RoundEntry] | None = None) -> str | None:
    """The commitments that must agree within step ``step`` and with step − 1 (the server's
    weights only within the session when its server half is not shared; every ServerStep's
    label table the session's, under --labels server; the client's weights the average's
    after a round of averaged halves ended with step − 1)."""
    get = entries.get
    cf, ss, cb = (get((step, k)) for k in KINDS)
    for kind, e in zip(KINDS, (cf, ss, cb)):
        if e is None:
            return f"the {kind} statement is missing"
        reads_table = kind == "server_step" and label_table is not None
        if set(e.public) != set(signal_names(kind, reads_table)):
            return f"the {kind} statement has the wrong public inputs"
        if e.public["session"] != session_id or e.public["step"] != step:
            return f"the {kind} statement is for another session or step"
        if reads_table and e.public["labelTable"] != label_table:
            return "the server's step read another label table than the session's"
    pairs = [
        (ss.public["messageCommitment"], cf.public["messageCommitment"],
         "the server consumed another message than the client sent"),
        (cb.public["gradientCommitment"], ss.public["gradientCommitment"],
         "the client consumed another gradient than the server sent"),
        (cb.public["dataCommitment"], cf.public["dataCommitment"],
         "the client's backward pass used other data than its forward pass"),
        (cb.public["stateCommitment"], cf.public["stateCommitment"],
         "the client's backward pass used another forward state"),
        (cb.public["weightsBefore"], cf.public["weightsCommitment"],
         "the client's backward pass used other weights than its forward pass"),
    ]
    prev_cb, prev_ss = get((step - 1, "client_backward")), get((step - 1, "server_step"))
    averaged = (rounds or {}).get(step - 1)
    if averaged is not None:
        pairs.append((cf.public["weightsCommitment"],
                      averaged.public[f"averageWeights{averaged.slot}"],
                      f"the client's weights are not the average of round {averaged.round}"))
    elif prev_cb is not None:
        pairs.append((cf.public["weightsCommitment"], prev_cb.public["weightsAfter"],
                      "the client's weights are not its previous step's updated weights"))
    if prev_ss is not None and not shared_server_model:
        pairs.append((ss.public["weightsBefore"], prev_ss.public["weightsAfter"],
                      "the server's weights are not its previous step's updated weights"))
    for got, want, reason in pairs:
        if got != want:
            return reason
    return None


SENDER = {"client_forward": "client", "server_step": "server", "client_backward": "client"}


def _entry_errors(transcript: Transcript, e: TranscriptEntry, mode: str) -> str | None:
    """One entry's own promises: reduced public values, its sender's signature, and the proof
    its proof mode requires."""
    out_of_field = [name for name, v in e.public.items() if not 0 <= v < FIELD_MODULUS]
    if out_of_field:
        return (f"the {e.kind} statement's {out_of_field} are not reduced field elements "
                "(each must lie in [0, r))")
    sender = SENDER[e.kind]
    try:
        payload = statement_payload(transcript.session_id, e.step, e.kind, e.public, e.proof)
    except InputError as exc:
        return str(exc)
    if not signed_by(transcript.identities.get(sender), payload, e.signature):
        return (f"the {e.kind} statement is not signed by the {sender}'s pinned identity "
                f"{transcript.identities.get(sender)}")
    if (mode == "every" or mode.startswith("pipelined:")) and e.proof is None:
        return f"the {e.kind} statement has no proof, but the proof mode '{mode}' proves each one"
    if mode.startswith("audit:"):
        if e.challenged is None:
            return f"the {e.kind} statement does not record whether its verifier challenged it"
        if e.challenged and e.proof is None:
            return f"the {e.kind} statement was challenged but its proof is not recorded"
    if mode in ("commit", "off") and e.proof is not None:
        return f"the {e.kind} statement carries a proof, but the proof mode '{mode}' proves none"
    return None


def _round_errors(transcript: Transcript, r: RoundEntry,
                  entries: dict[tuple[int, str], TranscriptEntry], vk: zk.VerificationKey | None,
                  verifier: str) -> str | None:
    """A round of averaged halves: its statement's form, this session's place in it, the
    half it averaged being the session's weights after the round's last step, and its proof
    (required when the session proves)."""
    clients = sum(name.startswith("clientWeights") for name in r.public)
    try:
        names = aggregate_signal_names(clients)
    except InputError:
        names = ()
    if set(r.public) != set(names) or not 0 <= r.slot < clients:
        return f"round {r.round}'s Aggregate statement has the wrong public inputs"
    if any(not 0 <= v < FIELD_MODULUS for v in r.public.values()):
        return f"round {r.round}'s Aggregate statement holds values outside the field"
    if r.public[f"session{r.slot}"] != transcript.session_id or r.public["round"] != r.round:
        return f"round {r.round}'s Aggregate statement is for another session or round"
    server = transcript.identities.get("server")
    if not signed_by(server, round_payload(transcript.session_id, r.after_step, r.round, r.slot,
                                           r.public, r.proof), r.signature):
        return (f"round {r.round}'s Aggregate statement is not signed by the server's pinned "
                f"identity {server}")
    last = entries.get((r.after_step, "client_backward"))
    if last is None or r.public[f"clientWeights{r.slot}"] != last.public["weightsAfter"]:
        return (f"round {r.round} averaged another half than the client's weights after step "
                f"{r.after_step}")
    if not transcript.proof_mode.proves:
        return None
    if r.proof is None or vk is None:
        return f"round {r.round}'s Aggregate proof or its verification key is missing"
    try:
        ok = zk.verify(vk, zk.Proof.from_bytes(bytes.fromhex(r.proof)),
                       zk.PublicSignals(tuple(Statement(AGGREGATE, r.public).signals())),
                       verifier)
    except (ValueError, SplitverifyError) as exc:
        return f"round {r.round}'s Aggregate proof is malformed: {exc}"
    return None if ok else f"round {r.round}'s Aggregate proof does not verify"


def _end_errors(transcript: Transcript, steps: int) -> str | None:
    end = transcript.end
    if end is None:
        return "the transcript has no end record: it may have been cut short"
    client = transcript.identities.get("client")
    if not isinstance(end.get("steps"), int) or not signed_by(
            client, end_payload(transcript.session_id, end["steps"]), end.get("signature")):
        return f"the end record is not signed by the client's pinned identity {client}"
    if end["steps"] != steps:
        return (f"the client ended the session after {end['steps']} steps, the transcript holds "
                f"{steps}: it was cut short or extended")
    return None


def audit(transcript: Transcript, verifier: str = "native",
          ptau_files: list[Path] | tuple[Path, ...] = (),
          expected_identities: dict[str, str] | None = None) -> AuditReport:
    """Establish the keys (``keyorigin.check_keys``; re-derived from each ptau in
    ``ptau_files``), then check every entry's signature, field range and proof-mode promise, the
    chain of commitments and every proof, and the signed end of the session; the first failure
    is reported. A transcript that records detected tampering is never valid.
    ``expected_identities`` (party → address): the parties the auditor knows, which the
    transcript's pinned identities must be (otherwise the signatures only show that *someone*
    holding those keys wrote each side)."""
    from .keyorigin import KeyRefused, check_keys

    for party, address in (expected_identities or {}).items():
        if transcript.identities.get(party) != address:
            return AuditReport(False, 0, 0, None, f"the transcript pins the {party} identity "
                               f"{transcript.identities.get(party)}, not {address}")
    if transcript.detected:
        return AuditReport(False, 0, 0, transcript.detected.detected_step,
                           f"the transcript records detected tampering: {transcript.detected}")
    mode = transcript.proof_mode
    keys = None
    if mode.proves:
        try:
            keys = check_keys(transcript, ptau_files)
        except KeyRefused as exc:
            return AuditReport(False, 0, 0, None, str(exc))
    try:
        vks = {kind: zk.VerificationKey.from_snarkjs(vk)
               for kind, vk in transcript.verification_keys.items()}
    except SplitverifyError as exc:
        return AuditReport(False, 0, 0, None, f"a verification key is malformed: {exc}")
    entries: dict[tuple[int, str], TranscriptEntry] = {}
    for e in transcript.entries:
        if (e.step, e.kind) in entries or e.kind not in KINDS:
            return AuditReport(False, 0, 0, e.step, f"duplicate or unknown entry {e.kind}")
        entries[(e.step, e.kind)] = e
    steps = sorted({s for s, _ in entries})
    if steps != list(range(len(steps))):
        return AuditReport(False, len(steps), 0, None, "the steps are not 0, 1, 2, …")
    if (reason := _end_errors(transcript, len(steps))) is not None:
        return AuditReport(False, len(steps), 0, None, reason)
    verified = 0
    rounds: dict[int, RoundEntry] = {}
    try:
        aggregate_vk = (zk.VerificationKey.from_snarkjs(transcript.aggregate_key)
                        if transcript.aggregate_key is not None else None)
    except SplitverifyError as exc:
        return AuditReport(False, len(steps), 0, None,
                           f"the Aggregate verification key is malformed: {exc}")
    aggregate_clients = None
    if transcript.rounds and mode.proves and transcript.aggregate_ceremony is not None:
        from .aggregate_ceremony import check_aggregate_key
        try:
            aggregate_clients = check_aggregate_key(
                transcript.aggregate_key, transcript.aggregate_ceremony,
                transcript.identities.get("server"), transcript.identities.get("client"))
        except KeyRefused as exc:
            return AuditReport(False, len(steps), 0, None, str(exc))
    for r in transcript.rounds:
        if r.after_step in rounds or r.after_step not in steps:
            return AuditReport(False, len(steps), 0, r.after_step,
                               f"round {r.round} is recorded twice or after no step")
        if (reason := _round_errors(transcript, r, entries, aggregate_vk, verifier)):
            return AuditReport(False, len(steps), 0, r.after_step, reason)
        rounds[r.after_step] = r
    for step in steps:
        reason = _chain_errors(entries, step, transcript.session_id,
                               transcript.shared_server_model, transcript.label_table, rounds)
        if reason:
            return AuditReport(False, len(steps), verified, step, reason)
        for kind in KINDS:
            e = entries[(step, kind)]
            if (reason := _entry_errors(transcript, e, str(mode))) is not None:
                return AuditReport(False, len(steps), verified, step, reason)
            if e.proof is None:
                continue
            if kind not in vks:
                return AuditReport(False, len(steps), verified, step,
                                   f"no verification key for {kind}")
            try:
                proof = zk.Proof.from_bytes(bytes.fromhex(e.proof))
                signals = zk.PublicSignals(tuple(Statement(kind, e.public).signals()))
                ok = zk.verify(vks[kind], proof, signals, verifier)
            except (ValueError, SplitverifyError) as exc:
                return AuditReport(False, len(steps), verified, step,
                                   f"the {kind} proof is malformed: {exc}")
            if not ok:
                return AuditReport(False, len(steps), verified, step,
                                   f"the {kind} proof does not verify")
            verified += 1
    established = _established(mode, len(steps), verified, len(entries), keys)
    if transcript.label_table is not None:
        established += (f"; every ServerStep read the session's committed label table "
                        f"({str(transcript.label_table)[:12]}…, labels held by the server)")
    if rounds:
        established += (f"; the client half was averaged with other clients' in {len(rounds)} "
                        "rounds (SplitFed-V1), the client continuing from each average, "
                        + _aggregate_established(mode.proves, aggregate_clients))
    if transcript.shared_server_model:
        established += ("; the server half is shared with other clients' sessions: this "
                        "transcript does not link its ServerSteps to each other (the server's "
                        "chain across sessions does: audit it with --chain)")
    return AuditReport(True, len(steps), verified, established=established)


def _aggregate_established(proves: bool, clients: int | None) -> str:
    if not proves:
        return "committed only"
    if clients is None:
        return ("each Aggregate proof verified under the key the transcript carries, which no "
                "recorded ceremony establishes (consistency only)")
    return ("each Aggregate proof verified under a key established from its signed ceremony: "
            f"the server's contribution and {clients} clients' (this client's among them), so "
            "the server alone cannot forge an average proof (its initial key not re-derived "
            "from the ptau)")


def _established(mode, steps: int, verified: int, statements: int, keys) -> str:
    signed = "each statement signed by its sender's pinned identity"
    if mode.kind == "every":
        return (f"{steps} steps, every statement proven ({verified} proofs) under {keys.describe()}; "
                f"{signed}")
    if mode.kind == "pipelined":
        return (f"{steps} steps, every statement proven ({verified} proofs, each delivered "
                f"after its statement, at most {mode.lag} steps late: proof mode {mode}) under "
                f"{keys.describe()}; {signed}")
    if mode.kind == "audit":
        return (f"{steps} steps, {verified} of {statements} statements proven (each one its "
                f"verifier's draw challenged, P = {mode.probability:g}), the rest committed only; "
                f"{keys.describe()}; {signed}")
    if mode.kind == "commit":
        return (f"{steps} steps, NOTHING PROVEN: {statements} statements committed and chained "
                f"only (proof mode commit); {signed}")
    return f"{steps} steps, nothing committed or proven (proof mode off)"


def dumps(report: AuditReport) -> str:
    return json.dumps(report.__dict__)
