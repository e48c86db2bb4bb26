"""One server half trained by several clients (``create_app(shared_model=True)``, ``serve
--shared-model``) over real HTTP, the tiny model: clients at once in threads make one linked
chain of ServerSteps; a server restart in the middle keeps it; each client's step starts from
the head the chain had when the server took it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from splitverify_client import SplitClient
from splitverify_client.sdk import ServerError
from splitverify_server import create_app
from splitverify_server.loopback import ServerThread
from splitverify.circuitgen import statements as st

from conftest import TINY_SPEC, http
from split_cases import data_batches

pytestmark = pytest.mark.xdist_group("sessions")


@pytest.fixture(scope="module")
def keys(tiny_circuits):
    for kind in ("client_forward", "server_step", "client_backward"):
        tiny_circuits.key(kind)
    return tiny_circuits


def shared_app(keys, db=":memory:"):
    # the operator's keys: the per-session ceremony is the same as without a shared model
    return create_app(lambda _spec: keys, ceremony=False, db=db, shared_model=True)


def client_of(url, keys, mode="every", **options):
    return SplitClient(url, spec=TINY_SPEC, proof_mode=mode, circuits_for=lambda _s: keys,
                       **options)


def assert_linked(chain: dict) -> None:
    """One sequence: indices 0..n-1, each entry starting where the one before ended."""
    entries = chain["entries"]
    assert [e["index"] for e in entries] == list(range(len(entries)))
    heads = [chain["initial_weights_commitment"]] + [e["weights_after"] for e in entries]
    assert [e["weights_before"] for e in entries] == heads[:-1]
    assert chain["head"] == heads[-1]


def server_steps(client: SplitClient) -> list[tuple[int, int, int]]:
    return [(e.step, e.public["weightsBefore"], e.public["weightsAfter"])
            for e in client.party.transcript.entries if e.kind == "server_step"]


def test_clients_at_once_train_one_chain(keys):
    app = shared_app(keys)
    with ServerThread(app) as server:
        clients = [client_of(server.url, keys) for _ in range(3)]
        for i, client in enumerate(clients):
            client.create_session(seed=i)

        def train(i):
            return clients[i].train(data_batches(TINY_SPEC, 3, seed=10 + i), steps=3)
        with ThreadPoolExecutor(3) as pool:
            results = list(pool.map(train, range(3)))
        chain = http.get(f"{server.url}/chain").json()
    assert all(r.detected is None and r.steps == 3 for r in results)
    assert len(chain["entries"]) == 9
    assert_linked(chain)
    for client in clients:
        # the client's ServerSteps are its session's chain entries, in its step order
        mine = [(e["step"], e["weights_before"], e["weights_after"]) for e in chain["entries"]
                if e["session"] == str(client.session_id)]
        assert mine == server_steps(client)
        assert client.party.verifier.verified == 3
    shared = app.state.service.shared
    assert chain["head"] == st.weights_commitment(TINY_SPEC, shared.params, shared.salt)


def test_audit_challenges_on_a_shared_chain(keys):
    """audit:1: each forward message is answered 428 and re-sent with its proof; the step the
    server then takes runs on the head as it is at the re-send (other clients' steps may have
    moved it), and the chain stays one sequence."""
    app = shared_app(keys)
    with ServerThread(app) as server:
        clients = [client_of(server.url, keys, "audit:1") for _ in range(2)]
        for i, client in enumerate(clients):
            client.create_session(seed=i)
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(lambda i: clients[i].train(
                data_batches(TINY_SPEC, 2, seed=60 + i), steps=2), range(2)))
        chain = http.get(f"{server.url}/chain").json()
    assert all(r.detected is None and r.steps == 2 for r in results)
    assert len(chain["entries"]) == 4
    assert_linked(chain)
    for client in clients:
        server_party = app.state.sessions[client.session_id].party
        assert server_party.verifier.verified == 4 and client.party.verifier.verified == 2


def test_restart_in_the_middle_keeps_the_chain(keys, tmp_path):
    db = tmp_path / "sessions.db"
    states = [tmp_path / f"client{i}" for i in range(2)]
    with ServerThread(shared_app(keys, db)) as server:
        clients = [client_of(server.url, keys, state_dir=states[i]) for i in range(2)]
        for i, client in enumerate(clients):
            client.create_session(seed=i)
        clients[0].train(data_batches(TINY_SPEC, 2, seed=20), steps=2)
        clients[1].train(data_batches(TINY_SPEC, 1, seed=21), steps=1)
        before = http.get(f"{server.url}/chain").json()
    assert len(before["entries"]) == 3
    with ServerThread(shared_app(keys, db)) as server:
        again = http.get(f"{server.url}/chain").json()
        assert again == before                 # nothing acknowledged lost or reordered
        resumed = [SplitClient.resume(states[i], url=server.url, circuits_for=lambda _s: keys)
                   for i in range(2)]
        with ThreadPoolExecutor(2) as pool:
            # each goes on to 4 steps (train skips the batches of the steps made)
            results = list(pool.map(lambda i: resumed[i].train(
                data_batches(TINY_SPEC, 4, seed=20 + i), steps=4), range(2)))
        after = http.get(f"{server.url}/chain").json()
    assert all(r.detected is None for r in results)
    assert after["entries"][:3] == before["entries"]
    assert len(after["entries"]) == 3 + 2 + 3
    assert_linked(after)


def test_a_proof_mode_that_cannot_join_is_refused(keys):
    with ServerThread(shared_app(keys)) as server:
        client = client_of(server.url, keys, mode="pipelined:2")
        with pytest.raises(ServerError, match="HTTP 422.*shared server half"):
            client.create_session(seed=0)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, tiny_circuits):
    """``demo --clients 3`` on the tiny model: three clients at once, each its own session and
    key ceremony, two steps each, every proof."""
    from splitverify.protocol import ProofMode
    from splitverify_server.apps.demo import run_shared_demo

    out = tmp_path_factory.mktemp("shared-demo")
    summary = run_shared_demo(3, 2, ProofMode.parse("every"), out, progress=lambda _m: None,
                              on_step=lambda _d: None, spec=TINY_SPEC)
    return out, summary


def test_demo_clients_make_one_chain_that_audits(demo_run):
    from typer.testing import CliRunner
    from splitverify.cli import app

    out, summary = demo_run
    assert not summary["detected"] and summary["steps"] == 6
    assert summary["chain"] == {**summary["chain"], "entries": 6, "linked": True}
    assert [row["steps"] for row in summary["per_client"]] == [2, 2, 2]
    transcripts = [str(out / f"client-{i}" / "transcript.json") for i in range(3)]
    result = CliRunner().invoke(app, ["audit", "--chain", str(out / "chain.json"),
                                      *transcripts])
    assert result.exit_code == 0, result.output
    assert "one chain of 6 ServerSteps from 3 client sessions" in result.output
    # one client's transcript alone audits too, and says what it cannot check by itself
    alone = CliRunner().invoke(app, ["audit", transcripts[0]])
    assert alone.exit_code == 0 and "shared with other clients" in alone.output


@pytest.mark.parametrize("change,reason", [
    ("dropped", "the chain is broken"), ("reordered", "the chain is broken"),
    # the last entry dropped leaves a linked chain: the transcripts show the step missing
    ("last dropped", "missing from the chain"),
    ("transcript missing", "no given transcript holds")])
def test_chain_audit_fails_on_a_changed_chain(demo_run, change, reason):
    from splitverify.shared_chain import audit_chain, load_chain
    from splitverify.transcript import Transcript

    out, _summary = demo_run
    chain = load_chain(out / "chain.json")
    transcripts = [Transcript.load(out / f"client-{i}" / "transcript.json") for i in range(3)]
    entries = chain["entries"]
    if change == "dropped":      # renumbered, so only the link and completeness can tell
        del entries[2]
        for i, entry in enumerate(entries):
            entry["index"] = i
    elif change == "reordered":
        entries[1], entries[2] = ({**entries[2], "index": 1}, {**entries[1], "index": 2})
    elif change == "last dropped":
        entries.pop()
        chain["head"] = entries[-1]["weights_after"]
    else:
        transcripts.pop()
    report = audit_chain(chain, transcripts)
    assert not report.valid
    assert reason in report.reason, report.reason


@pytest.mark.parametrize("mode", ["every", "commit"])
def test_a_forked_model_is_caught_by_the_client_it_serves(keys, mode):
    """server:forked-model serves each session from its step 1 on from a private copy of the
    weights and publishes only its step 0: the client served the fork catches it at step 1,
    before its backward message leaves (commitments alone suffice: the chain does not hold
    the step); the chain stays one linked sequence for everyone else."""
    app = create_app(lambda _spec: keys, ceremony=False, shared_model=True,
                     malicious="server:forked-model")
    with ServerThread(app) as server:
        clients = [client_of(server.url, keys, mode) for _ in range(2)]
        for i, client in enumerate(clients):
            client.create_session(seed=i)
        first = clients[0].train(data_batches(TINY_SPEC, 1, seed=40), steps=1)
        second = clients[1].train(data_batches(TINY_SPEC, 3, seed=41), steps=3)
        chain = http.get(f"{server.url}/chain").json()
    assert first.detected is None and first.steps == 1
    assert second.detected is not None
    assert (second.detected.step, second.detected.detected_by) == (1, "client")
    assert "forked model" in second.detected.reason
    assert second.steps == 1 and clients[1].detected is not None
    assert len(chain["entries"]) == 2
    assert_linked(chain)


def test_demo_clients_names_the_clients_a_forked_model_served(tmp_path, tiny_circuits):
    """``demo --clients 2 --malicious server:forked-model``: exit 3, each client served the
    fork named with the step it caught it at."""
    from typer.testing import CliRunner
    from splitverify.cli import app
    from splitverify.protocol import ProofMode
    from splitverify_server.apps.demo import run_shared_demo

    summary = run_shared_demo(2, 2, ProofMode.parse("commit"), tmp_path / "run",
                              progress=lambda _m: None, on_step=lambda _d: None,
                              spec=TINY_SPEC, malicious="server:forked-model")
    assert summary["detected"]
    assert [(d["client"], d["step"], d["detected_by"]) for d in summary["detections"]] == [
        (0, 1, "client"), (1, 1, "client")]
    assert summary["chain"]["entries"] == 2 and summary["chain"]["linked"]
    refused = CliRunner().invoke(app, ["demo", "--clients", "2", "--malicious",
                                       "client:replay", "--out", str(tmp_path / "no")])
    assert refused.exit_code != 0 and "client:replay is a client scenario" in refused.output


def test_server_killed_mid_step_keeps_the_chain(tmp_path):
    """`serve --shared-model` as a process, two clients at once (proof mode commit: the
    chain is one of commitments; the proven chain is the demo test's); the server is SIGKILLed after answering client 0's step-1 forward message (its
    ServerStep committed, the backward message not yet sent) and restarted on the same
    database: both sessions finish, the chain holds all 6 ServerSteps linked, and the whole run
    audits (chain + both transcripts)."""
    import json
    from splitverify_client.training import merged_transcript
    from splitverify_server.loopback import free_port
    from splitverify.shared_chain import audit_chain
    from splitverify.transcript import Transcript
    from conftest import Interposer
    from serve_process import ServeProcess, restart_after_forward

    server = ServeProcess(tmp_path / "shared.db", free_port(), "--shared-model").start()
    restarts = []

    restart_after_step_1_forward = restart_after_forward(server, 1, restarts)
    try:
        clients = [SplitClient(server.url, spec=TINY_SPEC, retry_seconds=120, proof_mode="commit",
                               transport=Interposer(after=restart_after_step_1_forward)
                               if i == 0 else None) for i in range(2)]
        for i, client in enumerate(clients):
            client.create_session(seed=i)
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(lambda i: clients[i].train(
                data_batches(TINY_SPEC, 3, seed=50 + i), steps=3), range(2)))
        chain = http.get(f"{server.url}/chain").json()
        merged = [merged_transcript(c.party.transcript,
                                    Transcript.model_validate(c.server_transcript()))
                  for c in clients]
    finally:
        server.kill()
    assert restarts == [1]
    assert all(r.detected is None and r.steps == 3 for r in results)
    assert len(chain["entries"]) == 6
    assert_linked(chain)
    report = audit_chain(chain, merged)
    assert report.valid, report.reason
