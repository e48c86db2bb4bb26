"""A session as the dashboard shows it: public values only, read without changing anything
(no idle clock restarted, no lock taken: a step in flight is not waited for; every collection
is copied in one go before it is read).

Public means what the protocol already publishes or any observer could time: the statements'
values (commitments, the loss, session and step), whether each proof verified, the challenges
drawn, timings, the outcome (where tampering was detected, by whom, why), the key ceremony's
contribution hashes and the ptau's hash, the parties' addresses, ledger entries. What is built
here is a whitelist of those: never the session's token (or its digest), a tensor (activations,
labels, gradients, weights), a salt, a proof's inputs or a file path of the server's."""

from __future__ import annotations

import time

from splitverify.circuitgen import KINDS
from splitverify.circuitgen.generator import describe
from splitverify.protocol import policy
from splitverify.transcript import SENDER

from ..session import Session
from .events import EventLog, LedgerEntry, SentStatement


def short(value: int) -> str:
    """A commitment (a field element) as the first hex digits of its 64."""
    return f"{value:064x}"[:12] + "…"


def mean_loss(session: Session, loss: int) -> float:
    """The proven loss (a fixed-point sum of squares) as the mean squared error per logit."""
    spec = session.party.spec
    return round(loss / spec.quant.scale / (spec.batch * spec.classes), 6)


def status_of(session: Session) -> str:
    if session.stopped is not None:
        return "stopped"
    return "running" if session.keys_ready else "key ceremony"


def summary(session: Session) -> dict:
    """One row of the sessions list."""
    party = session.party
    stopped, losses = session.stopped, list(party.losses)
    return {
        "id": session.id, "id_hex": f"{session.id:x}", "proof_mode": str(party.mode),
        "model": describe(party.spec), "status": status_of(session),
        "steps": party.next_step, "proofs_verified": party.verifier.verified,
        "challenges_drawn": party.verifier.challenged,
        "last_loss": mean_loss(session, losses[-1]) if losses else None,
        "detection": None if stopped is None else {
            "step": stopped.detected_step, "party": stopped.detected_by,
            "reason": stopped.reason},
        "idle_s": round(time.time() - session.last_request, 1),
    }


def _received(entry, verify_s: float | None, drawn: bool | None) -> dict:
    """A statement the server received and checked (a transcript entry)."""
    return {"kind": entry.kind, "from": SENDER[entry.kind], "checked_by": "server",
            "proof": "verified" if entry.proof is not None else "committed only",
            "challenged": drawn, "verify_s": verify_s,
            "values": {name: short(v) for name, v in entry.public.items()
                       if name not in ("session", "step")}}


def _sent(statement: SentStatement | None, proofs_on_challenge: bool) -> dict:
    """A statement the server sent (its own ServerStep), as the event log has it."""
    if statement is None:
        return {"kind": "server_step", "from": "server", "checked_by": "client",
                "proof": "not logged (sent before this server process started)",
                "challenged": None, "verify_s": None, "values": {}}
    proof = ("sent with the statement" if statement.with_proof
             else "proved if the client challenges it" if proofs_on_challenge
             else "committed only")
    return {"kind": statement.kind, "from": "server", "checked_by": "client", "proof": proof,
            "challenged": None, "verify_s": None,
            "values": {name: (v if name == "loss" else short(v))
                       for name, v in statement.public.items() if name not in ("session", "step")}}


def timeline(session: Session, sent: list[SentStatement]) -> list[dict]:
    """Per step: its statements in protocol order, loss, batch accuracy, seconds, and the
    detection that stopped the session there."""
    party = session.party
    entries = list(party.transcript.entries) if party.transcript is not None else []
    decisions = dict(party.verifier.decisions)
    losses, correct = list(party.losses), list(party.correct)
    verify_s = {kind: list(times) for kind, times in party.verifier.verify_seconds.items()}
    received: dict[tuple[int, str], dict] = {}
    proofs_seen: dict[str, int] = {}
    for entry in sorted(entries, key=lambda e: e.step):
        seconds = None
        if entry.proof is not None:    # the i-th verified proof of a kind took its i-th time
            i = proofs_seen[entry.kind] = proofs_seen.get(entry.kind, -1) + 1
            times = verify_s.get(entry.kind, [])
            seconds = round(times[i], 4) if i < len(times) else None
        drawn = (decisions.get((entry.kind, entry.step))
                 if policy.draws_challenges(party.mode) else None)
        received[(entry.step, entry.kind)] = _received(entry, seconds, drawn)
    server_sent = {s.step: s for s in sent if s.kind == "server_step"}
    stopped = session.stopped
    last = max([len(losses) - 1, *(step for step, _ in received),
                stopped.detected_step if stopped is not None else -1])
    steps = []
    for step in range(last + 1):
        statements = []
        for kind in KINDS:
            if kind == "server_step":
                if step < len(losses) and party.mode.commits:
                    statements.append(_sent(server_sent.get(step),
                                            policy.draws_challenges(party.mode)))
            elif (step, kind) in received:
                statements.append(received[(step, kind)])
        at = server_sent[step].at if step in server_sent else None
        before = server_sent.get(step - 1)
        steps.append({
            "step": step, "statements": statements,
            "loss": mean_loss(session, losses[step]) if step < len(losses) else None,
            "batch_accuracy": (round(correct[step] / party.spec.batch, 4)
                               if step < len(correct) else None),
            "seconds": round(at - before.at, 3) if at is not None and before else None,
            "detection": ({"step": step, "party": stopped.detected_by, "reason": stopped.reason}
                          if stopped is not None and stopped.detected_step == step else None)})
    return steps


