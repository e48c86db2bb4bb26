"""The runtime over real HTTP (uvicorn on loopback, the tiny model): an honest session verifies
every proof and audits clean; tampering stops the session at the right step; bad requests get a
4xx with a message and leave the session as it was."""

from __future__ import annotations

import json

import pytest

from splitverify_client import SplitClient
from splitverify_client.training import merged_transcript
from splitverify_server.loopback import ServerThread
from splitverify.errors import TamperDetected
from splitverify_server import create_app
from splitverify.transcript import Transcript, audit

from conftest import http, TINY_SPEC
from split_cases import data_batches


def batches(n: int, seed: int = 0):
    return data_batches(TINY_SPEC, n, seed)


@pytest.fixture(scope="module")
def keys(tiny_circuits):
    for kind in ("client_forward", "server_step", "client_backward"):
        tiny_circuits.key(kind)
    return tiny_circuits


def session(keys, mode="every", *, server_bad=None, client_bad=None):
    # the operator's keys (shared with the client): the two-party ceremony has its own tests
    app = create_app(lambda _spec: keys, malicious=server_bad, ceremony=False)
    return app, ServerThread(app)


def test_honest_session_over_http_audits_clean(keys):
    # the session's own two-party key ceremony: the audit refuses keys that do not come from
    # one (the operator's shared keys have neither party's signed contribution)
    app = create_app()
    thread = ServerThread(app)
    with thread:
        client = SplitClient(thread.url, spec=TINY_SPEC)
        client.create_session(seed=1)
        result = client.train(batches(2), steps=2)
        server_transcript = Transcript.model_validate(client.server_transcript())
    assert result.detected is None and result.steps == 2
    assert client.party.verifier.verified == 2
    merged = merged_transcript(client.party.transcript, server_transcript)
    report = audit(merged)
    assert report.valid and report.proofs_verified == 6, report


def test_audit_mode_challenges_over_http(keys):
    """audit:1 challenges every message: proofs travel only when asked (HTTP 428 → re-send)."""
    app, thread = session(keys)
    with thread:
        client = SplitClient(thread.url, spec=TINY_SPEC, proof_mode="audit:1",
                             circuits_for=lambda _s: keys)
        client.create_session(seed=2)
        result = client.train(batches(2, seed=3), steps=2)
        server = app.state.sessions[client.session_id].party
    assert result.detected is None
    assert server.verifier.verified == 4 and client.party.verifier.verified == 2


@pytest.mark.parametrize("scenario,step,party", [("server:forged-proof", 0, "client"),
                                                 ("client:replay", 1, "server")])
def test_tampering_over_http_stops_the_session(keys, scenario, step, party):
    server_bad = scenario if scenario.startswith("server:") else None
    client_bad = scenario if scenario.startswith("client:") else None
    app, thread = session(keys, server_bad=server_bad)
    with thread:
        client = SplitClient(thread.url, spec=TINY_SPEC, circuits_for=lambda _s: keys,
                             malicious=client_bad)
        client.create_session(seed=1)
        result = client.train(batches(3), steps=3)
        status = http.get(f"{thread.url}/sessions/{client.session_id}",
                           headers={"Authorization": f"Bearer {client.token}"})
    assert isinstance(result.detected, TamperDetected)
    assert (result.detected.step, result.detected.detected_by) == (step, party)
    if party == "server":
        assert status.status_code == 200 and status.json()["stopped"]["detected_step"] == step


def test_bad_requests_get_4xx_and_change_nothing(keys):
    app, thread = session(keys)
    with thread:
        client = SplitClient(thread.url, spec=TINY_SPEC, circuits_for=lambda _s: keys)
        sid = client.create_session(seed=1)
        url, auth = f"{thread.url}/sessions/{sid}", {"Authorization": f"Bearer {client.token}"}
        x, labels = batches(1)[0]
        good = client.party.forward(0, x, labels).model_dump()

        def post(body, headers=auth, path="/forward"):
            return http.post(f"{url}{path}", json=body, headers=headers)

        assert post(good, headers={}).status_code == 401
        assert post(good, headers={"Authorization": "Bearer nope"}).status_code == 403
        assert http.post(f"{thread.url}/sessions/123/forward", json=good,
                          headers=auth).status_code == 404
        wrong_shape = {**good, "activations": good["activations"][:1]}
        r = post(wrong_shape)
        assert r.status_code == 422 and "activations must be" in r.json()["error"]
        nan = json.dumps({**good, "activations": [[float("nan")] * 3] * 2})   # NaN literals
        r = http.post(f"{url}/forward", content=nan,
                       headers={**auth, "content-type": "application/json"})
        assert r.status_code == 422
        r = post({**good, "activations": [[1 << 40] * 3] * 2})
        assert r.status_code == 422 and "outside" in r.json()["error"]
        # a malformed proof, signed by the client (an unsigned one is refused for that first)
        r = post({**good, "proof": "00" * 10, "signature": client.identity.sign_statement(
            sid, 0, "client_forward", good["public"], "00" * 10)})
        assert r.status_code == 409 and "malformed" in r.json()["reason"]
        big = http.post(f"{url}/forward", content=b"x" * (9 << 20),
                         headers={**auth, "content-type": "application/json"})
        assert big.status_code == 413
    # the malformed proof stopped the session; everything before it changed nothing
    server = app.state.sessions[sid].party
    assert server.next_step == 0 and server.losses == []
