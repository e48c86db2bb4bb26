"""The server's routes and dependencies (issue 16): a body is validated before the session it
names is looked up, so a body that does not parse is a 422 whatever the session, the token or
its state, and changes nothing; the session's typed records are stored in the shapes the store
has always held. Proofs off, the tiny model: nothing is compiled."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from splitverify_server import create_app
from splitverify_server.session import KeyCeremony, SessionPtau

from conftest import TINY_SPEC

TINY_OFF = {"model": "layers", "batch": TINY_SPEC.batch, "proof_mode": "off",
            "client_layers": [[d.n_in, d.n_out, d.relu] for d in TINY_SPEC.client],
            "server_layers": [[d.n_in, d.n_out, d.relu] for d in TINY_SPEC.server]}
UNPARSABLE = {"session_id": 1, "step": 0}           # a forward message without its tensors


@pytest.fixture
def server():
    app = create_app(ceremony=False)
    with TestClient(app) as http:
        created = http.post("/sessions", json=TINY_OFF).json()
        yield app, http, created["session_id"], {"Authorization": f"Bearer {created['token']}"}


def forward_of(session_id: int) -> dict:
    return {"session_id": session_id, "step": 0, "labels": [0] * TINY_SPEC.batch,
            "activations": [[0] * TINY_SPEC.cut_width] * TINY_SPEC.batch}


def test_a_body_that_does_not_parse_is_a_422_before_the_session_is_looked_up(server):
    app, http, sid, auth = server
    before = app.state.store.load(sid)
    for path, headers in ((f"/sessions/{sid}/forward", auth),         # the owner
                          (f"/sessions/{sid}/forward", {}),           # no token
                          (f"/sessions/{sid ^ 1}/forward", auth),     # no such session
                          (f"/sessions/{sid}/predict", {"Authorization": "Bearer nope"})):
        answer = http.post(path, json=UNPARSABLE if "forward" in path else {"rows": 1},
                           headers=headers)
        assert answer.status_code == 422, (path, answer.text)
        assert answer.json()["error"].startswith("invalid request: body."), answer.text
    assert app.state.store.load(sid) == before, "a refused body changed the session"
    # a body that parses reaches the session's checks, in their order
    assert http.post(f"/sessions/{sid ^ 1}/forward", json=forward_of(sid ^ 1),
                     headers=auth).status_code == 404
    assert http.post(f"/sessions/{sid}/forward", json=forward_of(sid)).status_code == 401


def test_a_stopped_session_answers_an_unparsable_body_422_and_a_message_409(server):
    app, http, sid, auth = server
    replayed = http.post(f"/sessions/{sid}/forward", json=forward_of(sid ^ 1), headers=auth)
    assert replayed.status_code == 409 and replayed.json()["detected_by"] == "server"
    stopped = app.state.sessions[sid].stopped.model_dump()
    assert stopped == {key: replayed.json()[key]
                       for key in ("detected_step", "detected_by", "reason")}
    assert http.post(f"/sessions/{sid}/forward", json=UNPARSABLE,
                     headers=auth).status_code == 422
    again = http.post(f"/sessions/{sid}/forward", json=forward_of(sid), headers=auth)
    assert again.status_code == 409 and again.json() == {"error": "the session was stopped",
                                                         **stopped}
    status = http.get(f"/sessions/{sid}", headers=auth)      # read: stopped sessions too
    assert status.status_code == 200 and status.json()["stopped"] == stopped
    assert app.state.store.load(sid).stopped == stopped


def test_key_and_ptau_records_are_stored_in_their_earlier_shapes():
    contributed = KeyCeremony(server="/k/server.zkey", server_hash="ab", server_signature="0xs")
    assert contributed.as_record() == {"server": "/k/server.zkey", "server_hash": "ab",
                                       "server_signature": "0xs", "final": None}
    final = {**contributed.as_record(), "final": "/k/final.zkey", "blake2b": "cd",
             "transcript": [{"name": "client"}], "client_signature": "0xc"}
    assert KeyCeremony(**final).as_record() == final
    for stored in ({}, {"record": {"origin": "published"}},
                   {"ready": False, "client": "0xc", "power": 12, "server_file": "/f",
                    "server_hash": "ef"},
                   {"ready": True, "file": "/p", "blake2b": "12", "record": {"sha256": "34"}}):
        ptau = SessionPtau(**stored)
        assert ptau.as_record() == stored
        assert ptau.waits_for_client == (stored.get("ready") is False)
