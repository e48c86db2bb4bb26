"""SplitFed-V1's rounds over HTTP (issue 20 item 2: ``serve --shared-model`` with ``aggregate``,
``demo --clients K --aggregate every:R``), the tiny model, K = 2: an honest run with one round
averages, proves and publishes it, each client goes on from the average and both audits pass;
a wrong average is caught by each client (naming client and step); a restart between the two
halves of a round loses nothing; a client that skips the round is refused; bad ``--aggregate``
values exit 1 naming the flag."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from typer.testing import CliRunner

from splitverify.circuitgen import SplitCircuits
from splitverify.cli import app as cli
from splitverify.protocol import ProofMode
from splitverify_client import SplitClient
from splitverify_client.sdk import ServerError
from splitverify_server import create_app
from splitverify_server.apps.demo import run_shared_demo
from splitverify_server.loopback import ServerThread
from splitverify_server.rounds import RoundPlan

from conftest import TINY_SPEC, http
from split_cases import data_batches

pytestmark = pytest.mark.xdist_group("aggregate")


@pytest.fixture(scope="module")
def aggregate_keys(tiny_keys):
    """The tiny circuits' keys and the Aggregate circuit of 2 halves (both from the cache)."""
    circuits = SplitCircuits(TINY_SPEC, aggregate_clients=2)
    circuits.key("aggregate")
    return tiny_keys, circuits


@pytest.fixture(scope="module")
def honest_run(tmp_path_factory, aggregate_keys):
    """``demo --clients 2 --aggregate every:2 --steps 2``: one round, every proof."""
    out = tmp_path_factory.mktemp("aggregate-demo")
    summary = run_shared_demo(2, 2, ProofMode.parse("every"), out, progress=lambda _m: None,
                              on_step=lambda _d: None, spec=TINY_SPEC, aggregate_every=2)
    return out, summary


def test_an_honest_round_is_averaged_proven_and_audited(honest_run):
    out, summary = honest_run
    assert not summary["detected"] and summary["steps"] == 4
    assert summary["rounds"] == {"every": 2, "averaged": 1, "proven": 1,
                                 "adopted_per_client": [1, 1]}
    transcripts = [str(out / f"client-{i}" / "transcript.json") for i in range(2)]
    for transcript in transcripts:
        alone = CliRunner().invoke(cli, ["audit", transcript])
        assert alone.exit_code == 0, alone.output
        assert "averaged with other clients' in 1 rounds" in alone.output
        assert "key established from its signed ceremony" in alone.output
        assert "no recorded ceremony establishes" not in alone.output
    whole = CliRunner().invoke(cli, ["audit", "--chain", str(out / "chain.json"), *transcripts])
    assert whole.exit_code == 0, whole.output
    assert "1 round of averaged client halves" in whole.output
    assert "the server's contribution and 2 clients'" in whole.output
    assert "no recorded ceremony establishes" not in whole.output


@pytest.mark.parametrize("tamper, refusal", [
    ("drop", "signed contribution is missing"),
    ("resign", "is not signed by the identity it names")])
def test_a_ceremony_without_a_clients_own_contribution_fails_the_audits(honest_run, tmp_path,
                                                                       tamper, refusal):
    """The transcripts' ceremony record with client 1's contribution left out, or signed by
    another identity: client 1's transcript and ``audit --chain`` are refused."""
    import json

    from splitverify.identity import Identity
    from splitverify.keyorigin import sign_contribution

    out, _summary = honest_run
    transcripts = [json.loads((out / f"client-{i}" / "transcript.json").read_text())
                   for i in range(2)]
    left_out = transcripts[1]["identities"]["client"]
    names = []
    for i, data in enumerate(transcripts):
        record = data["aggregate_ceremony"]
        entry = next(c for c in record["contributions"] if c["name"] == left_out)
        if tamper == "drop":
            record["contributions"].remove(entry)
        else:
            entry["signature"] = sign_contribution(Identity.generate(), record["run"],
                                                   "aggregate", entry["index"], entry["name"],
                                                   entry["hash"])
        path = tmp_path / f"client-{i}.json"
        path.write_text(json.dumps(data))
        names.append(str(path))
    alone = CliRunner().invoke(cli, ["audit", names[1]])
    assert alone.exit_code != 0 and refusal in alone.output, alone.output
    whole = CliRunner().invoke(cli, ["audit", "--chain", str(out / "chain.json"), *names])
    assert whole.exit_code != 0 and "the aggregate key is refused" in whole.output, whole.output


