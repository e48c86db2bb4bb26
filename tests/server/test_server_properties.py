"""A property of the server (Hypothesis): whatever interleaving of honest, replayed (same bytes),
re-randomized, malformed and cheating messages a session gets, after every request its live
state equals what a restart from the store would load; a refused message (4xx) or a re-sent one
changes nothing; a cheat stops the session for good; and where no cheat came, an honest client
then finishes the session and the merged transcript audits with exactly one entry per statement.

The real server app in process (FastAPI's TestClient), the tiny model, ``every`` sessions with
its own two-party key ceremony; a fresh session per example."""

from __future__ import annotations

import dataclasses

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings, strategies as hs

from splitverify_client.training import merged_transcript
from splitverify.protocol import (ClientParty, ForwardMessage, GradientMessage, ProofMode,
                                  SessionCreate, new_transcript, random_field)
from splitverify.refnet import initial_params
from splitverify_client import SplitClient
from splitverify.limits import Limits
from splitverify_server import create_app
from splitverify.transcript import Transcript, audit
from splitverify.zk.curve import R

from cheaters import assert_live_equals_stored, poisoned, rerandomize
from conftest import TINY_SPEC
from split_cases import data_batches

pytestmark = pytest.mark.xdist_group("attacks")

STEPS = 2
MODE = ProofMode.parse("every")
ACTIONS = ("honest", "replayed", "rerandomized", "malformed", "cheating")
MALFORMED = ("unknown field", "step not a number", "activations cut short", "salt past r",
             "label out of range")


def no_challenge(kind: str, step: int) -> str:
    raise AssertionError(f"every mode: the {kind} proof of step {step} came with its message")


class Session:
    """One session driven message by message; ``expect`` what each kind of message must get."""

    def __init__(self, app, http: TestClient):
        self.app, self.http = app, http
        # the SDK makes the session and runs its key ceremony (the audit establishes the keys
        # before it trusts a proof); from then on its party's messages are sent by hand
        client = SplitClient("http://testserver", spec=TINY_SPEC, proof_mode=str(MODE),
                             transport=http._transport)
        client.create_session(seed=1)
        self.party, self.sid = client.party, client.session_id
        self.auth = {"Authorization": f"Bearer {client.token}"}
        self.batches = data_batches(TINY_SPEC, STEPS, seed=9)
        self.step, self.kind = 0, "forward"
        self.outbox: dict | None = None          # the next honest message, fixed once made
        self.handled: list[tuple[str, dict, dict]] = []   # (kind, body, answer) in order
        self.stopped = False

    def post(self, kind: str, body: dict):
        before = self.stored()
        answer = self.http.post(f"/sessions/{self.sid}/{kind}", json=body, headers=self.auth)
        assert answer.status_code < 500, answer.text
        assert_live_equals_stored(self.app, self.sid)
        # a stopped session refuses everything (a body that does not parse: 422 first)
        assert answer.status_code in ((409, 422) if self.stopped else (200, 409, 422))
        if self.stopped or answer.status_code == 422:
            assert self.stored() == before, "a refused message changed it"
        return answer

    def next_honest(self) -> dict:
        if self.outbox is None:
            x, labels = self.batches[self.step]
            self.outbox = self.party.forward(self.step, x, labels).model_dump()
        return self.outbox

    # -- the actions --------------------------------------------------------------------------
    def honest(self) -> None:
        if self.step == STEPS:
            return
        kind, body = self.kind, self.next_honest()
        answer = self.post(kind, body)
        if self.stopped:
            return
        assert answer.status_code == 200, answer.text
        self.handled.append((kind, body, answer.json()))
        if kind == "forward":
            gradient = GradientMessage.model_validate(answer.json())
            self.outbox = self.party.receive_gradient(gradient, no_challenge).model_dump()
            self.kind = "backward"
        else:
            self.outbox, self.kind, self.step = None, "forward", self.step + 1

    def stored(self):
        """The session as the store holds it, less the time of its last request (every
        request, refused or not, restarts the idle clock: that is not session state)."""
        return dataclasses.replace(self.app.state.store.load(self.sid), updated=0.0)

    def resend(self, rerandomized: bool) -> None:
        """The latest handled message again (its answer was lost): the stored answer."""
        if not self.handled:
            return
        kind, body, first = self.handled[-1]
        if rerandomized:
            body = {**body, "proof": rerandomize(body["proof"], random_field() or 1)}
        before = self.stored()
        answer = self.post(kind, body)
        if not self.stopped:
            assert answer.status_code == 200 and answer.json() == first
            assert self.stored() == before

    def malformed(self, how: str) -> None:
        if self.step == STEPS:
            return
        body = dict(self.next_honest())
        if how == "unknown field":
            body["extra"] = 1
        elif how == "step not a number":
            body["step"] = "zero"
        elif self.kind == "backward":
            body["public"] = ["not", "a", "statement"]
        elif how == "activations cut short":
            body["activations"] = body["activations"][:1]
        elif how == "salt past r":
            body["message_salt"] += R
        else:
            body["labels"] = [TINY_SPEC.classes] * TINY_SPEC.batch
        self.post(self.kind, body)

    def cheat(self) -> None:
        """A message that must stop the session: a poisoned forward carrying the honest proof,
        a backward claiming other weights, or (past step 0) a replay of an older message."""
        if self.step == STEPS:
            return
        if self.step > 0 and self.kind == "forward":
            kind, body, _ = self.handled[0]
        elif self.kind == "forward":
            message = ForwardMessage.model_validate(self.next_honest())
            cheat = poisoned(TINY_SPEC, message, self.party.identity)
            kind, body = "forward", {**cheat.model_dump(), "proof": message.proof}
        else:
            body = dict(self.next_honest())
            kind, body = "backward", {**body, "public": {**body["public"],
                                                         "weightsAfter": random_field()}}
        # signed by the client as its own, so the check that must catch the cheat is the proof
        body = {**body, "signature": self.party.identity.sign_statement(
            self.sid, body["step"], f"client_{kind}", body["public"], body["proof"])}
        answer = self.post(kind, body)
        assert answer.status_code == 409, answer.text
        if not self.stopped:
            info = answer.json()
            assert (info["detected_step"], info["detected_by"]) == (self.step, "server")
            self.stopped = True