def proof_counts(session: Session, sent: list[SentStatement]) -> list[dict]:
    """Per party and kind: statements, proofs verified, challenges drawn, mean seconds."""
    party = session.party
    entries = list(party.transcript.entries) if party.transcript is not None else []
    drawn = [kind for (kind, _), hit in dict(party.verifier.decisions).items() if hit]
    verify_s = dict(party.verifier.verify_seconds)
    rows = []
    for kind in KINDS:
        if kind == "server_step":
            proved = list(party.prover.prove_seconds.get(kind, []))
            rows.append({"kind": kind, "prover": "server", "verifier": "client",
                         "statements": sum(s.kind == kind for s in sent),
                         "proofs": len(proved), "verified": None, "challenged": None,
                         "prove_s": _mean(proved), "verify_s": None})
            continue
        mine = [e for e in entries if e.kind == kind]
        rows.append({"kind": kind, "prover": "client", "verifier": "server",
                     "statements": len(mine), "proofs": sum(e.proof is not None for e in mine),
                     "verified": sum(e.proof is not None for e in mine),
                     "challenged": (drawn.count(kind) if policy.draws_challenges(party.mode)
                                    else None),
                     "prove_s": None, "verify_s": _mean(list(verify_s.get(kind, [])))})
    return rows


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def _ptau(record: dict | None) -> dict | None:
    return None if record is None else {name: record.get(name)
                                        for name in ("origin", "power", "sha256", "name")}


def ceremony(session: Session) -> dict:
    """The ptau the keys come from (the session's, or each key's: the development setup makes
    one per circuit) and each key's contributions (names and hashes) and signatures."""
    transcript = session.party.transcript
    ptau = (transcript.ptau if transcript is not None and transcript.ptau
            else session.ptau.record)
    origins = dict(transcript.key_origin) if transcript is not None else {}
    return {
        "ptau": _ptau(ptau),
        "keys": {kind: {"ptau": _ptau(origins.get(kind, {}).get("ptau")),
                        "server_contribution": record.server_hash,
                        "final_blake2b": record.blake2b,
                        "reused_from": record.reused_from,
                        "signed_by": [who for who, signature in
                                      (("server", record.server_signature),
                                       ("client", record.client_signature)) if signature],
                        "contributions": [{"index": c.get("index"), "name": c.get("name"),
                                           "kind": c.get("kind"), "hash": c.get("hash")}
                                          for c in record.transcript or []]}
                 for kind, record in dict(session.keys).items()},
    }


def session_view(session: Session, events: EventLog, server_identity: str) -> dict:
    """Everything the session's page shows."""
    party = session.party
    sent = events.sent(session.id)
    steps = timeline(session, sent)
    prove_s = list(party.prover.prove_seconds.get("server_step", []))
    return {
        **summary(session),
        "identities": {"client": party.peer, "server": server_identity},
        "proofs": proof_counts(session, sent),
        "timeline": steps,
        "curves": {
            "step": [s["step"] for s in steps if s["loss"] is not None],
            "loss": [s["loss"] for s in steps if s["loss"] is not None],
            "batch_accuracy": [s["batch_accuracy"] for s in steps if s["loss"] is not None],
            "server_prove_s": [round(t, 4) for t in prove_s],
            "verify_s": {kind: [round(t, 4) for t in times] for kind, times
                         in dict(party.verifier.verify_seconds).items()},
        },
        "ceremony": ceremony(session),
        "ledger": [ledger_row(e) for e in events.ledger(session.id)],
    }


def ledger_row(entry: LedgerEntry) -> dict:
    return {"kind": entry.kind, "step": entry.step, "verified_on_chain": entry.verified_on_chain,
            "gas": entry.gas, "seconds": entry.seconds, "refused": entry.refused}
