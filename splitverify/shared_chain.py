"""The chain of a shared server half (``serve --shared-model``) and its offline audit.

A server that trains one server half with several clients publishes its chain (``GET
/chain``): the ServerSteps in the order it applied them, each with the session and step that
caused it, the weights' commitments before and after, and the SHA-256 of the ServerStep's
statement. :func:`audit_chain` checks it against the clients' transcripts: every transcript
audits (``splitverify.transcript.audit``) and pins the same server; the chain is one linked
sequence (entry i + 1 starts from the weights entry i ended with); each entry is a ServerStep of
one of the transcripts, with the same commitments and statement; and every ServerStep of the
transcripts is in the chain once. So a dropped, reordered, forked or invented entry fails.
With ``--aggregate`` the chain's ``rounds`` (SplitFed-V1) are checked too (:func:`rounds_errors`):
each published round is the one every client in it checked and went on from (its transcript's
round entry: same statement, same place), its Aggregate proof verifies, and every round a
transcript records is published; the transcripts must carry one ceremony record of the
Aggregate key (``splitverify.aggregate_ceremony``), which each one's audit has established
with its own client's signed contribution in it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from . import zk
from .circuitgen import AGGREGATE, Statement
from .errors import InputError, SplitverifyError, TamperDetected
from .transcript import Transcript, audit


def statement_sha256(public: dict[str, int]) -> str:
    """The SHA-256 of a statement's public values as canonical JSON (sorted names)."""
    return hashlib.sha256(json.dumps(public, sort_keys=True, separators=(",", ":")).encode()
                          ).hexdigest()


def load_chain(path: str | Path) -> dict:
    path = Path(path)
    try:
        chain = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise InputError(f"chain file {path} does not exist") from exc
    except ValueError as exc:
        raise InputError(f"{path} is not JSON: {exc}") from exc
    if not isinstance(chain, dict) or not isinstance(chain.get("entries"), list):
        raise InputError(f"{path} is not a server's chain (GET /chain): it needs 'entries'")
    return chain


def chain_errors(chain: dict) -> str | None:
    """Is the chain one sequence: indices 0, 1, …, entry 0 starting from the initial
    commitment, each next entry from the weights the one before ended with, the head the last
    entry's weights?"""
    entries = chain["entries"]
    head = chain.get("initial_weights_commitment")
    for i, entry in enumerate(entries):
        if entry.get("index") != i:
            return f"entry {i} has index {entry.get('index')}: the chain is not 0, 1, 2, …"
        if entry.get("weights_before") != head:
            return (f"entry {i} (session {entry.get('session')}, step {entry.get('step')}) "
                    "does not start from the weights the entry before it ended with: the "
                    "chain is broken (an entry dropped, reordered or forked)")
        head = entry.get("weights_after")
    if chain.get("head") != head:
        return "the chain's head is not its last entry's weights after"
    return None


@dataclass
class ChainReport:
    valid: bool
    entries: int
    transcripts: int
    reason: str | None = None
    established: str | None = None


