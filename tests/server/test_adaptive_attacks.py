"""Issue 13, over loopback HTTP against the real server (tiny model, the operator's keys):

* audit mode: a challenge binds to the statement challenged (stored before the 428 leaves, so a
  restart keeps it); a cheater that turns honest once challenged is caught; a server that does
  not answer the client's challenge fails it, and a resumed client challenges the same step;
  a one-step cheater is caught at rate P;
* message identity is the statement: a re-randomized proof re-sends the same message;
* a refused message changes nothing, and the client's initial weights are bound at the start.
"""

from __future__ import annotations

import json
import math
import random

import pytest

from splitverify_client import SplitClient
from splitverify_client.training import merged_transcript
from splitverify_server.loopback import ServerThread
from splitverify.protocol import ClientParty, ProofMode, SessionCreate
from splitverify.refnet import initial_params
from splitverify.limits import Limits
from splitverify_server import create_app
from splitverify.transcript import Transcript, audit
from splitverify.zk.curve import R

from cheaters import (AnswerOnPath, assert_live_equals_stored, poisoned, proven,
                      rerandomize)
from conftest import http, Interposer, TINY_SPEC
from split_cases import data_batches

pytestmark = pytest.mark.xdist_group("attacks")


def first_draw_seed(challenged: bool, p: float = 0.5) -> int:
    """A seed whose random.Random's first draw challenges (or not) at probability ``p``."""
    return next(s for s in range(100) if (random.Random(s).random() < p) == challenged)


def operator_app(keys, **kwargs):
    # every session here comes from one loopback address: lift the per-address creation rate
    kwargs.setdefault("limits", Limits(client_sessions=10_000))
    return create_app(lambda _spec: keys, ceremony=False, **kwargs)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def new_client(url: str, keys, mode: str, **kwargs) -> SplitClient:
    return SplitClient(url, spec=TINY_SPEC, proof_mode=mode, circuits_for=lambda _s: keys,
                       **kwargs)


# --- 1. audit mode -----------------------------------------------------------------------------


def test_a_challenge_binds_the_statement_it_was_drawn_on(tiny_keys, tmp_path):
    """The cheater sends a poisoned forward message unproven, is challenged (428), then sends
    its honest message with a valid proof instead: tampering (409), even after the server
    restarted between the two (the challenge is in the store)."""
    db = tmp_path / "sessions.db"
    app = operator_app(tiny_keys, db=db)
    with ServerThread(app) as thread:
        client = new_client(thread.url, tiny_keys, "audit:1")
        sid = client.create_session(seed=1)
        x, labels = data_batches(TINY_SPEC, 1, seed=2)[0]
        honest = client.party.forward(0, x, labels)          # audit: unproven, inputs kept
        cheat = http.post(f"{thread.url}/sessions/{sid}/forward",
                          json=poisoned(TINY_SPEC, honest, client.identity).model_dump(),
                          headers=bearer(client.token))
        assert cheat.status_code == 428, cheat.text
        assert (cheat.json()["challenge"], cheat.json()["step"]) == ("client_forward", 0)
        assert_live_equals_stored(app, sid)
    restarted = operator_app(tiny_keys, db=db)
    with ServerThread(restarted) as thread:
        turned = http.post(f"{thread.url}/sessions/{sid}/forward",
                           json=proven(client.party, honest).model_dump(),
                           headers=bearer(client.token))
        assert turned.status_code == 409, turned.text
        body = turned.json()
        assert (body["detected_step"], body["detected_by"]) == (0, "server")
        assert "was challenged, and another statement came" in body["reason"]
        assert_live_equals_stored(restarted, sid)
        session = restarted.state.sessions[sid]
        assert session.party.transcript.entries == [] and session.party.losses == []


class ClientKilled(Exception):
    """The client process dies (here: its transport raises) at a chosen request."""


