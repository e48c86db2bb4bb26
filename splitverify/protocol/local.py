"""Both parties in one process (tests, benchmarks, ``compare``): the same messages and checks as
over HTTP without the transport; the session's transcript as a party starts it; the summary of
a session (``summary.json``), built in one place for local and HTTP runs."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, TypeVar

from ..circuitgen import KINDS
from ..circuitgen.generator import describe
from ..errors import TamperDetected
from ..label_table import LabelTable
from ..model import SplitSpec
from ..transcript import SENDER, Transcript
from . import policy
from .parties import ClientParty, ServerParty, _Party
from ..pool import warm_in_process
from .pipeline import first_unverified
from .wire import ProofMode, SessionStatus, StopRecord, _Message

_M = TypeVar("_M", bound=_Message)


@dataclass(frozen=True)
class PartyFigures:
    """One party's checking and proving figures, as the summary reports them."""
    verified: int
    challenged: int
    prove_seconds: dict[str, list[float]]
    verify_seconds: dict[str, list[float]]

    @classmethod
    def of_party(cls, party: _Party) -> "PartyFigures":
        return cls(party.verifier.verified, party.verifier.challenged,
                   party.prover.prove_seconds, party.verifier.verify_seconds)

    @classmethod
    def of_status(cls, status: SessionStatus) -> "PartyFigures":
        """The server's, from its status answer (``GET /sessions/{id}``)."""
        return cls(status.proofs_verified, status.challenged, status.prove_s, status.verify_s)


def _means(d: dict[str, list[float]]) -> dict[str, float]:
    return {k: round(sum(v) / len(v), 4) for k, v in d.items() if v}


def loss_per_logit(loss: int, spec: SplitSpec) -> float:
    """A step's proven loss (fixed point, summed over the batch) as the mean squared error per
    logit."""
    return round(loss / spec.quant.scale / (spec.batch * spec.classes), 6)


def session_summary(steps: int, mode: ProofMode, detected: TamperDetected | None,
                    losses: list[int], spec: SplitSpec, client: PartyFigures,
                    server: PartyFigures) -> dict:
    """What a session did (REFERENCE.md's summary.json, the fields every run has): steps,
    verdict, where tampering was detected, the last loss, proofs verified and challenged, mean
    prove and verify seconds per circuit."""
    det = detected
    rollback = {}
    if det is not None and det.rolled_back_to is not None:
        # pipelined:W: both parties went back to the end of the last step whose proofs all
        # verified; the step under way when the tampering surfaced shows how late it was
        rollback = {"detected_during_step": steps, "rolled_back_to_step": det.rolled_back_to,
                    "rolled_back_steps": steps - (det.rolled_back_to + 1)}
    return {
        "steps": steps, "proof_mode": str(mode),
        "verified": det is None and mode.proves,
        "detected": det is not None, "detected_step": det.step if det else None,
        "detected_by": det.detected_by if det else None, "reason": det.reason if det else None,
        # mean squared error per logit of the last step (the loss the server proved)
        "final_loss": loss_per_logit(losses[-1], spec) if losses else None,
        "proofs_verified": {"client": client.verified, "server": server.verified},
        "challenged": {"client": client.challenged, "server": server.challenged},
        "prove_s": {**_means(client.prove_seconds), **_means(server.prove_seconds)},
        "verify_s": {**_means(client.verify_seconds), **_means(server.verify_seconds)},
        **rollback,
    }


@dataclass
class SessionResult:
    steps: int                                   # steps completed
    losses: list[int]
    detected: TamperDetected | None
    client: ClientParty
    server: ServerParty | None                   # None: the server ran elsewhere (HTTP)
    seconds: float
    transcript: Transcript
    step_seconds: list[float] = field(default_factory=list)   # wall time of each step begun
    # of ``seconds``: the session's set-up before its first step (the transcript pins each
    # key's origin: reads and hashes the keys once), paid once per session, not per step
    setup_seconds: float = 0.0

    @property
    def seconds_after_setup(self) -> float:
        return self.seconds - self.setup_seconds

    def summary(self) -> dict:
        return {**session_summary(self.steps, self.client.mode, self.detected, self.losses,
                                  self.client.spec, PartyFigures.of_party(self.client),
                                  PartyFigures.of_party(self.server)),
                "seconds": round(self.seconds, 3)}


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
    transcript = start_local_session(client, server, contribution_signatures)
    setup_seconds = time.perf_counter() - start
    lag = policy.lag_bound(client.mode)
    step_start = start
    try:
        for step, (x, labels) in enumerate(batches):
            step_start = time.perf_counter()
            step_seconds.append(0.0)
            if lag is not None:
                exchange_proofs(client, server, step - lag)
            local_step(client, server, step, x, labels, on_message)
            step_seconds[-1] = time.perf_counter() - step_start
            done = step + 1
        if lag is not None:              # the session ends with every proof verified
            exchange_proofs(client, server, done - 1)
            server.require_proofs_through(done - 1)
    except TamperDetected as exc:
        if step_seconds:
            step_seconds[-1] = time.perf_counter() - step_start
        if lag is not None:
            roll_back_both(client, server, exc)
        transcript.detected = StopRecord.of(exc)
        detected = exc
    client.end_session(done)
    return SessionResult(done, server.losses, detected, client, server,
                         time.perf_counter() - start, transcript, step_seconds, setup_seconds)