def test_a_client_refuses_a_key_without_its_own_contribution(tmp_path, aggregate_keys):
    """The server's Aggregate key has the server's and client 0's contributions only: client
    0 goes on, client 1 stops at the round's step naming itself and the missing contribution."""
    from splitverify.aggregate_ceremony import client_contributes, server_begins
    from splitverify.identity import Identity

    keys, _aggregate = aggregate_keys
    server, identities = Identity.generate(), [Identity.generate(), Identity.generate()]
    aggregate = SplitCircuits(TINY_SPEC, aggregate_clients=2)
    ceremony = server_begins(aggregate, server, tmp_path / "ceremony")
    client_contributes(ceremony, identities[0])     # client 1 is left out
    record = ceremony.record()
    app = create_app(lambda _spec: keys, ceremony=False, shared_model=True, identity=server,
                     aggregate=RoundPlan(1, 2), aggregate_circuits_for=lambda _s, _k: aggregate)
    with ServerThread(app) as running:
        clients = [SplitClient(running.url, spec=TINY_SPEC, circuits_for=lambda _s: keys,
                               aggregate_every=1, aggregate_circuits=lambda _k: aggregate,
                               aggregate_ceremony=lambda _k: record, identity=identity)
                   for identity in identities]
        for seed, client in enumerate(clients):
            client.create_session(seed=seed)
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(lambda i: clients[i].train(
                data_batches(TINY_SPEC, 1, seed=60 + i), steps=1), range(2)))
    assert results[0].detected is None and clients[0].rounds_done == 1
    caught = results[1].detected
    assert caught is not None and (caught.step, caught.detected_by) == (0, "client")
    assert "aggregate key is refused" in caught.reason
    assert f"this client's ({identities[1].address}) signed contribution is missing" in \
        caught.reason


def test_the_chain_audit_refuses_a_changed_round(honest_run):
    import json

    from splitverify.shared_chain import audit_chain
    from splitverify.transcript import Transcript

    out, _summary = honest_run
    chain = json.loads((out / "chain.json").read_text())
    transcripts = [Transcript.load(out / f"client-{i}" / "transcript.json") for i in range(2)]
    (published,) = chain["rounds"]
    other = dict(chain, rounds=[{**published, "public": {**published["public"], "round": 1}}])
    assert "differs from" in audit_chain(other, transcripts).reason
    dropped = dict(chain, rounds=[])
    assert "not published" in audit_chain(dropped, transcripts).reason
    forged = bytearray.fromhex(published["proof"])
    forged[40] ^= 1
    bad_proof = dict(chain, rounds=[{**published, "proof": forged.hex()}])
    assert "does not verify" in audit_chain(bad_proof, transcripts).reason


def test_a_wrong_average_is_caught_by_each_client(tmp_path, aggregate_keys):
    summary = run_shared_demo(2, 3, ProofMode.parse("every"), tmp_path / "run",
                              progress=lambda _m: None, on_step=lambda _d: None,
                              spec=TINY_SPEC, aggregate_every=2, malicious="server:wrong-average")
    assert summary["detected"]
    assert [(d["client"], d["step"], d["detected_by"]) for d in summary["detections"]] == [
        (0, 1, "client"), (1, 1, "client")]
    assert all("Aggregate proof does not verify" in d["reason"] for d in summary["detections"])
    assert [row["steps"] for row in summary["per_client"]] == [2, 2]


def clients_of(url, keys, aggregate, states, every=1):
    return [SplitClient(url, spec=TINY_SPEC, circuits_for=lambda _s: keys,
                        aggregate_every=every, aggregate_circuits=lambda _k: aggregate,
                        state_dir=state) for state in states]