@pytest.fixture(scope="module")
def served():
    # each session its own two-party ceremony on the tiny circuits; all from one address
    app = create_app(limits=Limits(client_sessions=10_000))
    with TestClient(app) as http:
        yield app, http


@given(actions=hs.lists(hs.tuples(hs.sampled_from(ACTIONS), hs.sampled_from(MALFORMED)),
                        min_size=1, max_size=6))
# besides the generated ones, two interleavings that surely hold every kind of message: one
# the honest client finishes, one a cheat (step 0's forward again at step 1) stops
@example(actions=[("honest", ""), ("replayed", ""), ("rerandomized", ""),
                  ("malformed", "salt past r"), ("honest", ""), ("rerandomized", ""),
                  ("malformed", "label out of range"), ("honest", ""), ("replayed", "")])
@example(actions=[("honest", ""), ("honest", ""), ("cheating", ""), ("honest", "")])
@settings(max_examples=6, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_any_interleaving_leaves_state_consistent_and_the_session_finishable(served, actions):
    app, http = served
    session = Session(app, http)
    for action, how in actions:
        if action == "honest":
            session.honest()
        elif action in ("replayed", "rerandomized"):
            session.resend(rerandomized=action == "rerandomized")
        elif action == "malformed":
            session.malformed(how)
        else:
            session.cheat()
    server = app.state.sessions[session.sid].party
    keys = [(e.step, e.kind) for e in server.transcript.entries]
    assert len(keys) == len(set(keys)) == len(session.handled)
    if session.stopped:
        return
    while session.step < STEPS:
        session.honest()
    assert len(server.losses) == STEPS
    theirs = Transcript.model_validate(
        http.get(f"/sessions/{session.sid}/transcript", headers=session.auth).json())
    session.party.end_session(STEPS)
    merged = merged_transcript(session.party.transcript, theirs)
    statements = [(e.step, e.kind) for e in merged.entries]
    assert len(statements) == len(set(statements)) == 3 * STEPS
    report = audit(merged)
    assert report.valid and report.proofs_verified == 3 * STEPS, report