def audit_chain(chain: dict, transcripts: list[Transcript], verifier: str = "native",
                ptau_files: list[Path] | tuple[Path, ...] = ()) -> ChainReport:
    """See the module. The first failure is reported."""
    entries = chain["entries"]

    def refused(reason: str) -> ChainReport:
        return ChainReport(False, len(entries), len(transcripts), reason)

    if not transcripts:
        return refused("no transcript given: each chain entry must be a ServerStep of one")
    servers = {t.identities.get("server") for t in transcripts}
    if len(servers) != 1:
        return refused(f"the transcripts pin different servers {sorted(map(str, servers))}: "
                       "one shared server half has one server")
    steps: dict[tuple[str, int], dict[str, int]] = {}
    proven = 0
    for transcript in transcripts:
        report = audit(transcript, verifier, ptau_files)
        if not report.valid:
            return refused(f"the transcript of session {transcript.session_id} does not audit: "
                           f"step {report.bad_step}: {report.reason}")
        if not transcript.shared_server_model:
            return refused(f"the transcript of session {transcript.session_id} is not of a "
                           "shared server half")
        session = str(transcript.session_id)
        if any(key[0] == session for key in steps):
            return refused(f"session {session} is given twice")
        for e in transcript.entries:
            if e.kind == "server_step":
                steps[(session, e.step)] = e.public
                proven += e.proof is not None
    if (reason := chain_errors(chain)) is not None:
        return refused(reason)
    seen = set()
    for entry in entries:
        key = (str(entry.get("session")), entry.get("step"))
        public = steps.get(key)
        if public is None:
            return refused(f"entry {entry['index']} names session {key[0]} step {key[1]}, a "
                           "ServerStep no given transcript holds")
        if key in seen:
            return refused(f"entry {entry['index']}: the ServerStep of session {key[0]} step "
                           f"{key[1]} is in the chain twice")
        seen.add(key)
        if (public["weightsBefore"], public["weightsAfter"]) != (entry["weights_before"],
                                                                 entry["weights_after"]) \
                or statement_sha256(public) != entry.get("statement_sha256"):
            return refused(f"entry {entry['index']} differs from the ServerStep of session "
                           f"{key[0]} step {key[1]} its client received")
    missing = sorted(set(steps) - seen)
    if missing:
        session, step = missing[0]
        return refused(f"the ServerStep of session {session} step {step} (and "
                       f"{len(missing) - 1} more) is missing from the chain")
    rounds = chain.get("rounds", [])
    if (reason := rounds_errors(rounds, transcripts, verifier)) is not None:
        return refused(reason)
    averaged = ""
    if rounds:
        proven_rounds = sum(r.get("proof") is not None for r in rounds)
        averaged = (f"; {len(rounds)} round{'s' if len(rounds) != 1 else ''} of averaged client "
                    "halves, each published round the one its clients checked and went on from "
                    + (f"({proven_rounds} Aggregate proofs verified, {_aggregate_key(transcripts)})"
                       if proven_rounds else "(committed only: no Aggregate proof)"))
    return ChainReport(True, len(entries), len(transcripts), established=(
        f"one chain of {len(entries)} ServerSteps from {len(transcripts)} client sessions, "
        f"linked step to step ({proven} of them proven, each in its transcript's audit), every "
        "ServerStep of the transcripts in it once, all signed by the server "
        f"{next(iter(servers))}{averaged}"))


def _aggregate_key(transcripts: list[Transcript]) -> str:
    """Where the Aggregate key the rounds were proven under comes from (each transcript's
    audit has established it from the ceremony it carries, with its own client's signed
    contribution in it; :func:`rounds_errors` has checked they carry one ceremony)."""
    ceremonies = [t.aggregate_ceremony for t in transcripts]
    if any(c is None for c in ceremonies):
        return ("under the key the transcripts carry, which no recorded ceremony establishes "
                "for every client: consistency only")
    contributors = len(ceremonies[0]["contributions"])
    return (f"under the key established from its signed ceremony: the server's contribution and "
            f"{contributors - 1} clients', every given client's own among them, so no party "
            "alone can forge an average proof (its initial key not re-derived from the ptau)")