def test_a_server_that_does_not_answer_a_challenge_is_caught_across_a_resume(tiny_keys,
                                                                            tmp_path):
    """The server cheats on its step (a gradient its proof does not give) and answers 503
    whenever it is challenged. The client draws a challenge at step 0 and is killed as the
    challenge leaves; resumed with randomness that would *not* challenge, it still challenges
    step 0 (the draw was saved before it was acted on), and the unanswered challenge is
    tampering by the server — not an outage to retry later."""
    app = operator_app(tiny_keys, malicious="server:wrong-gradient")
    refusing = AnswerOnPath(app, "/prove", 503)

    def die_at_the_challenge(_n, request) -> None:
        if request.url.path.endswith("/prove"):
            raise ClientKilled("killed as the challenge left")
    state = tmp_path / "client"
    batches = data_batches(TINY_SPEC, 2, seed=3)
    with ServerThread(refusing) as thread:
        client = new_client(thread.url, tiny_keys, "audit:0.5", state_dir=state,
                            retry_seconds=1, transport=Interposer(before=die_at_the_challenge))
        client.create_session(seed=1)
        client.party.verifier.rng = random.Random(first_draw_seed(challenged=True))
        with pytest.raises(ClientKilled):
            client.train(batches, steps=2)
        assert refusing.answered == []
        resumed = SplitClient.resume(state, circuits_for=lambda _s: tiny_keys, retry_seconds=1)
        resumed.party.verifier.rng = random.Random(first_draw_seed(challenged=False))
        result = resumed.train(batches, steps=2)
    assert refusing.answered and set(refusing.answered) == {503}
    assert result.detected is not None, "the resumed client drew again and let the cheat pass"
    assert (result.detected.step, result.detected.detected_by) == (0, "client")
    assert "did not answer the challenge of its server_step of step 0" in result.detected.reason
    assert SplitClient.resume(state, circuits_for=lambda _s: tiny_keys).detected is not None


def test_a_one_step_cheaters_detection_rate_is_P(tiny_keys):
    """Sessions in audit:0.5 whose client cheats at step 0 (a poisoned forward message,
    committed to consistently, unproven) and, when challenged, turns honest with a valid
    proof. The server's randomness is seeded per session: the cheat must be caught exactly in
    the sessions whose draw challenged it, and the caught fraction must be P within three
    standard deviations of a binomial (±0.24 for 40 sessions)."""
    p, sessions = 0.5, 40
    seeds = iter(range(sessions))

    def seeded(party) -> None:
        party.verifier.rng = random.Random(next(seeds))
    app = operator_app(tiny_keys, on_party=seeded)
    caught = []
    with ServerThread(app) as thread:
        x, labels = data_batches(TINY_SPEC, 1, seed=4)[0]
        for _ in range(sessions):
            client = new_client(thread.url, tiny_keys, f"audit:{p}")
            sid = client.create_session(seed=1)
            url, auth = f"{thread.url}/sessions/{sid}/forward", bearer(client.token)
            honest = client.party.forward(0, x, labels)
            answer = http.post(url, json=poisoned(TINY_SPEC, honest, client.identity).model_dump(), headers=auth)
            if answer.status_code == 428:
                answer = http.post(url, json=proven(client.party, honest).model_dump(),
                                   headers=auth)
            assert answer.status_code in (200, 409), answer.text
            caught.append(answer.status_code == 409)
    expected = [random.Random(seed).random() < p for seed in range(sessions)]
    assert caught == expected
    tolerance = 3 * math.sqrt(p * (1 - p) / sessions)
    assert abs(sum(caught) / sessions - p) <= tolerance, (sum(caught), sessions)


# --- 3. a message is its statement ------------------------------------------------------------


def test_a_rerandomized_proof_is_the_same_message(tiny_keys):
    """Step 0's forward and backward messages are re-sent with re-randomized (valid) proofs:
    the server answers with its stored answers and changes nothing; the session then finishes
    and the merged transcript audits with one entry per statement, holding the proofs that were
    verified first. The session runs its own key ceremony: the audit establishes the keys
    before it trusts a proof."""
    app = create_app(limits=Limits(client_sessions=10_000))
    resent: list[tuple] = []     # kind, status, answer, stored answer, state before, after

    def resend_rerandomized(_n, request) -> None:
        kind = request.url.path.rsplit("/", 1)[-1]
        if kind not in ("forward", "backward") or json.loads(request.content)["step"] != 0:
            return
        body = json.loads(request.content)
        sid = body["session_id"]
        session = app.state.sessions[sid]
        before = (len(session.party.transcript.entries), list(session.party.losses),
                  session.party.verifier.verified)
        again = http.post(str(request.url), json={**body, "proof": rerandomize(body["proof"], 7)},
                          headers={"Authorization": request.headers["authorization"]})
        after = (len(session.party.transcript.entries), list(session.party.losses),
                 session.party.verifier.verified)
        resent.append((kind, again.status_code, again.json(),
                       session.replies[kind]["response"], before, after))
        assert_live_equals_stored(app, sid)

    with ServerThread(app) as thread:
        client = SplitClient(thread.url, spec=TINY_SPEC, proof_mode="every",
                             transport=Interposer(after=resend_rerandomized))
        sid = client.create_session(seed=1)
        result = client.train(data_batches(TINY_SPEC, 2, seed=5), steps=2)
        server_transcript = Transcript.model_validate(client.server_transcript())
    assert [kind for kind, *_ in resent] == ["forward", "backward"]
    for kind, status, answer, stored, before, after in resent:
        assert status == 200 and answer == stored, (kind, answer)
        assert before == after, f"the re-sent {kind} message changed the session"
    assert result.detected is None and result.steps == 2
    assert len(app.state.sessions[sid].party.losses) == 2
    merged = merged_transcript(client.party.transcript, server_transcript)
    assert sorted((e.step, e.kind) for e in merged.entries) == sorted(
        {(e.step, e.kind) for e in merged.entries}) and len(merged.entries) == 6
    report = audit(merged)
    assert report.valid and report.proofs_verified == 6, report


