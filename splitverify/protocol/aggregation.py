"""SplitFed-V1's rounds (issue 20 item 2, ``--aggregate every:R``): after every R steps of each
of K clients, the aggregator (the server) averages the K client halves and proves it with the
Aggregate circuit (:func:`splitverify.circuitgen.generator.generate_aggregate`); each client
checks the proof against the commitments it knows and continues from the average.

* **The clients' halves** go to the aggregator with their weights salts (:class:`ClientHalf`):
  as in SplitFed-V1, the fed server sees the client halves. It takes a half only if its
  commitment is the client's last proven weightsAfter (the chain the client's session holds).
* **The round record** (:class:`RoundRecord`) is what the aggregator publishes: the Aggregate
  statement (each client's weights commitment, the average's commitment under each client's
  salt, the sessions, the round) and its proof — commitments only.
* **Each client** (:func:`adopt_average`) requires the statement it is sent to be the
  published one, with its own current weights commitment, its session and the round, and the
  average's commitment under its own salt recomputed from the average it received; it verifies
  the proof against exactly that, then continues from the average. Its next ClientForward's
  weightsCommitment is that commitment, which its server now expects (``client_chain``).

A wrong average cannot be proven (the circuit fixes floor(Σ / K) entry by entry): a server that
sends one (``server:wrong-average``) is caught by the client it sends it to.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .. import model
from ..circuitgen import AGGREGATE, SplitCircuits, Statement, statements as st
from ..errors import InputError, SplitverifyError, TamperDetected
from ..identity import round_payload, signed_by
from ..model import Params
from ..transcript import RoundEntry
from ..zk import Proof
from . import policy
from .local import SessionResult, local_step, start_local_session
from .parties import ClientParty, ServerParty, _mismatch, _require
from .wire import ProofMode, StopRecord


def parse_every(text: str) -> int:
    """``--aggregate every:R``: R, the steps of each client between two averages (≥ 1)."""
    head, _, count = text.partition(":")
    if head != "every" or not (count.isascii() and count.isdigit()) or int(count) < 1:
        raise InputError(f"--aggregate {text!r}: use every:R, R ≥ 1 a whole number of steps "
                         "(each client's steps between two averages of the client halves)")
    return int(count)


def require_rounds(every: int, clients: int, mode: ProofMode) -> None:
    """Rounds of averaged halves need K ≥ 2 clients and a proof mode whose statements travel
    with their messages (every, audit:P, commit)."""
    if every < 1:
        raise InputError(f"--aggregate every:{every}: a round is at least one step")
    if clients < 2:
        raise InputError(f"--aggregate averages the client halves of several clients: it needs "
                         f"--clients K ≥ 2 (got --clients {clients})")
    if not mode.commits or policy.proves_later(mode):
        raise InputError(f"--aggregate needs a proof mode whose statements travel with their "
                         f"messages (every, audit:P or commit), not --proof-mode {mode}: "
                         "without commitments there is nothing to average against, and a "
                         "pipelined:W rollback cannot undo an average other clients continued "
                         "from")


@dataclass(frozen=True)
class ClientHalf:
    """What a client hands the aggregator at a round's end."""
    session_id: int
    params: Params
    weights_salt: int

    @classmethod
    def of(cls, client: ClientParty) -> "ClientHalf":
        if client.pending is not None:
            raise InputError("a client hands its half over between steps, not with a forward "
                             "step waiting for its gradient")
        return cls(client.session_id, client.params, client.weights_salt)


@dataclass(frozen=True)
class RoundRecord:
    """What the aggregator publishes of a round: the Aggregate statement and its proof."""
    round: int
    public: dict[str, int]
    proof: str | None


@dataclass(frozen=True)
class AverageMessage:
    """Aggregator → one client: the average, and the Aggregate statement and proof."""
    session_id: int
    round: int
    average: Params
    public: dict[str, int] | None
    proof: str | None
    signature: str | None = None     # the server's, of (session, step, round, slot, public, proof)