def rounds_errors(rounds: list, transcripts: list[Transcript], verifier: str = "native"
                  ) -> str | None:
    """The chain's published rounds against the transcripts (each already audited, so each
    transcript's own rounds are signed, proven and continued from): round i is the i-th, each
    of its sessions has a transcript that records it with the same statement at the same
    place, its proof verifies under the transcripts' one Aggregate key, and every round a
    transcript records is published."""
    by_session = {str(t.session_id): t for t in transcripts}
    recorded = {(str(t.session_id), r.round): r for t in transcripts for r in t.rounds}
    keys = {json.dumps(t.aggregate_key, sort_keys=True) for t in transcripts
            if t.aggregate_key is not None}
    if len(keys) > 1:
        return "the transcripts carry different Aggregate verification keys"
    ceremonies = {json.dumps(t.aggregate_ceremony, sort_keys=True) for t in transcripts
                  if t.aggregate_ceremony is not None}
    if len(ceremonies) > 1:
        return "the transcripts carry different ceremonies of the Aggregate key"
    try:
        vk = zk.VerificationKey.from_snarkjs(json.loads(keys.pop())) if keys else None
    except SplitverifyError as exc:
        return f"the transcripts' Aggregate verification key is malformed: {exc}"
    proves = any(t.proof_mode.proves for t in transcripts)
    seen = set()
    for i, published in enumerate(rounds):
        if not (isinstance(published, dict) and published.get("round") == i
                and isinstance(published.get("sessions"), list)
                and isinstance(published.get("public"), dict)):
            return f"published round {i} is not round {i} with its sessions and statement"
        for slot, session in enumerate(published["sessions"]):
            if str(session) not in by_session:
                return (f"round {i} averaged session {session}, whose transcript is not given "
                        "(give every client's transcript)")
            mine = recorded.get((str(session), i))
            if mine is None or mine.public != published["public"] or mine.slot != slot:
                return (f"published round {i} differs from the one the client of session "
                        f"{session} checked and went on from (or its transcript lacks it)")
            seen.add((str(session), i))
        if not proves:
            continue
        try:
            ok = vk is not None and zk.verify(
                vk, zk.Proof.from_bytes(bytes.fromhex(published.get("proof") or "")),
                zk.PublicSignals(tuple(Statement(AGGREGATE, published["public"]).signals())),
                verifier)
        except (ValueError, SplitverifyError) as exc:
            return f"published round {i}'s Aggregate proof is malformed: {exc}"
        if not ok:
            return f"published round {i}'s Aggregate proof does not verify"
    missing = sorted(set(recorded) - seen)
    if missing:
        session, round_ = missing[0]
        return (f"round {round_} of session {session} (in its transcript) is not published "
                "beside the chain")
    return None


def prefix_sha256(entries: list[dict]) -> str:
    """One digest of a chain's entries (canonical JSON): what a client keeps of the chain it
    saw, to check that a later chain extends it."""
    return hashlib.sha256(json.dumps(entries, sort_keys=True, separators=(",", ":")).encode()
                          ).hexdigest()


def check_served(chain: dict, seen: tuple[int, str] | None, session_id: int, step: int,
                 public: dict[str, int]) -> tuple[int, str]:
    """A client of a shared server half, after its ServerStep ``public`` of ``step`` came
    (checked and verified): the server's published chain must extend the chain this client
    saw before (``seen``: its length and :func:`prefix_sha256`; no fork, no rewritten
    history), hold this ServerStep (same statement) once, and that entry must start from the
    head published before it (the weights the entry before it ended with). Returns what the
    client has seen now; a failure is :class:`TamperDetected` at ``step``."""
    entries = chain.get("entries")
    if not isinstance(entries, list):
        raise TamperDetected(step, "client", "the server's published chain (GET /chain) is "
                             "not a chain: it has no entries")
    if seen is not None:
        length, digest = seen
        if len(entries) < length or prefix_sha256(entries[:length]) != digest:
            raise TamperDetected(step, "client", "the server's published chain does not extend "
                                 f"the {length} entries it published before: its history was "
                                 "rewritten (a fork)")
    mine = [i for i, e in enumerate(entries)
            if e.get("session") == str(session_id) and e.get("step") == step]
    if len(mine) != 1:
        raise TamperDetected(step, "client", f"the server's step {step} of this session is "
                             f"{'not' if not mine else 'more than once'} in its published "
                             "chain: it was served from weights outside the shared model's "
                             "published chain (a forked model)")
    index = mine[0]
    entry = entries[index]
    head = (entries[index - 1].get("weights_after") if index > 0
            else chain.get("initial_weights_commitment"))
    if entry.get("index") != index or entry.get("weights_before") != head:
        raise TamperDetected(step, "client", f"the server's step {step} of this session is "
                             f"entry {index} of its published chain, which does not start from "
                             "the head published before it (a forked model)")
    if (entry.get("weights_before"), entry.get("weights_after"),
            entry.get("statement_sha256")) != (public["weightsBefore"], public["weightsAfter"],
                                               statement_sha256(public)):
        raise TamperDetected(step, "client", f"the server's step {step} of this session "
                             f"differs from entry {index} of its published chain: the chain "
                             "shows other weights than the ones this client was served from "
                             "(a forked model)")
    return len(entries), prefix_sha256(entries)