def start_local_session(client: ClientParty, server: ServerParty,
                        contribution_signatures: dict[str, dict[str, str]] | None = None
                        ) -> Transcript:
    """Pin each party's identity in the other (in one process each knows it from the start)
    and start the session's transcript, which both parties record into; the server's keys
    load meanwhile (the client's load as its transcript starts)."""
    client.peer, server.peer = server.identity.address, client.identity.address
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sv-session-setup") as pool:
        server_warming = pool.submit(warm_in_process, server.prover.pool, own_kinds(server))
        transcript = new_transcript(client, contribution_signatures)
        server_warming.result()
    client.transcript = server.transcript = transcript
    return transcript


def local_step(client: ClientParty, server: ServerParty, step: int, x, labels,
               on_message: Callable[[_Message], None] = lambda _msg: None) -> None:
    """One step's three messages handed from party to party (``on_message`` sees each)."""
    def handed(msg: _M) -> _M:
        on_message(msg)
        return msg
    forward = handed(client.forward(step, x, labels))
    gradient = handed(server.receive_forward(forward, client.signed_proof))
    backward = handed(client.receive_gradient(gradient, server.signed_proof))
    server.receive_backward(backward, client.signed_proof)


def exchange_proofs(client: ClientParty, server: ServerParty, through_step: int) -> None:
    """``pipelined:W`` in one process: each party's proofs made so far (those of steps up to
    ``through_step`` waited for) go to the other, which verifies them; the client then requires
    every server proof up to ``through_step`` (the server does when the next forward message
    comes). Over HTTP the same exchange is ``POST /sessions/{id}/proofs``."""
    client.acknowledged(server.receive_late_proofs(client.late_proofs(through_step)))
    server.acknowledged(client.receive_late_proofs(server.late_proofs(through_step)))
    client.require_proofs_through(through_step)


def rollback_step(failed_step: int, *parties: _Party) -> int:
    """``pipelined:W``: the end of the last step whose proofs all verified, as ``parties``
    know it (before ``failed_step``, whose check failed; -1: the initial weights)."""
    known = [party.first_unverified_step() for party in parties]
    return first_unverified({failed_step}, *({s} for s in known if s is not None)) - 1


def roll_back_both(client: ClientParty, server: ServerParty, exc: TamperDetected) -> int:
    """Tampering in ``pipelined:W`` in one process: both parties go back to the end of the last
    step whose proofs all verified (recorded in ``exc.rolled_back_to``, which is returned)."""
    exc.rolled_back_to = rollback_step(exc.step, client, server)
    client.roll_back_to(exc.rolled_back_to)
    server.roll_back_to(exc.rolled_back_to)
    return exc.rolled_back_to


def own_kinds(party: ClientParty | ServerParty) -> tuple[str, ...]:
    """The circuits ``party`` proves in its session (none where its mode proves nothing)."""
    return tuple(kind for kind in KINDS if party.mode.proves and SENDER[kind] == party.role)


def new_transcript(party: ClientParty | ServerParty,
                   contribution_signatures: dict[str, dict[str, str]] | None = None,
                   reused_from: dict[str, int] | None = None) -> Transcript:
    """The session's transcript as ``party`` starts it: the keys with their ceremony records
    (each contribution's points and its contributor's signature, from
    ``contribution_signatures``: circuit → contributor name → signature) and where their
    ptau came from, and both parties' pinned identities. ``reused_from``: circuit → the
    earlier session of the same two identities whose finished key this session reuses (its
    contributions were signed for that session: ``key_origin[kind].reused_from_session``)."""
    from ..keyorigin import ceremony_record, key_origin

    circuits = party.prover.circuits
    kinds = KINDS if party.mode.proves else ()
    signatures = contribution_signatures or {}
    mine, theirs = party.identity.address, party.peer

    def records(kind: str) -> tuple:
        return (circuits.verification_key(kind).to_snarkjs(),
                ceremony_record(circuits.key(kind), signatures.get(kind, {})),
                key_origin(circuits, kind))

    # The session's one-off work, side by side (each verification key is a snarkjs process,
    # each origin hashes a ptau): every key's records, and the party's own proving keys
    # loaded where its proofs will be made, so that the first step's proofs do not pay it.
    with ThreadPoolExecutor(max_workers=len(kinds) + 1,
                            thread_name_prefix="sv-session-setup") as pool:
        warming = pool.submit(warm_in_process, party.prover.pool, own_kinds(party))
        vks, ceremony, origins = ({}, {}, {})
        for kind, (vk, record, origin) in zip(kinds, pool.map(records, kinds)):
            vks[kind], ceremony[kind], origins[kind] = vk, record, origin
        warming.result()
    for kind, origin_session in (reused_from or {}).items():
        origins[kind]["reused_from_session"] = origin_session
    ptaus = [o["ptau"] for o in origins.values()]
    return Transcript(
        session_id=party.session_id, spec=describe(party.spec), proof_mode=party.mode,
        verification_keys=vks, ceremony=ceremony, key_origin=origins,
        # one ptau for every circuit (a published or two-party one); the development setup
        # makes one per circuit, recorded in key_origin only
        ptau=ptaus[0] if ptaus and all(p == ptaus[0] for p in ptaus) else None,
        identities={"client": mine if party.role == "client" else theirs,
                    "server": mine if party.role == "server" else theirs},
        shared_server_model=party.shared_server_model,
        label_table=label_table_commitment(party))


def label_table_commitment(party: ClientParty | ServerParty) -> int | None:
    """--labels server: the label table's commitment as ``party`` holds it (the server its
    table's, the client the one bound at the session's creation)."""
    table = party.label_table
    if table is None:
        return None
    return table.commitment if isinstance(table, LabelTable) else table[0]
