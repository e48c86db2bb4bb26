"""Sessions that outlive a request: the two-party key ceremony over HTTP, SQLite persistence
(a server killed with SIGKILL and restarted resumes its session; the transcript audits clean),
messages re-sent after a lost answer, and `splitverify serve` / `train` as separate commands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from splitverify_client import SplitClient
from splitverify_client.training import merged_transcript
from splitverify_server.loopback import ServerThread, free_port
from splitverify.identity import Identity
from splitverify.keyexchange import initial
from splitverify.keyorigin import sign_contribution
from splitverify.protocol import GradientMessage, random_field
from splitverify_server import create_app
from splitverify.transcript import Transcript, audit
from splitverify.zk import phase2

from conftest import http, Interposer, TINY_SPEC
from serve_process import ServeProcess, restart_after_forward
from split_cases import data_batches, reference_weights, same_params


pytestmark = pytest.mark.xdist_group("sessions")


def test_server_killed_mid_step_and_restarted_resumes_the_session(tmp_path):
    """Keys from the two-party ceremony, 3 steps with every proof; the server is killed with
    SIGKILL after answering step 1's forward message and restarted on the same database:
    the session finishes, the weights equal the reference run's, the transcript audits clean."""
    batches = data_batches(TINY_SPEC, 3, seed=4)
    server = ServeProcess(tmp_path / "sessions.db", free_port()).start()
    restarts = []

    restart_after_step_1_forward = restart_after_forward(server, 1, restarts)
    try:
        client = SplitClient(server.url, spec=TINY_SPEC, retry_seconds=90,
                             transport=Interposer(after=restart_after_step_1_forward))
        client.create_session(seed=3)
        assert [c.name for c in client.party.prover.circuits.key("server_step").transcript] \
            == ["server", "client"]
        client.train(batches, steps=3)
        party = client.party
        status = client.server_status()
        merged = merged_transcript(party.transcript,
                                   Transcript.model_validate(client.server_transcript()))
    finally:
        server.kill()
    assert restarts == [1]
    assert status["next_step"] == 3 and status["stopped"] is None
    report = audit(merged)
    assert report.valid and report.proofs_verified == 9, report
    want_client, want_server = reference_weights(TINY_SPEC, 3, 3, batches)
    assert same_params(party.params, want_client)
    from splitverify_server.store import SessionStore
    checkpoints = SessionStore(tmp_path / "sessions.db").checkpoints(client.session_id)
    assert [step for step, _ in checkpoints] == [0, 1, 2]
    from splitverify.protocol import params_from_lists
    assert same_params(params_from_lists(checkpoints[-1][1]), want_server)


def test_server_killed_at_random_points_while_training(tmp_path):
    """A bounded loop of SIGKILLs at random moments (seeded) while a client trains 6 steps with
    every proof: each time the server restarts on its database and the client's retries carry
    the session on. No step is lost or applied twice (weights equal the reference run's, the
    server's checkpoints are steps 0..5 once each) and the transcript audits clean."""
    import random
    import threading

    steps, kills = 6, 3
    batches = data_batches(TINY_SPEC, steps, seed=9)
    server = ServeProcess(tmp_path / "sessions.db", free_port()).start()
    client = SplitClient(server.url, spec=TINY_SPEC, retry_seconds=120)
    client.create_session(seed=5)                 # the ceremony runs before the kills start
    done = threading.Event()
    survived = []

    def killer() -> None:
        # each kill waits for the client to reach a step drawn ahead of it, then a random moment
        # inside that step: bound to the training's progress, not to the machine's speed
        rng = random.Random(7)
        for k in range(kills):
            target = 2 * k + rng.randint(0, 1)
            while client.next_step < target:
                if done.wait(0.02):
                    return
            if done.wait(rng.uniform(0.0, 0.4)):
                return
            server.kill()
            server.start()
            survived.append(client.retries)

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        result = client.train(batches, steps=steps)
    finally:
        done.set()
        thread.join()
    try:
        status = client.server_status()
        merged = merged_transcript(client.party.transcript,
                                   Transcript.model_validate(client.server_transcript()))
    finally:
        server.kill()
    assert len(survived) >= 1, "no kill happened while training: the loop proves nothing"
    assert result.detected is None and result.steps == steps
    assert status["next_step"] == steps
    report = audit(merged)
    assert report.valid and report.proofs_verified == 3 * steps, report
    want_client, want_server = reference_weights(TINY_SPEC, steps, 5, batches)
    assert same_params(client.party.params, want_client)
    from splitverify.protocol import params_from_lists
    from splitverify_server.store import SessionStore
    checkpoints = SessionStore(tmp_path / "sessions.db").checkpoints(client.session_id)
    assert [step for step, _ in checkpoints] == list(range(steps))
    assert same_params(params_from_lists(checkpoints[-1][1]), want_server)


