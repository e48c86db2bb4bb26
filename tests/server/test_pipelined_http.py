"""``pipelined:W`` over real HTTP (uvicorn on loopback, the tiny model): proofs follow their
statements through ``POST /sessions/{id}/proofs``; an honest session ends with every statement
proven and audits clean; a cheating server is caught within W steps and both parties roll back
to the reference weights; a client that crashes mid-session resumes from its state folder with
the proofs it still owed, and the session ends fully proven."""

from __future__ import annotations

import pytest

from splitverify_client import SplitClient
from splitverify_client.training import merged_transcript
from splitverify_server import create_app
from splitverify_server.loopback import ServerThread
from splitverify.refnet import initial_params
from splitverify.transcript import audit

from conftest import Interposer, TINY_SPEC, http
from split_cases import data_batches, reference_weights, same_params

pytestmark = pytest.mark.xdist_group("sessions")


class Crash(Exception):
    """The client process 'dies' here: its object is dropped, its state folder stays."""


def test_an_honest_pipelined_session_over_http_audits_clean():
    with ServerThread(create_app()) as thread:   # the session's own two-party key ceremony
        client = SplitClient(thread.url, spec=TINY_SPEC, proof_mode="pipelined:2")
        client.create_session(seed=1)
        result = client.train(data_batches(TINY_SPEC, 4, seed=3), steps=4)
        status = client.status()
        merged = merged_transcript(client.party.transcript, client.transcript_of_server())
    assert result.detected is None and result.steps == 4
    assert client.party.verifier.verified == 4 and status.proofs_verified == 8
    assert not client.party.prover.outbound.jobs and not client.party.verifier.inbound.held
    report = audit(merged)
    assert report.valid and report.proofs_verified == 12, report
    assert "at most 2 steps late" in report.established


def test_a_cheating_server_is_caught_within_w_steps_and_both_roll_back(tiny_keys):
    app = create_app(lambda _spec: tiny_keys, malicious="server:wrong-gradient", ceremony=False)
    with ServerThread(app) as thread:
        client = SplitClient(thread.url, spec=TINY_SPEC, proof_mode="pipelined:3",
                             circuits_for=lambda _s: tiny_keys)
        client.create_session(seed=1)
        result = client.train(data_batches(TINY_SPEC, 6, seed=3), steps=6)
        status = http.get(f"{thread.url}/sessions/{client.session_id}",
                          headers={"Authorization": f"Bearer {client.token}"}).json()
        server = app.state.sessions[client.session_id].party
    detected = result.detected
    assert detected is not None and (detected.step, detected.detected_by) == (0, "client")
    assert "server_step proof does not verify" in detected.reason
    assert result.steps - detected.step <= 3             # caught within W steps
    # the cheat was at step 0: both go back to the initial weights, the server told so
    assert detected.rolled_back_to == -1 and status["stopped"]["rolled_back_to"] == -1
    client_start, server_start = initial_params(TINY_SPEC, 1)
    assert same_params(client.party.params, client_start)
    assert same_params(server.params, server_start)


def crashed_client(url: str, mode: str, keys, folder, seed: int, data) -> SplitClient:
    """A client that dies just before its third proof exchange (mid-session: step 2 begins)."""
    exchanges = []

    def crash_at_third_exchange(_n, request):
        exchanges.extend([request.url.path] if request.url.path.endswith("/proofs") else [])
        if len(exchanges) == 3:
            raise Crash("killed")

    client = SplitClient(url, spec=TINY_SPEC, proof_mode=mode, circuits_for=lambda _s: keys,
                         state_dir=folder, transport=Interposer(before=crash_at_third_exchange))
    client.create_session(seed=seed)
    with pytest.raises(Crash):
        client.train(data, steps=len(data))
    return client


