"""Session transcripts and their offline audit.

A transcript holds what a third party needs to re-verify a session without either party: the
model spec, the proof mode, the verification key of each circuit, and per step the public
statement and proof (if one was made) of every message. ``audit`` re-verifies every proof and
the whole chain of commitments: each message's commitment is the one the next proof consumed,
and every party's weights after step t are its weights before step t + 1.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from . import zk
from .circuits import PUBLIC_SIGNALS, Statement
from .errors import InputError, SplitverifyError

ORDER = ("client_forward", "server_step", "client_backward")


class TranscriptEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    step: int
    kind: str
    public: dict[str, int]
    proof: str | None = None      # 256-byte proof, hex; None when the step was not challenged


class Transcript(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = 1
    session_id: int
    spec: str
    proof_mode: str
    verification_keys: dict[str, dict[str, Any]]
    # per circuit, the phase-2 contributions of its key: index, name, kind and snarkjs hash
    ceremony: dict[str, list[dict[str, Any]]] = {}
    # the powers of tau the keys come from: {"sha256", "power", "origin": "development" |
    # "published" | "two-party", "name"} (None without proofs)
    ptau: dict[str, Any] | None = None
    entries: list[TranscriptEntry] = []
    detected: dict[str, Any] | None = None

    def record(self, kind: str, step: int, public: dict[str, int] | None,
               proof: str | None) -> None:
        if public is not None:
            self.entries.append(TranscriptEntry(step=step, kind=kind, public=public, proof=proof))

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


def _chain_errors(entries: dict[tuple[int, str], TranscriptEntry], step: int,
                  session_id: int) -> str | None:
    """The commitments that must agree within step ``step`` and with step − 1."""
    get = entries.get
    cf, ss, cb = (get((step, k)) for k in ORDER)
    for kind, e in zip(ORDER, (cf, ss, cb)):
        if e is None:
            return f"the {kind} statement is missing"
        if set(e.public) != set(PUBLIC_SIGNALS[kind]):
            return f"the {kind} statement has the wrong public inputs"
        if e.public["session"] != session_id or e.public["step"] != step:
            return f"the {kind} statement is for another session or step"
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
    if prev_cb is not None:
        pairs.append((cf.public["weightsCommitment"], prev_cb.public["weightsAfter"],
                      "the client's weights are not its previous step's updated weights"))
    if prev_ss is not None:
        pairs.append((ss.public["weightsBefore"], prev_ss.public["weightsAfter"],
                      "the server's weights are not its previous step's updated weights"))
    for got, want, reason in pairs:
        if got != want:
            return reason
    return None


def audit(transcript: Transcript, verifier: str = "native") -> AuditReport:
    """Re-verify every proof and the chain of commitments; the first failure is reported."""
    try:
        vks = {kind: zk.VerificationKey.from_snarkjs(vk)
               for kind, vk in transcript.verification_keys.items()}
    except SplitverifyError as exc:
        return AuditReport(False, 0, 0, None, f"a verification key is malformed: {exc}")
    entries: dict[tuple[int, str], TranscriptEntry] = {}
    for e in transcript.entries:
        if (e.step, e.kind) in entries or e.kind not in ORDER:
            return AuditReport(False, 0, 0, e.step, f"duplicate or unknown entry {e.kind}")
        entries[(e.step, e.kind)] = e
    steps = sorted({s for s, _ in entries})
    if steps != list(range(len(steps))):
        return AuditReport(False, len(steps), 0, None, "the steps are not 0, 1, 2, …")
    verified = 0
    for step in steps:
        reason = _chain_errors(entries, step, transcript.session_id)
        if reason:
            return AuditReport(False, len(steps), verified, step, reason)
        for kind in ORDER:
            e = entries[(step, kind)]
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
    return AuditReport(True, len(steps), verified)


def dumps(report: AuditReport) -> str:
    return json.dumps(report.__dict__)