def test_client_killed_at_random_points_resumes_from_its_state(tmp_path):
    """A bounded loop of SIGKILLs of the client process (seeded): at its n-th HTTP request,
    just before it leaves, just after its answer arrived, or a random fraction of a second
    later (while it proves or saves). Each time the client restarts on its state folder and
    goes on; the ceremony and 4 steps with every proof finish. No step is lost or applied twice
    (both halves' weights equal the reference run's, the server's checkpoints are steps 0..3
    once each), the transcript audits clean."""
    import random

    steps, seed, data_seed = 4, 5, 9
    folder = tmp_path / "client"
    app = create_app(db=tmp_path / "server.db")
    worker = [sys.executable, str(Path(__file__).parents[1] / "client" / "client_process.py")]
    rng = random.Random(11)
    landed = []                       # (kill point, what the state folder held after it)

    def run(url: str, *kill_at: str) -> tuple[int, str]:
        proc = subprocess.run([*worker, url, str(folder), str(steps), str(seed),
                               str(data_seed), *kill_at], capture_output=True, text=True,
                              env=os.environ.copy(), timeout=600)
        return proc.returncode, proc.stdout + proc.stderr

    def held() -> str:
        state = json.loads((folder / "state.json").read_text())
        if state["transcript"] is None:
            return f"ceremony, {len(state['keys'])} keys made"
        outbox = state["outbox"]
        return (f"step {state['next_step']}, " +
                ("nothing in flight" if outbox is None else f"{outbox['kind']} in flight"))

    with ServerThread(app) as thread:
        # each kill comes within the client's next 1-2 requests (2-7 for the first process,
        # whose first requests are the ceremony's), so the loop cannot outrun the session
        for round_ in range(10):
            n = rng.randint(2, 7) if round_ == 0 else rng.randint(1, 2)
            when = rng.choice(("before", "after", f"after+{rng.uniform(0.0, 0.4):.2f}"))
            code, out = run(thread.url, str(n), when)
            if code == 0:
                break                 # the session finished before this kill
            assert code == -signal.SIGKILL, out
            landed.append((f"request {n} {when}", held()))
        code, out = run(thread.url)
        assert code == 0, out
        assert json.loads(out.strip().splitlines()[-1]) == {"steps": steps, "detected": False}
        client = SplitClient.resume(folder)
        status = client.server_status()
        merged = merged_transcript(client.party.transcript,
                                   Transcript.model_validate(client.server_transcript()))
        checkpoints = app.state.store.checkpoints(client.session_id)
    print("kill points survived:", *landed, sep="\n  ")
    assert len(landed) >= 5, landed
    assert any(where.startswith("ceremony") for _, where in landed), landed
    assert any("in flight" in where for _, where in landed), landed
    assert client.next_step == steps and client.outbox is None and status["next_step"] == steps
    report = audit(merged)
    assert report.valid and report.proofs_verified == 3 * steps, report
    want_client, want_server = reference_weights(
        TINY_SPEC, steps, seed, data_batches(TINY_SPEC, steps, seed=data_seed))
    assert same_params(client.party.params, want_client)
    from splitverify.protocol import params_from_lists
    assert [step for step, _ in checkpoints] == list(range(steps))
    assert same_params(params_from_lists(checkpoints[-1][1]), want_server)


def test_a_client_state_folder_is_used_for_one_session(tmp_path, tiny_keys):
    """A folder that holds a session is not overwritten by a new one; an empty or damaged
    folder cannot be resumed; each error says what to do."""
    from splitverify.errors import InputError
    app = create_app(lambda _spec: tiny_keys, ceremony=False)
    with ServerThread(app) as thread:
        client = SplitClient(thread.url, spec=TINY_SPEC, circuits_for=lambda _s: tiny_keys,
                             state_dir=tmp_path / "a")
        client.create_session(seed=1)
        again = SplitClient(thread.url, spec=TINY_SPEC, state_dir=tmp_path / "a")
        with pytest.raises(InputError, match="already holds session .*resume it"):
            again.create_session(seed=1)
        resumed = SplitClient.resume(tmp_path / "a", circuits_for=lambda _s: tiny_keys)
        assert (resumed.session_id, resumed.next_step) == (client.session_id, 0)
        # killed before the session was ready, on a server without a ceremony: no key requests
        saved = json.loads((tmp_path / "a" / "state.json").read_text())
        (tmp_path / "a" / "state.json").write_text(json.dumps({**saved, "transcript": None}))
        resumed = SplitClient.resume(tmp_path / "a", circuits_for=lambda _s: tiny_keys)
        assert resumed.party.transcript.session_id == client.session_id
    with pytest.raises(InputError, match="holds no client session"):
        SplitClient.resume(tmp_path / "empty")
    (tmp_path / "a" / "state.json").write_text('{"version": 1, "url": "http://x"}')
    with pytest.raises(InputError, match="lacks .*'token'"):
        SplitClient.resume(tmp_path / "a")
    (tmp_path / "a" / "state.json").write_text("{not json")
    with pytest.raises(InputError, match="not a readable client state"):
        SplitClient.resume(tmp_path / "a")
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError, match="is a file"):
        SplitClient(thread.url, state_dir=tmp_path / "file")


