"""The client SDK against a real server on loopback where the suite had no test (issue 13, §6):
it refuses a ceremony key that lacks the server's contribution, it retries through a gateway
answering 502/503/504, and ``/predict`` gives the integer reference's predictions."""

from __future__ import annotations

import pytest
import torch

from splitverify import model
from splitverify_client import SplitClient
from splitverify_server.loopback import ServerThread
from splitverify.errors import SetupError
from splitverify.keyexchange import initial
from splitverify.model import SplitSpec
from splitverify_server import create_app

from cheaters import AnswerOnPath
from conftest import TINY_SPEC
from split_cases import data_batches, reference_weights, same_params

pytestmark = pytest.mark.xdist_group("sessions")


class KeyWithoutContribution:
    """ASGI wrapper: the server's client_forward key is answered with the circuit's initial key
    (no server contribution: a server that would know the whole trapdoor), under the hash of
    the contribution the server really made."""

    def __init__(self, app):
        self.app, self.served = app, 0

    async def __call__(self, scope, receive, send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or scope["method"] != "GET" or \
                not path.endswith("/keys/client_forward"):
            await self.app(scope, receive, send)
            return
        session = self.app.state.sessions[int(path.split("/")[2])]
        body = initial(session.party.prover.circuits, "client_forward").zkey.read_bytes()
        self.served += 1
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"application/octet-stream"),
            (b"x-contribution-hash",
             session.keys["client_forward"].server_hash.encode())]})
        await send({"type": "http.response.body", "body": body})


def test_the_client_refuses_a_key_without_the_servers_contribution(tmp_path):
    app = create_app(db=tmp_path / "sessions.db")
    wrapped = KeyWithoutContribution(app)
    with ServerThread(wrapped) as thread:
        client = SplitClient(thread.url, spec=TINY_SPEC, state_dir=tmp_path / "client")
        with pytest.raises(SetupError, match="server"):
            client.create_session(seed=1)
    assert wrapped.served == 1
    (session,) = app.state.sessions.values()
    assert not any(ceremony.final for ceremony in session.keys.values()), \
        "the client uploaded a key after all"
    assert client.keys == {}


def test_the_client_retries_through_502_503_and_504():
    """A gateway answers the first three forward messages with 502, 503 and 504 (the server
    never sees them); the client re-sends, and the session ends exactly as the reference."""
    app = create_app(ceremony=False)
    gateway = AnswerOnPath(app, "/forward", [502, 503, 504])
    batches = data_batches(TINY_SPEC, 2, seed=11)
    with ServerThread(gateway) as thread:
        client = SplitClient(thread.url, spec=TINY_SPEC, proof_mode="off", retry_seconds=30)
        client.create_session(seed=3)
        result = client.train(batches, steps=2)
    assert gateway.answered == [502, 503, 504] and client.retries == 3
    assert result.detected is None and result.steps == 2
    want_client, want_server = reference_weights(TINY_SPEC, 2, 3, batches)
    assert same_params(client.party.params, want_client)
    assert same_params(app.state.sessions[client.session_id].party.params, want_server)


def test_predict_gives_the_integer_references_classes():
    """After two steps, ``/predict`` on the client half's activations of fresh data gives the
    argmax of the integer reference's logits (the reference's weights after the same steps),
    and ``evaluate`` counts exactly those."""
    app = create_app(ceremony=False)
    batches = data_batches(TINY_SPEC, 2, seed=12)
    x, y = torch.rand(40, TINY_SPEC.features), torch.randint(0, TINY_SPEC.classes, (40,))
    with ServerThread(app) as thread:
        client = SplitClient(thread.url, spec=TINY_SPEC, proof_mode="off")
        client.create_session(seed=4)
        client.train(batches, steps=2)
        accuracy = client.evaluate(x, y, rows=16)
        want_client, want_server = reference_weights(TINY_SPEC, 2, 4, batches)
        full = SplitSpec(TINY_SPEC.client, TINY_SPEC.server, len(x), TINY_SPEC.quant)
        acts = model.forward(full, full.client, want_client,
                             full.quant.encode(x, data=True)).output
        got = client._post(f"/sessions/{client.session_id}/predict",
                           {"activations": acts.tolist()})
    want = model.forward(full, full.server, want_server, acts).output.argmax(1)
    assert got.status_code == 200, got.text
    assert got.json()["classes"] == want.tolist()
    assert accuracy == int((want == y).sum()) / len(x)