def aggregate_round(circuits: SplitCircuits, servers: list[ServerParty],
                    halves: list[ClientHalf], round_: int, step: int
                    ) -> tuple[RoundRecord, list[AverageMessage]]:
    """The aggregator's side of round ``round_`` (ending with step ``step``): ``servers[j]``
    is the session of the client whose half is ``halves[j]``. Checks each half against its
    session's chain, averages, proves (when the sessions prove), sends each client its
    average; each session then expects its client's next weights to be the average's."""
    k = circuits.aggregate_clients
    if not len(servers) == len(halves) == k:
        raise InputError(f"the aggregate circuit averages {k} halves; got {len(halves)} halves "
                         f"for {len(servers)} sessions")
    mode = servers[0].mode
    if policy.proves_later(mode):
        raise InputError(f"rounds of averaged halves need proofs with their statements, not "
                         f"{mode} (a rollback cannot undo an average other clients continued "
                         "from)")
    spec = servers[0].spec
    for j, (server, half) in enumerate(zip(servers, halves)):
        _require(half.session_id == server.session_id, step, "server",
                 f"client {j}'s half names session {half.session_id}, not its session "
                 f"{server.session_id}")
        if mode.commits:
            _require(st.weights_commitment(spec, half.params, half.weights_salt)
                     == server.client_chain, step, "server",
                     f"client {j}'s half is not the weights of its last proven step "
                     "(its commitment differs from the session's chain)")
    params, salts = [h.params for h in halves], [h.weights_salt for h in halves]
    sessions = [h.session_id for h in halves]
    average = model.average_params(spec, spec.client, params)
    statement, proof = None, None
    if mode.commits:
        statement = st.aggregate_honest_statement(spec, params, salts, sessions, round_)
    if mode.proves:
        made, proven = circuits.prove(AGGREGATE, st.aggregate_inputs(spec, params, salts,
                                                                     sessions, round_, average))
        if proven != statement:
            raise InputError("the Aggregate proof's statement differs from the one computed "
                             "for it")
        proof = made.to_bytes().hex()
    record = RoundRecord(round_, dict(statement.values) if statement else {}, proof)
    messages = []
    for j, (server, salt) in enumerate(zip(servers, salts)):
        sent, sent_statement = server.outgoing_average(average, statement, j, salt)
        if sent_statement is not None:
            server.client_chain = sent_statement.values[f"averageWeights{j}"]
        public = dict(sent_statement.values) if sent_statement else None
        sent_proof = server.outgoing_proof(proof)
        signature = (None if public is None else server.identity.sign(
            round_payload(server.session_id, step, round_, j, public, sent_proof)))
        messages.append(AverageMessage(server.session_id, round_, sent, public, sent_proof,
                                       signature))
    return record, messages


def adopt_average(client: ClientParty, msg: AverageMessage, record: RoundRecord,
                  circuits: SplitCircuits, slot: int, step: int) -> None:
    """A client's side of a round: check the average it was sent against the published
    ``record`` (it is the ``slot``-th client of the round, which ended with step ``step``) and
    continue from it. Any failed check is tampering at ``step`` (``TamperDetected``)."""
    spec = client.spec
    _require(msg.session_id == client.session_id and msg.round == record.round, step, "client",
             f"the average is for session {msg.session_id}, round {msg.round}; expected "
             f"session {client.session_id}, round {record.round}")
    shapes = [[tuple(shape) for _, shape in layer.parameter_shapes()] for layer in spec.client]
    _require([[tuple(t.shape) for t in tensors] for tensors in msg.average] == shapes, step,
             "client", "the average does not have the client half's parameter shapes")
    if client.mode.commits:
        expected = Statement(AGGREGATE, {
            **record.public,
            f"clientWeights{slot}": client.weights_commitment(),
            f"averageWeights{slot}": st.weights_commitment(spec, msg.average,
                                                           client.weights_salt),
            f"session{slot}": client.session_id, "round": record.round})
        _require(msg.public == expected.values, step, "client",
                 _mismatch(f"round {record.round}: the aggregator's", msg.public or {},
                           expected))
        if client.peer is None:
            raise InputError("the server's identity is not pinned in this session: pin it "
                             "(its address) when the session is created")
        _require(signed_by(client.peer, round_payload(client.session_id, step, record.round,
                                                      slot, msg.public, msg.proof),
                           msg.signature), step, "client",
                 f"round {record.round}: the Aggregate statement is not signed by the "
                 f"server's pinned identity {client.peer}")
    if client.mode.proves:
        _require(msg.proof is not None, step, "client",
                 f"round {record.round}: the Aggregate proof is missing")
        try:
            proof = Proof.from_bytes(bytes.fromhex(msg.proof))
        except (ValueError, SplitverifyError) as exc:
            raise TamperDetected(step, "client", f"round {record.round}: the Aggregate proof "
                                 f"is malformed: {exc}") from exc
        _require(circuits.verify(AGGREGATE, proof, expected), step, "client",
                 f"round {record.round}: the Aggregate proof does not verify against the "
                 "average received and the commitments this client knows (a wrong average?)")
    client.params = msg.average
    transcript = client.transcript
    if transcript is not None and client.mode.commits:
        if client.mode.proves and transcript.aggregate_key is None:
            transcript.aggregate_key = circuits.verification_key(AGGREGATE).to_snarkjs()
        transcript.rounds.append(RoundEntry(after_step=step, round=record.round, slot=slot,
                                            public=dict(msg.public), proof=msg.proof,
                                            signature=msg.signature))


