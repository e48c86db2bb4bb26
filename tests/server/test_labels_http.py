"""--labels server over real HTTP, the tiny model: the session's creation carries the label mode
and the server's table commitment; the client's messages name sample ids and no labels, and no
label value reaches it; the run equals the same rows labelled at the client, bit for bit; bad
requests are 422s that change nothing; a server restart and a client resume keep the session;
a server that uses other labels than its table is caught; a shared server half reads one
table for every client."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import torch

from splitverify.errors import InputError
from splitverify.protocol import ProofMode
from splitverify.transcript import audit
from splitverify_client import SplitClient
from splitverify_client.sdk import ServerError
from splitverify_client.training import merged_transcript
from splitverify_server import create_app
from splitverify_server.loopback import ServerThread

from cheaters import AnswerOnPath
from conftest import TINY_SPEC, Interposer, http
from split_cases import vertical_split

pytestmark = pytest.mark.xdist_group("sessions")

STEPS, TABLE_SALT = 2, 4242


def labels_app(keys, table, **options):
    """A server holding ``table``'s labels (it draws its own salt per session); ``keys``: the
    operator's keys, shared with the client (None: each session's two-party ceremony, which
    the audit requires)."""
    if keys is None:
        return create_app(labels=table.labels, **options)
    return create_app(lambda _spec: keys, ceremony=False, labels=table.labels, **options)


def client_of(url, keys, mode="every", **options):
    """A client sending sample ids (``keys``: as for :func:`labels_app`)."""
    own = {} if keys is None else {"circuits_for": lambda _s: keys}
    return SplitClient(url, spec=TINY_SPEC, proof_mode=mode, labels="server", **own, **options)


class Recorder(Interposer):
    """Every request body the client sends and every answer it gets, decoded."""

    def __init__(self):
        super().__init__()
        self.sent, self.answers = [], []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        for body, into in ((request.content, self.sent), (response.content, self.answers)):
            if body:
                try:
                    into.append(json.loads(body))
                except ValueError:
                    pass             # a key's bytes
        return response


def keys_with_values(data, name: str) -> list:
    """Every non-null value under the key ``name`` anywhere in ``data``."""
    found = []
    if isinstance(data, dict):
        for key, value in data.items():
            if key == name and value is not None:
                found.append(value)
            found += keys_with_values(value, name)
    elif isinstance(data, list):
        for item in data:
            found += keys_with_values(item, name)
    return found


def test_server_labels_over_http_equal_client_labels_and_send_none(table_keys, tiny_keys):
    labelled, by_id, table = vertical_split(TINY_SPEC, STEPS, seed=3, salt=TABLE_SALT)
    recorder = Recorder()
    with ServerThread(labels_app(None, table)) as server:
        client = client_of(server.url, None, transport=recorder)
        client.create_session(seed=1)
        result = client.train(by_id, steps=STEPS)
        status = client.status()
        merged = merged_transcript(client.party.transcript, client.transcript_of_server())
    assert result.detected is None and result.steps == STEPS
    assert client.party.verifier.verified == STEPS
    commitment = client.label_table.commitment
    assert (client.label_table.size, client.label_table.depth) == (len(table.labels), 2)
    # the client learns the commitment, not the table: the server drew its own salt
    assert commitment != table.commitment
    assert merged.label_table == commitment
    assert all(e.public["labelTable"] == commitment
               for e in merged.entries if e.kind == "server_step")
    report = audit(merged)
    assert report.valid, report.reason
    assert "every ServerStep read the session's committed label table" in report.established
    # no label goes either way: the forward messages carry ids, no answer holds a label
    forwards = [body for body in recorder.sent if "activations" in body]
    assert [f["ids"] for f in forwards] == [ids.tolist() for _, ids in by_id]
    assert keys_with_values(recorder.sent, "labels") == ["server"]     # the session's mode
    assert all(keys_with_values(recorder.answers, name) == []
               for name in ("labels", "label", "correct"))
    # the same rows labelled at the client: the same proven losses and weights, bit for bit
    with ServerThread(create_app(lambda _spec: tiny_keys, ceremony=False)) as server:
        plain = SplitClient(server.url, spec=TINY_SPEC, circuits_for=lambda _s: tiny_keys)
        plain.create_session(seed=1)
        assert plain.train(labelled, steps=STEPS).detected is None
        plain_status = plain.status()
    assert status.losses == plain_status.losses
    for (w, b), (w2, b2) in zip(client.party.params, plain.party.params):
        assert torch.equal(w, w2) and torch.equal(b, b2)


def test_bad_label_requests_are_422s_that_change_nothing(table_keys, tiny_keys):
    _, by_id, table = vertical_split(TINY_SPEC, STEPS, seed=6, salt=TABLE_SALT)
    without = create_app(lambda _spec: tiny_keys, ceremony=False)
    with ServerThread(without) as server:
        with pytest.raises(ServerError, match="422.*holds no label table"):
            client_of(server.url, table_keys).create_session()
    assert without.state.sessions == {}
    with ServerThread(labels_app(table_keys, table)) as server:
        client = client_of(server.url, table_keys, mode="commit")
        client.create_session()
        msg = client.party.forward(0, by_id[0][0], by_id[0][1])
        headers = {"Authorization": f"Bearer {client.token}"}
        path = f"{server.url}/sessions/{client.session_id}/forward"
        past = msg.model_copy(update={"ids": [0, len(table.labels)]}).model_dump()
        refused = http.post(path, json=past, headers=headers)
        assert refused.status_code == 422 and "sample ids" in refused.json()["error"]
        labels = msg.model_copy(update={"ids": None, "labels": [0, 1]}).model_dump()
        refused = http.post(path, json=labels, headers=headers)
        assert refused.status_code == 422
        assert "carry ids" in refused.json()["error"]
        assert client.status().next_step == 0 and client.status().losses == []
        # the message it should have sent is taken as if nothing had come before it
        assert http.post(path, json=msg.model_dump(), headers=headers).status_code == 200


def test_a_server_restart_and_a_client_resume_keep_the_table(table_keys, tmp_path):
    """The server stops after step 0 and a new one starts on the same database and labels;
    the client resumes from its state folder: the table (its salt, stored before the
    commitment left) and the session go on, and the transcript audits."""
    _, by_id, table = vertical_split(TINY_SPEC, STEPS, seed=8, salt=TABLE_SALT)
    db, state = tmp_path / "sessions.db", tmp_path / "client"
    with ServerThread(labels_app(None, table, db=db)) as server:
        client = client_of(server.url, None, state_dir=state)
        client.create_session(seed=2)
        client.train(by_id, steps=1)
    commitment = client.label_table.commitment
    other = table.labels.flip(0)
    with pytest.raises(InputError, match="other labels"):
        create_app(labels=other, db=db)
    with ServerThread(labels_app(None, table, db=db)) as server:
        resumed = SplitClient.resume(state, url=server.url)
        assert resumed.label_table.commitment == commitment
        result = resumed.train(by_id, steps=STEPS)
        merged = merged_transcript(resumed.party.transcript, resumed.transcript_of_server())
    assert result.detected is None and result.steps == STEPS
    report = audit(merged)
    assert report.valid and report.proofs_verified == 3 * STEPS, report


def test_a_server_using_other_labels_is_caught_over_http(table_keys):
    _, by_id, table = vertical_split(TINY_SPEC, STEPS, seed=5, salt=TABLE_SALT)
    with ServerThread(labels_app(table_keys, table, malicious="server:wrong-labels")) as server:
        client = client_of(server.url, table_keys)
        client.create_session()
        result = client.train(by_id, steps=STEPS)
    assert result.detected is not None
    assert (result.detected.step, result.detected.detected_by) == (0, "client")
    assert "server_step" in result.detected.reason


@pytest.mark.parametrize("refuses", [False, True])
def test_a_server_using_other_labels_cannot_hide_when_challenged(table_keys, refuses):
    """audit:1: the cheating server's statement commits a step made with other labels than its
    table; challenged, it either tries to prove it (no proof against the committed table can
    be made) or answers every challenge with 503, as if busy. Both are tampering at step 0."""
    _, by_id, table = vertical_split(TINY_SPEC, STEPS, seed=5, salt=TABLE_SALT)
    app = labels_app(table_keys, table, malicious="server:wrong-labels")
    served = AnswerOnPath(app, "/prove", 503) if refuses else app
    with ServerThread(served) as server:
        client = client_of(server.url, table_keys, "audit:1", retry_seconds=1)
        client.create_session()
        result = client.train(by_id, steps=STEPS)
    assert result.detected is not None, "a challenged label cheat went through"
    assert (result.detected.step, result.detected.detected_by) == (0, "client")
    if refuses:
        assert served.answered and set(served.answered) == {503}
        assert "did not answer the challenge of its server_step of step 0" in \
            result.detected.reason


def test_a_shared_server_half_reads_one_table_for_every_client(table_keys):
    _, by_id, table = vertical_split(TINY_SPEC, STEPS, seed=9, salt=TABLE_SALT)
    app = labels_app(table_keys, table, shared_model=True)
    with ServerThread(app) as server:
        clients = [client_of(server.url, table_keys) for _ in range(2)]
        for i, client in enumerate(clients):
            client.create_session(seed=i)
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(lambda c: c.train(by_id, steps=STEPS), clients))
        chain = http.get(f"{server.url}/chain").json()
    assert all(r.detected is None and r.steps == STEPS for r in results)
    assert len(chain["entries"]) == 2 * STEPS
    commitments = {c.label_table.commitment for c in clients}
    assert len(commitments) == 1
    for client in clients:
        assert all(e.public["labelTable"] in commitments
                   for e in client.party.transcript.entries if e.kind == "server_step")


def test_train_with_server_labels_names_a_cheating_server(table_keys, tmp_path):
    """The train command's session (``run_training``) on a data file's rows, sent as ids: a
    server using other labels than its table is named with the step (the command exits 3 on
    this summary); the summary says who held the labels."""
    from splitverify.model.torch_io import Dataset
    from splitverify_client.training import run_training

    labelled, _, table = vertical_split(TINY_SPEC, STEPS, seed=12, salt=TABLE_SALT)
    rows = Dataset(torch.cat([x for x, _ in labelled]).double() / TINY_SPEC.quant.scale,
                   table.labels)
    app = labels_app(table_keys, table, malicious="server:wrong-labels")
    with ServerThread(app) as server:
        summary = run_training(server.url, STEPS, ProofMode.parse("every"), tmp_path,
                               lambda _done: None, circuits_for=lambda _s: table_keys,
                               spec=TINY_SPEC, dataset=rows, labels="server")
    assert summary["labels"] == "server" and summary["label_table"]["size"] == len(table.labels)
    assert (summary["detected"], summary["detected_step"], summary["detected_by"]) == (
        True, 0, "client")
    assert "server_step" in summary["reason"]


def test_serve_labels_killed_between_forward_and_backward_resumes(tmp_path):
    """`serve --labels FILE` as a process (its two-party key ceremony with the client), killed
    with SIGKILL after answering step 0's forward message and started again on the same
    database and file: the pending step (its ids, its table) and the session go on, every
    proof verifies and the transcript audits."""
    import numpy as np

    from splitverify_server.loopback import free_port
    from serve_process import ServeProcess, restart_after_forward

    _, by_id, table = vertical_split(TINY_SPEC, STEPS, seed=14, salt=TABLE_SALT)
    np.savez(tmp_path / "labels.npz", x=np.zeros((len(table.labels), 1)),
             y=table.labels.numpy())
    server = ServeProcess(tmp_path / "sessions.db", free_port(), "--labels",
                          str(tmp_path / "labels.npz")).start()
    restarts = []
    try:
        client = SplitClient(server.url, spec=TINY_SPEC, labels="server", retry_seconds=90,
                             transport=Interposer(after=restart_after_forward(server, 0,
                                                                              restarts)))
        client.create_session(seed=4)
        result = client.train(by_id, steps=STEPS)
        merged = merged_transcript(client.party.transcript, client.transcript_of_server())
    finally:
        server.kill()
    assert restarts == [0]
    assert result.detected is None and result.steps == STEPS
    assert merged.label_table == client.label_table.commitment
    report = audit(merged)
    assert report.valid and report.proofs_verified == 3 * STEPS, report


def test_demo_clients_with_server_labels_share_one_table(tmp_path):
    """``demo --clients 2 --labels server`` on RefNet (statements committed, none proven: no
    keys, fast): each client's rows go as ids into one committed table of the digits'
    labels; the shared chain links."""
    from splitverify.model import named_spec
    from splitverify_server.apps.demo import run_shared_demo

    summary = run_shared_demo(2, 2, ProofMode.parse("commit"), tmp_path,
                              progress=lambda _m: None, on_step=lambda _d: None,
                              spec=named_spec("refnet"), labels="server")
    assert summary["labels"] == "server" and not summary["detected"]
    assert summary["chain"]["entries"] == 4 and summary["chain"]["linked"]
    tables = {json.loads((tmp_path / f"client-{i}" / "transcript.json").read_text())[
        "label_table"] for i in range(2)}
    assert tables == {int(summary["label_table"]["commitment"])}
