"""SplitFed-V1's rounds over HTTP (``create_app(shared_model=True, aggregate=RoundPlan(R, K))``,
``demo --clients K --aggregate every:R``): after every R steps of its session each client hands
its half and weights salt over (``POST /sessions/{id}/rounds/half``); when K halves of a round
are in, the server averages them, proves the average with the Aggregate circuit, signs what it
sends each client (``protocol.aggregation.aggregate_round``) and publishes the round record
beside its chain (``GET /chain``: ``rounds``); each client takes its average
(``GET /sessions/{id}/rounds/{r}``), checks it and goes on from it.

* A half is taken only from a session at the end of the round (its step (r + 1)·R − 1 done,
  nothing pending) whose commitment is the session's last proven weightsAfter: a half that is
  not is tampering by that client (the session stops, 409). A half re-sent with the same
  content gets the same answer; another one for the same round is refused (422).
* A session's forward message that begins the next round is refused (425) until its round is
  averaged: a client cannot go on from its own half.
* Persistence: each half is committed to the store (``round_halves``) before its answer; the
  averaged round, the new state of every session in it (which now expects the average's
  commitment) and the removal of the halves are one transaction. A restarted server reloads
  both, so a restart mid-round loses nothing.
* Lock order: :attr:`Rounds.lock` (one round at a time), then the sessions' locks by id. A
  forward message holds only its session's lock (and the shared model's) and never waits for
  :attr:`Rounds.lock`, so the two cannot deadlock.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Protocol

from splitverify.circuitgen import SplitCircuits, statements as st
from splitverify.errors import InputError, TamperDetected
from splitverify.model import SplitSpec
from splitverify.protocol import params_from_lists, params_to_lists
from splitverify.protocol.aggregation import ClientHalf, aggregate_round
from splitverify.protocol.wire import (AverageAnswer, HalfSubmission, PublishedRound,
                                       RoundStatus, SessionCreate)

from .refusals import Refusal, Refused
from .session import Session
from .shared_model import SharedModel, server_half_key
from .store import SessionStore


class SessionHost(Protocol):
    """What a round needs of the server's sessions (``service.SessionService``)."""
    sessions: dict[int, Session | None]
    shared: SharedModel | None

    def stop(self, session: Session, exc: TamperDetected) -> Exception: ...

    def roll_back(self, session: Session) -> None: ...


@dataclass(frozen=True)
class RoundPlan:
    """Average the halves of ``clients`` clients after every ``every`` steps of each."""
    every: int
    clients: int

    def __post_init__(self):
        if self.every < 1 or self.clients < 2:
            raise InputError(f"rounds of averaged halves need every ≥ 1 and K ≥ 2 clients; got "
                             f"every:{self.every} with {self.clients} clients")


class RoundPending(Refusal):
    """The round's average is not made yet: hand the half over, or ask again later (425)."""
    status = 425


class NoRound(Refusal):
    """No such round for this session, or this server averages no halves (404)."""
    status = 404