def test_a_restart_between_the_halves_of_a_round_loses_nothing(tmp_path, aggregate_keys):
    """Client 0 hands its half over, the server restarts, client 1 hands its own: the round
    averages both (client 0's half came back from the store), and both clients go on."""
    keys, aggregate = aggregate_keys
    db = tmp_path / "sessions.db"

    def server_app():
        return create_app(lambda _spec: keys, ceremony=False, db=db, shared_model=True,
                          aggregate=RoundPlan(1, 2),
                          aggregate_circuits_for=lambda _spec, _k: aggregate)

    states = [tmp_path / f"client{i}" for i in range(2)]
    with ServerThread(server_app()) as server:
        first, second = clients_of(server.url, keys, aggregate, states)
        first.create_session(seed=0)
        second.create_session(seed=1)
        first.round_wait_seconds = 0.5        # it waits for a half that does not come yet
        with pytest.raises(ServerError, match="did not average it"):
            first.train(data_batches(TINY_SPEC, 1, seed=30), steps=1)
        status = http.get(f"{server.url}/chain").json()
        assert status["rounds"] == []
        # the first client may not go on from its own half
        x, labels = data_batches(TINY_SPEC, 2, seed=30)[1]
        refused = first.http.post(f"{server.url}/sessions/{first.session_id}/forward",
                                  headers={"Authorization": f"Bearer {first.token}"},
                                  json=first.party.forward(1, x, labels).model_dump())
        assert refused.status_code == 425 and "round 0" in refused.json()["error"]
    with ServerThread(server_app()) as server:
        resumed = [SplitClient.resume(state, url=server.url, circuits_for=lambda _s: keys,
                                      aggregate_circuits=lambda _k: aggregate)
                   for state in states]
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(lambda i: resumed[i].train(
                data_batches(TINY_SPEC, 2, seed=30 + i), steps=2), range(2)))
        chain = http.get(f"{server.url}/chain").json()
    assert all(r.detected is None and r.steps == 2 for r in results)
    assert [r["round"] for r in chain["rounds"]] == [0, 1]
    assert [c.rounds_done for c in resumed] == [2, 2]
    # after the last round both clients hold the one average
    assert all((a == b).all() for la, lb in zip(*(c.party.params for c in resumed))
               for a, b in zip(la, lb))


@pytest.mark.parametrize("options, message", [
    (["--clients", "2", "--aggregate", "every:0"], "--aggregate 'every:0'"),
    (["--clients", "2", "--aggregate", "sometimes"], "use every:R"),
    (["--aggregate", "every:2"], "--clients K ≥ 2"),
    (["--clients", "2", "--aggregate", "every:2", "--proof-mode", "pipelined:2"],
     "not --proof-mode pipelined:2"),
    (["--clients", "2", "--aggregate", "every:2", "--proof-mode", "off"],
     "not --proof-mode off")])
def test_a_bad_aggregate_option_exits_1_naming_it(tmp_path, options, message):
    result = CliRunner().invoke(cli, ["demo", "--steps", "2", "--out", str(tmp_path / "o"),
                                      *options])
    assert result.exit_code == 1, result.output
    assert message in result.output


def test_refused_halves_change_nothing_and_a_false_half_stops_the_session(aggregate_keys):
    """A half that is not due, or not of the client half's shapes, is refused (422) and
    leaves the store as it was; a half that is not the session's last proven weights is
    tampering by the client (409, the session stops); a server without rounds has none."""
    from splitverify.protocol import params_to_lists

    keys, aggregate = aggregate_keys
    app = create_app(lambda _spec: keys, ceremony=False, shared_model=True,
                     aggregate=RoundPlan(2, 2), aggregate_circuits_for=lambda _s, _k: aggregate)
    with ServerThread(app) as server:
        (client,) = clients_of(server.url, keys, aggregate, [None], every=2)
        client.create_session(seed=0)            # asks for rounds every 2 steps
        client.aggregate_every = 0               # this test hands the halves over itself
        client.step(0, *data_batches(TINY_SPEC, 1, seed=50)[0])
        url = f"{server.url}/sessions/{client.session_id}/rounds"
        auth = {"Authorization": f"Bearer {client.token}"}
        half = {"session_id": client.session_id, "round": 0, "step": 0,
                "params": params_to_lists(client.party.params),
                "weights_salt": client.party.weights_salt}
        store = app.state.store
        before = store.load(client.session_id)
        not_due = http.post(f"{url}/half", json=half, headers=auth)
        assert not_due.status_code == 422 and "is not due" in not_due.json()["error"]
        assert http.post(f"{url}/half", json=half).status_code == 401
        assert http.get(f"{url}/0", headers=auth).status_code == 425
        client.step(1, *data_batches(TINY_SPEC, 2, seed=50)[1])
        shapes = http.post(f"{url}/half", json={**half, "step": 1, "params": [[[[1]], [1]]]},
                           headers=auth)
        assert shapes.status_code == 422 and "parameter shapes" in shapes.json()["error"]
        assert store.load_rounds() == ([], {})
        assert store.load(client.session_id).state == app.state.sessions[
            client.session_id].party.snapshot()
        false_half = http.post(f"{url}/half", json={**half, "step": 1}, headers=auth)
        assert false_half.status_code == 409
        assert "not the weights of its last proven step" in false_half.json()["reason"]
        assert before.stopped is None and store.load(client.session_id).stopped is not None
    with ServerThread(create_app(lambda _spec: keys, ceremony=False,
                                 shared_model=True)) as plain:
        other = SplitClient(plain.url, spec=TINY_SPEC, circuits_for=lambda _s: keys,
                            aggregate_every=2)
        with pytest.raises(ServerError, match="averages no client halves"):
            other.create_session(seed=0)