def test_a_client_crash_resumes_with_the_proofs_it_owed(tmp_path, tiny_keys):
    steps, seed, data_seed = 4, 2, 5
    folder = tmp_path / "client"
    app = create_app(lambda _spec: tiny_keys, ceremony=False, db=tmp_path / "server.db")
    data = data_batches(TINY_SPEC, steps, seed=data_seed)
    with ServerThread(app) as thread:
        client = crashed_client(thread.url, "pipelined:2", tiny_keys, folder, seed, data)
        owed = {(k, s) for k, s, *_ in client.party.snapshot()["outbound"]}
        assert client.next_step == 2 and owed          # mid-session, proofs still owed
        resumed = SplitClient.resume(folder, circuits_for=lambda _s: tiny_keys)
        assert {(k, s) for k, s, *_ in resumed.party.snapshot()["outbound"]} == owed
        result = resumed.train(data, steps=steps)
        status = resumed.status()
        merged = merged_transcript(resumed.party.transcript, resumed.transcript_of_server())
    assert result.detected is None and result.steps == steps
    assert status.proofs_verified == 2 * steps and resumed.party.verifier.verified == steps
    assert all(e.proof is not None for e in merged.entries) and len(merged.entries) == 3 * steps
    want_client, want_server = reference_weights(TINY_SPEC, steps, seed, data)
    assert same_params(resumed.party.params, want_client)
    assert same_params(app.state.sessions[resumed.session_id].party.params, want_server)


def test_both_parties_restart_mid_session_and_the_owed_proofs_still_come(tmp_path, tiny_keys):
    """The client dies and the server restarts from its store while both owe proofs: each
    restored party makes its owed proofs again (the store and the state folder hold their
    inputs and statements), and the session ends fully proven on the reference weights."""
    steps, seed, data_seed = 4, 3, 6
    folder, db = tmp_path / "client", tmp_path / "server.db"
    data = data_batches(TINY_SPEC, steps, seed=data_seed)
    with ServerThread(create_app(lambda _spec: tiny_keys, ceremony=False, db=db)) as thread:
        client = crashed_client(thread.url, "pipelined:3", tiny_keys, folder, seed, data)
    stored = create_app(lambda _spec: tiny_keys, ceremony=False, db=db)
    server = stored.state.sessions[client.session_id].party
    assert server.prover.outbound.jobs and server.verifier.inbound.held   # owed both ways
    with ServerThread(stored) as thread:
        resumed = SplitClient.resume(folder, circuits_for=lambda _s: tiny_keys, url=thread.url)
        result = resumed.train(data, steps=steps)
        status = resumed.status()
    assert result.detected is None and status.proofs_verified == 2 * steps
    assert not server.prover.outbound.jobs and not server.verifier.inbound.held
    want_client, want_server = reference_weights(TINY_SPEC, steps, seed, data)
    assert same_params(resumed.party.params, want_client) and same_params(server.params,
                                                                          want_server)


@pytest.mark.parametrize("mode", ["every", "pipelined:2"])
def test_proofs_that_do_not_fit_the_session_are_refused_and_change_nothing(tiny_keys, mode):
    """/proofs serves pipelined:W only; a proof of a statement the server does not hold is a
    422 naming it, and the session is as it was."""
    app = create_app(lambda _spec: tiny_keys, ceremony=False)
    with ServerThread(app) as thread:
        client = SplitClient(thread.url, spec=TINY_SPEC, proof_mode=mode,
                             circuits_for=lambda _s: tiny_keys)
        client.create_session(seed=1)
        party = app.state.sessions[client.session_id].party
        before = party.snapshot()
        stray = {"kind": "client_forward", "step": 0, "proof": "00" * 256, "signature": "0x00"}
        auth = {"Authorization": f"Bearer {client.token}"}
        url = f"{thread.url}/sessions/{client.session_id}/proofs"
        answer = http.post(url, json={"proofs": [stray], "through_step": -1}, headers=auth)
        stop = {"detected_step": 3, "detected_by": "client", "reason": "r", "rolled_back_to": 2}
        unkept = http.post(url, json={"stopped": stop}, headers=auth)
    assert answer.status_code == 422 and unkept.status_code == 422
    expected = "pipelined:W only" if mode == "every" else "no such statement waits"
    assert expected in answer.json()["error"]
    if mode != "every":
        assert "the server still keeps: [-1]; got 2" in unkept.json()["error"]
    assert party.snapshot() == before and app.state.sessions[client.session_id].stopped is None