class Rounds:
    """The server's rounds: the halves handed over for the round in progress, the averaged
    rounds, and the Aggregate circuit (per server half: one spec per shared model)."""

    def __init__(self, plan: RoundPlan, store: SessionStore,
                 circuits_for: Callable[[SplitSpec, int], SplitCircuits] | None = None):
        self.plan, self.store = plan, store
        self.lock = threading.Lock()
        self.records, self.halves = store.load_rounds()
        self.circuits_for = circuits_for or (
            lambda spec, clients: SplitCircuits(spec, aggregate_clients=clients))
        self._circuits: dict[str, SplitCircuits] = {}

    def admit(self, request: SessionCreate) -> None:
        """A session must hand its half over when this server averages."""
        every = self.plan.every
        if request.aggregate_every != every:
            raise InputError(f"this server averages the client halves of {self.plan.clients} "
                             f"clients every {every} steps (--aggregate every:{every}): the "
                             f"session must ask for aggregate_every={every}, not "
                             f"{request.aggregate_every}")

    def round_before(self, next_step: int) -> int | None:
        """The round that ends just before step ``next_step``, if one does."""
        every = self.plan.every
        return next_step // every - 1 if next_step > 0 and next_step % every == 0 else None

    def _record(self, round_: int) -> dict | None:
        return self.records[round_] if round_ < len(self.records) else None

    def require_averaged(self, session: Session) -> None:
        """Before a new forward message: a step that begins a round needs the round before it
        averaged, with this session in it (caller holds the session's lock)."""
        party = session.party
        round_ = self.round_before(party.next_step)
        if round_ is None or party.pending is not None:
            return
        record = self._record(round_)
        if record is None:
            raise RoundPending(
                f"step {party.next_step} begins after round {round_}, which is not averaged "
                f"yet: hand the client half over (POST /sessions/{session.id}/rounds/half) and "
                f"take the average (GET /sessions/{session.id}/rounds/{round_}) first")
        if str(session.id) not in record["answers"]:
            raise Refused(f"round {round_} was averaged without this session (it had "
                          f"{self.plan.clients} halves): the session cannot go on")

    def status(self, round_: int) -> RoundStatus:
        record = self._record(round_)
        received = (len(record["answers"]) if record is not None
                    else len(self.halves.get(round_, {})))
        return RoundStatus(round=round_, received=received, clients=self.plan.clients,
                           complete=record is not None)

    def submit(self, service: SessionHost, session: Session, body: HalfSubmission
               ) -> RoundStatus:
        """A client's half (see the module); the K-th half of a round averages it."""
        with self.lock:
            with session.lock:
                self._take(service, session, body)
            # also on a re-sent half: an average that failed (e.g. its proof) is tried again
            if (self._record(body.round) is None
                    and len(self.halves.get(body.round, {})) == self.plan.clients):
                self._average(service, body.round)
            return self.status(body.round)

    def _take(self, service: SessionHost, session: Session, body: HalfSubmission) -> None:
        """Check and store the half (caller holds both locks); a half already taken is kept."""
        session.require_keys()
        party, round_ = session.party, body.round
        digest = hashlib.sha256(body.model_dump_json().encode()).hexdigest()
        if body.session_id != session.id:
            raise Refused(f"the half names session {body.session_id}, not this one")
        record = self._record(round_)
        if record is not None:
            if str(session.id) in record["answers"]:
                return                       # re-sent after the round was averaged
            raise Refused(f"round {round_} was averaged without this session's half")
        held = self.halves.get(round_, {})
        if session.id in held:
            if held[session.id]["digest"] == digest:
                return                       # re-sent: its answer was lost
            raise Refused(f"this session already handed over another half for round {round_}")
        if (self.round_before(party.next_step) != round_ or party.pending is not None
                or body.step != party.next_step - 1 or round_ != len(self.records)):
            raise Refused(f"this session is at step {party.next_step}: a half for round "
                          f"{round_} (after step {body.step}) is not due; each client hands its "
                          f"half over after every {self.plan.every} steps, once its step is "
                          "done")
        spec = party.spec
        params = self._params(spec, body.params)
        if st.weights_commitment(spec, params, body.weights_salt) != party.client_chain:
            raise service.stop(session, TamperDetected(
                body.step, "server", f"round {round_}: the client's half is not the weights of "
                "its last proven step (its commitment differs from the session's chain)"))
        half = {"slot": len(held), "step": body.step, "params": body.params,
                "salt": body.weights_salt, "digest": digest}
        self.store.save_half(round_, session.id, half)
        self.halves[round_] = {**held, session.id: half}

    @staticmethod
    def _params(spec: SplitSpec, rows: list[list]) -> list:
        """The half as tensors, refused unless it has the client half's shapes and range."""
        shapes = [[tuple(shape) for _, shape in layer.parameter_shapes()] for layer in spec.client]
        try:
            params = params_from_lists(rows)
            got = [[tuple(t.shape) for t in tensors] for tensors in params]
        except (ValueError, TypeError, RuntimeError, OverflowError) as exc:
            raise InputError(f"the half's params must be [weights, bias] per layer, integer "
                             f"arrays: {exc}") from exc
        if got != shapes:
            raise InputError(f"the half has parameter shapes {got}; the client half's are "
                             f"{shapes}")
        for tensors in params:
            for tensor in tensors:
                spec.quant.check_range(tensor, "the half's weights")
        return params

    def _circuits_of(self, spec: SplitSpec) -> SplitCircuits:
        key = server_half_key(spec) + repr(spec.client)
        if key not in self._circuits:
            self._circuits[key] = self.circuits_for(spec, self.plan.clients)
        return self._circuits[key]

    def _average(self, service: SessionHost, round_: int) -> None:
        """Average, prove and sign round ``round_``; commit it with the sessions' new states
        (caller holds :attr:`lock`)."""
        order = sorted(self.halves[round_].items(), key=lambda item: item[1]["slot"])
        sessions = [service.sessions.get(sid) for sid, _ in order]
        if any(s is None for s in sessions):
            raise Refused(f"a session of round {round_} was deleted or expired: the round "
                          "cannot be averaged (the halves handed over are kept)")
        with ExitStack() as locks:
            for session in sorted(sessions, key=lambda s: s.id):
                locks.enter_context(session.lock)
            parties = [s.party for s in sessions]
            step = order[0][1]["step"]
            halves = [ClientHalf(sid, params_from_lists(h["params"]), h["salt"])
                      for sid, h in order]
            try:
                record, messages = aggregate_round(self._circuits_of(parties[0].spec), parties,
                                                   halves, round_, step)
                answers = {str(m.session_id): AverageAnswer(
                    session_id=m.session_id, round=round_, step=step, slot=j,
                    average=params_to_lists(m.average), public=m.public, proof=m.proof,
                    signature=m.signature).model_dump() for j, m in enumerate(messages)}
                published = PublishedRound(
                    round=round_, step=step, sessions=[str(sid) for sid, _ in order],
                    public=record.public, proof=record.proof,
                    chain_index=len(service.shared.chain) if service.shared else 0)
                row = {"published": published.model_dump(), "answers": answers}
                self.store.save_round(round_, row, {s.id: s.party.snapshot() for s in sessions})
            except Exception:
                for session in sessions:        # each session expects its own half again
                    service.roll_back(session)
                raise
        self.records.append(row)
        del self.halves[round_]

    def average_for(self, session: Session, round_: int) -> dict:
        """What the server sent this session of round ``round_`` (425 until it is averaged)."""
        record = self._record(round_)
        if record is None:
            raise RoundPending(f"round {round_} holds {len(self.halves.get(round_, {}))} of "
                               f"{self.plan.clients} client halves: ask again later")
        answer = record["answers"].get(str(session.id))
        if answer is None:
            raise NoRound(f"round {round_} was averaged without this session")
        return answer

    def published(self) -> list[dict]:
        """The averaged rounds as ``GET /chain`` shows them (``rounds``)."""
        return [row["published"] for row in self.records]