# --- 4. a refused message changes nothing -----------------------------------------------------


def test_a_salt_past_the_field_is_refused_and_changes_nothing(tiny_keys):
    """``message_salt + r`` commits like ``message_salt``: it is refused (422) before anything
    is looked at, and the honest message then goes through once."""
    app = operator_app(tiny_keys)
    with ServerThread(app) as thread:
        client = new_client(thread.url, tiny_keys, "every")
        sid = client.create_session(seed=1)
        x, labels = data_batches(TINY_SPEC, 1, seed=6)[0]
        honest = client.party.forward(0, x, labels).model_dump()
        url, auth = f"{thread.url}/sessions/{sid}/forward", bearer(client.token)
        wrapped = http.post(url, json={**honest, "message_salt": honest["message_salt"] + R},
                            headers=auth)
        assert wrapped.status_code == 422 and "message_salt" in wrapped.json()["error"]
        assert_live_equals_stored(app, sid)
        assert app.state.sessions[sid].party.transcript.entries == []
        assert http.post(url, json=honest, headers=auth).status_code == 200
        assert len(app.state.sessions[sid].party.transcript.entries) == 1
        assert_live_equals_stored(app, sid)


def test_a_step_the_server_cannot_take_is_refused_before_its_proof_counts(tiny_keys):
    """A client whose (declared) initial bias drives the server's SGD step out of range: its
    proven step 0 is refused with 422 and nothing is recorded — no transcript entry, no proof
    counted, no loss — in memory and in the store alike."""
    app = operator_app(tiny_keys)
    spec, mode = TINY_SPEC, ProofMode.parse("every")
    params, _ = initial_params(spec, 1)
    (w, b), = params
    # a bias near the top of the stored range (|real| just under 2^(value_bits - frac_bits))
    big_bias = int(0.95 * (1 << spec.quant.value_bits))
    party = ClientParty(spec, 0, mode, [(w, b.clone().fill_(big_bias))], tiny_keys)
    with ServerThread(app) as thread:
        created = http.post(f"{thread.url}/sessions", json=SessionCreate.of(
            spec, mode, 1, party.weights_commitment(),
            client_identity=party.identity.address).model_dump()).json()
        sid = party.session_id = created["session_id"]
        x, labels = data_batches(spec, 1, seed=7)[0]
        msg = party.forward(0, x, labels)
        assert msg.proof is not None
        refused = http.post(f"{thread.url}/sessions/{sid}/forward", json=msg.model_dump(),
                            headers=bearer(created["token"]))
    assert refused.status_code == 422 and "outside" in refused.json()["error"], refused.text
    server = app.state.sessions[sid].party
    assert server.transcript.entries == [] and server.verifier.verified == 0
    assert server.losses == [] and server.next_step == 0
    assert_live_equals_stored(app, sid)


def test_the_sessions_start_binds_the_clients_initial_weights(tiny_keys):
    """A committing session needs the client's initial weights commitment; step 0 must start
    from it (here the client swaps in other weights after the session was made: 409)."""
    app = operator_app(tiny_keys)
    with ServerThread(app) as thread:
        unbound = SessionCreate.of(TINY_SPEC, ProofMode.parse("commit"), 1).model_dump()
        refused = http.post(f"{thread.url}/sessions", json=unbound)
        assert refused.status_code == 422
        assert "initial_weights_commitment" in refused.json()["error"]
        client = new_client(thread.url, tiny_keys, "commit")
        client.create_session(seed=1)
        client.party.params, _ = initial_params(TINY_SPEC, 2)
        result = client.train(data_batches(TINY_SPEC, 1, seed=8), steps=1)
    assert result.detected is not None
    assert (result.detected.step, result.detected.detected_by) == (0, "server")
    assert "weight chain" in result.detected.reason