def test_a_message_resent_after_a_lost_answer_gets_the_same_answer(tiny_circuits):
    """A re-sent message (same step, same bytes) is answered again and applied once; an
    earlier step's message is still a replay."""
    app = create_app(lambda _spec: tiny_circuits, ceremony=False)
    batches = data_batches(TINY_SPEC, 2, seed=1)
    with ServerThread(app) as thread:
        client = SplitClient(thread.url, spec=TINY_SPEC, proof_mode="off")
        sid = client.create_session(seed=2)
        url, auth = f"{thread.url}/sessions/{sid}", {"Authorization": f"Bearer {client.token}"}
        forward = client.party.forward(0, *batches[0]).model_dump()
        first = http.post(f"{url}/forward", json=forward, headers=auth)
        again = http.post(f"{url}/forward", json=forward, headers=auth)
        assert first.status_code == again.status_code == 200
        assert first.json() == again.json()
        backward = client.party.receive_gradient(GradientMessage.model_validate(first.json()),
                                                 client._server_proof).model_dump()
        for _ in range(2):
            assert http.post(f"{url}/backward", json=backward, headers=auth).status_code == 200
        state = app.state.sessions[sid].party
        assert state.next_step == 1 and len(state.losses) == 1
        late = http.post(f"{url}/forward", json=forward, headers=auth)
        assert late.status_code == 409 and late.json()["detected_step"] == 1


def test_the_ceremony_refuses_keys_without_the_servers_contribution(tmp_path):
    """Steps wait for the ceremony (425); a key that skips the server's contribution, or a
    corrupted one, is refused (422) and the ceremony can still finish."""
    app = create_app(db=tmp_path / "s.db")
    me = Identity.generate()
    with ServerThread(app) as thread:
        created = http.post(f"{thread.url}/sessions", json={
            "model": "layers", "batch": TINY_SPEC.batch, "client_identity": me.address,
            "client_layers": [[d.n_in, d.n_out, d.relu] for d in TINY_SPEC.client],
            "server_layers": [[d.n_in, d.n_out, d.relu] for d in TINY_SPEC.server],
            "initial_weights_commitment": random_field()})   # no step is made here
        assert created.status_code == 201 and created.json()["ceremony"] is True
        info = created.json()
        url = f"{thread.url}/sessions/{info['session_id']}"
        auth = {"Authorization": f"Bearer {info['token']}"}
        early = http.post(f"{url}/backward", json={"session_id": info["session_id"],
                                                    "step": 0}, headers=auth)
        assert early.status_code == 425 and "ceremony" in early.json()["error"]
        session = app.state.sessions[info["session_id"]]
        circuits = session.party.prover.circuits
        own, own_hash = phase2.contribute(initial(circuits, "client_forward"), "client",
                                          tmp_path / "skip.zkey")
        signed = {**auth, "X-Contribution-Hash": own_hash,       # signed: refused for the key
                  "X-Contribution-Signature": sign_contribution(
                      me, info["session_id"], "client_forward", 2, "client", own_hash)}
        refused = http.put(f"{url}/keys/client_forward", content=own.zkey.read_bytes(),
                            headers=signed)
        assert refused.status_code == 422 and "refused" in refused.json()["error"]
        theirs = http.get(f"{url}/keys/client_forward", headers=auth)
        broken = bytearray(theirs.content)
        broken[len(broken) // 2] ^= 0x40
        refused = http.put(f"{url}/keys/client_forward", content=bytes(broken), headers=auth)
        assert refused.status_code == 422
        assert http.get(f"{url}/keys/nothing", headers=auth).status_code == 404
        assert http.get(f"{url}/keys/client_forward").status_code == 401
        assert session.keys["client_forward"].final is None


def test_train_command_against_a_running_server(tmp_path):
    """`splitverify train` is the client of any server: here one on loopback, proofs off. With
    `--state` the same command run again resumes the session (here: 2 steps, then up to 3)."""
    app = create_app()
    state = tmp_path / "state"

    def train(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "splitverify", "train", "--server",
                               thread.url, "--out", str(tmp_path), *args],
                              capture_output=True, text=True, timeout=timeout)
    with ServerThread(app) as thread:
        first = train("--steps", "2", "--proof-mode", "off", "--state", str(state))
        assert first.returncode == 0, first.stdout + first.stderr
        proc = train("--steps", "3", "--proof-mode", "off", "--state", str(state))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        other = train("--steps", "3", "--proof-mode", "commit", "--state", str(state))
        bad = train("--malicious", "server:skip-update", timeout=120)
        sessions = len(app.state.sessions)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["steps"] == 3 and summary["detected"] is False
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    assert json.loads((state / "state.json").read_text())["next_step"] == 3
    assert sessions == 1                         # the second run resumed the first's session
    said = " ".join((other.stdout + other.stderr).split())      # rich wraps long lines
    assert other.returncode == 1 and "holds session" in said and "proof mode off" in said
    assert bad.returncode == 1 and "server scenario" in bad.stdout + bad.stderr