@dataclass
class RoundsResult:
    """K clients' sessions run side by side in one process with their halves averaged every
    ``every`` steps (:func:`run_local_rounds`)."""
    steps: int                                  # steps every client completed
    sessions: list[SessionResult]
    rounds: list[RoundRecord]
    detected: TamperDetected | None = None
    detected_client: int | None = None          # which client's session caught it


def run_local_rounds(clients: list[ClientParty], servers: list[ServerParty], batches: list,
                     every: int, circuits: SplitCircuits,
                     contribution_signatures: list[dict[str, dict[str, str]]] | None = None
                     ) -> RoundsResult:
    """SplitFed-V1 in one process: client j trains with ``servers[j]`` on ``batches[j]``, the
    clients take each step in turn, and after every ``every`` steps the halves are averaged
    (:func:`aggregate_round`, proven with ``circuits``' Aggregate of K = len(clients)) and
    every client adopts the average (:func:`adopt_average`). Stops at the first
    ``TamperDetected``, naming the client whose session caught it. ``contribution_signatures``:
    each session's key ceremony signatures (``keyexchange.local_ceremony``), for its
    transcript."""
    if every < 1:
        raise InputError(f"a round is at least one step, not {every}")
    if not len(clients) == len(servers) == len(batches):
        raise InputError("one server session and one list of batches per client")
    start = time.perf_counter()
    signatures = contribution_signatures or [None] * len(clients)
    transcripts = [start_local_session(c, s, sig)
                   for c, s, sig in zip(clients, servers, signatures)]
    steps = min(len(b) for b in batches)
    done, rounds, detected, who = 0, [], None, None
    try:
        for step in range(steps):
            for j, (client, server) in enumerate(zip(clients, servers)):
                who = j
                x, labels = batches[j][step]
                local_step(client, server, step, x, labels)
            done = step + 1
            if done % every == 0:
                who = None                  # the aggregator's own checks name no client
                record, messages = aggregate_round(circuits, servers,
                                                   [ClientHalf.of(c) for c in clients],
                                                   len(rounds), step)
                for j, (client, msg) in enumerate(zip(clients, messages)):
                    who = j
                    adopt_average(client, msg, record, circuits, j, step)
                rounds.append(record)
    except TamperDetected as exc:
        detected = exc
        for transcript in transcripts:
            transcript.detected = StopRecord.of(exc)
    seconds = time.perf_counter() - start
    sessions = []
    for client, server, transcript in zip(clients, servers, transcripts):
        client.end_session(done)
        sessions.append(SessionResult(done, server.losses, detected, client, server, seconds,
                                      transcript))
    return RoundsResult(done, sessions, rounds, detected, who if detected else None)
