"""Hostile traffic against the server: bodies nested to any depth never crash it (the server as
a process); unauthenticated requests buy no expensive work (key uploads cut at the JSON limit,
a constraint budget checked before anything is compiled, a per-address creation rate); sessions
expire when idle and can be deleted, keys and all, also across a restart; refused uploads leave
nothing on disk and no server path in the answer; and a bounded flood on loopback (fixed rate,
fixed time) stays within the documented budget while an honest session completes. Tiny model."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from splitverify.circuitgen import KINDS
from splitverify_client import SplitClient
from splitverify_server.loopback import ServerThread, free_port
from splitverify.errors import SetupError, TamperDetected
from splitverify.keyexchange import client_contribute, server_contribute
from splitverify.identity import Identity
from splitverify.limits import Limits
from splitverify.protocol import GradientMessage, random_field
from splitverify_server import create_app
from splitverify_server.guard import CreationRate, largest_circuit, nesting_exceeds
from splitverify.zk.curve import R

from conftest import http, TINY_SPEC
from split_cases import data_batches
from serve_process import ServeProcess

pytestmark = pytest.mark.xdist_group("hostile")

TINY_LAYERS = {"model": "layers", "batch": TINY_SPEC.batch,
               "client_layers": [[d.n_in, d.n_out, d.relu] for d in TINY_SPEC.client],
               "server_layers": [[d.n_in, d.n_out, d.relu] for d in TINY_SPEC.server]}


def tiny(proof_mode: str) -> dict:
    """A raw session-creation body; sessions made this way never step, so the client's identity
    and its declared initial weights commitment (required unless the mode is off) are any."""
    body = {**TINY_LAYERS, "proof_mode": proof_mode}
    if proof_mode != "off":
        body.update(initial_weights_commitment=random_field(),
                    client_identity=Identity.generate().address)
    return body


def bearer(token: str, scheme: str = "Bearer") -> dict[str, str]:
    return {"Authorization": f"{scheme} {token}"}


def from_address(address: str) -> httpx.Client:
    """A client whose requests come from another loopback address (127.0.0.0/8 is all ours)."""
    return httpx.Client(timeout=600.0, transport=httpx.HTTPTransport(local_address=address))


# --- 1. nesting ----------------------------------------------------------------------------


def test_no_import_leaves_the_recursion_limit_raised():
    """py_ecc and py-evm raise Python's recursion limit when imported; the limit is what turns
    deep recursion into a RecursionError instead of a C-stack overflow."""
    script = ("import sys; before = sys.getrecursionlimit()\n"
              "import splitverify_server, splitverify.cli, splitverify_client\n"
              "import splitverify_client.training, splitverify_server.apps.demo\n"
              "import splitverify.ledger, splitverify.zk.pyecc_verifier, splitverify.ledger.sink\n"
              "from splitverify_server import create_app; create_app(ceremony=False)\n"
              "from splitverify.ledger.contract import _connect; _connect('embedded')\n"
              "print(before, sys.getrecursionlimit())")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    before, after = out.stdout.split()
    assert before == after == "1000"


def test_the_nesting_scanner_counts_brackets_outside_strings_only():
    assert not nesting_exceeds(b"[" * 32 + b"]" * 32, 32)
    assert nesting_exceeds(b"[" * 33 + b"]" * 33, 32)
    assert nesting_exceeds(b'{"a":' * 33 + b"1" + b"}" * 33, 32)
    assert nesting_exceeds(b"[{" * 17 + b"}]" * 17, 32)                   # 34 mixed levels
    assert not nesting_exceeds(b'{"s": "' + b"[" * 1000 + b'\\"[[["}', 2)   # inside a string
    assert not nesting_exceeds(b'{"a": [[1, 2], [3, [4]]], "b": {"c": []}}', 4)
    assert nesting_exceeds(b'{"a": [[1, 2], [3, [4]]], "b": {"c": []}}', 3)
    assert nesting_exceeds(b"[[]", 5) and nesting_exceeds(b"][", 5)        # unbalanced
    assert not nesting_exceeds(b"", 1) and not nesting_exceeds(b"12", 1)


def test_serve_survives_bodies_nested_to_a_million_levels_then_serves_an_honest_session(
        tmp_path):
    """`splitverify serve` as a process: bodies of depth 10^3 … 10^6 on every route, with and
    without the session's token, never crash it (JSON bodies are refused with 400, unparsed);
    the process is alive after each; then
    an honest tiny session (key ceremony, every proof) runs to the end."""
    server = ServeProcess(tmp_path / "sessions.db", free_port()).start()
    try:
        created = http.post(f"{server.url}/sessions", json=tiny("off")).json()
        sid, token = created["session_id"], created["token"]
        routes = [("POST", "/sessions")] + [
            ("POST", f"/sessions/{sid}/{kind}") for kind in ("forward", "backward", "prove",
                                                             "predict")] + [
            ("PUT", f"/sessions/{sid}/keys/client_forward"), ("GET", f"/sessions/{sid}"),
            ("DELETE", f"/sessions/{sid + 1}"), ("GET", f"/sessions/{sid}/transcript")]
        answers = {}
        for depth in (10 ** 3, 10 ** 4, 10 ** 5, 10 ** 6):
            body = b"[" * depth + b"]" * depth
            for method, path in routes:
                for auth in ({}, bearer(token)):
                    r = http.request(method, f"{server.url}{path}", content=body,
                                     headers={**auth, "content-type": "application/json"})
                    assert server.proc.poll() is None, f"died on {method} {path} at {depth}"
                    answers[(depth, method, path, bool(auth))] = r.status_code
        assert all(code < 500 for code in answers.values()), answers
        # a JSON body is refused unparsed (400); a GET ignores its body; a key is not JSON
        refused = {key: code for key, code in answers.items() if key[1] == "POST"}
        assert set(refused.values()) == {400}, refused
        assert all(400 <= code < 500 for key, code in answers.items() if key[1] == "PUT")

        client = SplitClient(server.url, spec=TINY_SPEC)
        client.create_session(seed=1)
        result = client.train(data_batches(TINY_SPEC, 2, seed=5), steps=2)
        assert result.detected is None and result.steps == 2
        assert client.party.verifier.verified == 2
    finally:
        server.kill()


# --- 2. no unauthenticated expensive work ---------------------------------------------------


def test_session_creation_is_rate_limited_per_source_address(tiny_circuits):
    app = create_app(lambda _spec: tiny_circuits, ceremony=False,
                     limits=Limits(client_sessions=2, client_window=60))
    with ServerThread(app) as thread, from_address("127.0.0.2") as other:
        codes = [http.post(f"{thread.url}/sessions", json=tiny("off")) for _ in range(3)]
        elsewhere = other.post(f"{thread.url}/sessions", json=tiny("off"))
    assert [r.status_code for r in codes] == [201, 201, 429]
    refused = codes[2]
    assert "127.0.0.1 has created 2 sessions in 60 s" in refused.json()["error"]
    assert "--client-sessions" in refused.json()["error"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert elsewhere.status_code == 201 and len(app.state.sessions) == 3


def test_the_creation_rate_is_a_sliding_window():
    now = [0.0]
    rate = CreationRate(2, 10, clock=lambda: now[0])
    assert rate.admit("a") == 0 and rate.admit("a") == 0 and rate.admit("b") == 0
    assert rate.admit("a") == pytest.approx(10)
    now[0] = 9.5
    assert rate.admit("a") == pytest.approx(0.5)
    now[0] = 10.5                            # both creations at 0 have left the window
    assert rate.admit("a") == 0 and rate.admit("a") == 0
    assert rate.admit("a") == pytest.approx(10)


def test_a_spec_past_the_constraint_budget_is_refused_before_anything_is_compiled(
        tiny_circuits):
    kind, constraints = largest_circuit(TINY_SPEC)
    asked = []

    def circuits_for(spec):
        asked.append(spec)
        return tiny_circuits
    app = create_app(circuits_for, ceremony=True, limits=Limits(constraints=constraints - 1))
    with ServerThread(app) as thread:
        refused = http.post(f"{thread.url}/sessions", json=tiny("every"))
        unproven = http.post(f"{thread.url}/sessions", json=tiny("off"))
    assert refused.status_code == 422
    assert f"{kind} circuit needs about {constraints:,} constraints" in refused.json()["error"]
    assert "--max-constraints" in refused.json()["error"]
    # without proofs there is nothing to set up: that session is made (its circuits are asked
    # for, as any session's; nothing is compiled until a proof is needed)
    assert unproven.status_code == 201 and len(asked) == 1
    # the default budget takes RefNet and refuses the largest model the other limits allow
    assert largest_circuit(TINY_SPEC.refnet())[1] <= Limits().constraints
    huge = {"model": "layers", "batch": 1024, "proof_mode": "every",
            "client_layers": [[1000, 1000, True]], "server_layers": [[1000, 2, False]],
            "initial_weights_commitment": random_field(),
            "client_identity": Identity.generate().address}
    with ServerThread(create_app(circuits_for, ceremony=True)) as thread:
        r = http.post(f"{thread.url}/sessions", json=huge)
    assert r.status_code == 422 and "constraints" in r.json()["error"] and len(asked) == 1


@pytest.fixture()
def ceremony_server(tiny_circuits, tmp_path):
    """A persisted server running the key ceremony, with small body limits."""
    def start(**limits):
        app = create_app(lambda _spec: tiny_circuits, db=tmp_path / "s.db", ceremony=True,
                         limits=Limits(**limits))
        return app, ServerThread(app)
    return start


def session_files(db_keys: Path) -> list[str]:
    return sorted(str(p.relative_to(db_keys)) for p in db_keys.rglob("*") if p.is_file())


def test_key_uploads_past_the_json_limit_need_the_token_and_refused_ones_leave_nothing(
        ceremony_server, tmp_path):
    app, thread = ceremony_server(body_bytes=1000, key_bytes=200_000)
    keys = tmp_path / "s.db.keys"
    with thread:
        made = http.post(f"{thread.url}/sessions", json=tiny("every")).json()
        url = f"{thread.url}/sessions/{made['session_id']}/keys/client_forward"
        before = session_files(keys)

        def chunked(size: int):              # no Content-Length: the server counts what it reads
            for _ in range(size // 10_000):
                yield b"k" * 10_000
        anonymous = http.put(url, content=chunked(100_000))
        wrong = http.put(url, content=chunked(100_000), headers=bearer("not-the-token"))
        declared = http.put(url, content=b"k" * 100_000)
        junk = http.put(url, content=chunked(100_000), headers=bearer(made["token"]))
        after = session_files(keys)
    assert anonymous.status_code == wrong.status_code == declared.status_code == 413
    assert "exceeds 1000 bytes (a key upload may be larger only with the session's bearer " \
        "token)" in anonymous.json()["error"]
    assert junk.status_code == 422 and "refused" in junk.json()["error"]
    assert "/" not in junk.json()["error"].replace("r/w", ""), junk.json()["error"]
    assert str(tmp_path) not in junk.text
    assert before == after and len(after) == len(KINDS)      # the server's three keys only


def test_delete_and_idle_expiry_remove_the_session_its_rows_and_its_keys(ceremony_server,
                                                                        tmp_path):
    idle = 6
    app, thread = ceremony_server(idle_seconds=idle)
    keys, db = tmp_path / "s.db.keys", tmp_path / "s.db"

    def rows() -> int:
        with sqlite3.connect(db) as con:
            return con.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]
    with thread:
        deleted = http.post(f"{thread.url}/sessions", json=tiny("every")).json()
        expired = http.post(f"{thread.url}/sessions", json=tiny("every")).json()
        last_request = time.monotonic()
        kept = http.post(f"{thread.url}/sessions", json=tiny("off")).json()
        assert deleted["idle_expiry_s"] == idle
        assert len(list(keys.iterdir())) == 2 and rows() == 3
        url = f"{thread.url}/sessions/{deleted['session_id']}"
        assert http.delete(url).status_code == 401
        assert http.delete(url, headers=bearer(kept["token"])).status_code == 403
        gone = http.delete(url, headers=bearer(deleted["token"], "bearer"))    # RFC 7235 case
        assert gone.status_code == 200 and gone.json() == {"session_id": deleted["session_id"],
                                                           "deleted": True}
        assert http.get(url, headers=bearer(deleted["token"])).status_code == 404
        assert not (keys / str(deleted["session_id"])).exists() and rows() == 2
        kept_url = f"{thread.url}/sessions/{kept['session_id']}"
        while time.monotonic() < last_request + idle + 1.5:     # requests keep a session alive
            status = http.get(kept_url, headers=bearer(kept["token"], "BEARER"))
            assert status.status_code == 200 and status.json()["idle_expiry_s"] == idle
            time.sleep(0.5)
        r = http.get(f"{thread.url}/sessions/{expired['session_id']}",
                     headers=bearer(expired["token"]))
        assert r.status_code == 404 and f"after {idle} s without a request" in r.json()["error"]
        assert list(keys.iterdir()) == [] and rows() == 1
        assert sorted(app.state.sessions) == [kept["session_id"]]
    app.state.store.close()
    time.sleep(1.5)                     # past the idle limit of the restarted server: it expired
    app, thread = ceremony_server(idle_seconds=1)
    assert app.state.sessions == {} and rows() == 0
    app.state.store.close()


def test_a_session_expiring_at_restart_keeps_the_ones_still_in_use(ceremony_server, tmp_path):
    app, thread = ceremony_server(idle_seconds=30)
    with thread:
        made = http.post(f"{thread.url}/sessions", json=tiny("off")).json()
    app.state.store.close()
    app, thread = ceremony_server(idle_seconds=30)
    with thread:
        r = http.get(f"{thread.url}/sessions/{made['session_id']}", headers=bearer(made["token"]))
    assert r.status_code == 200
    app.state.store.close()


# --- 3. smaller things ----------------------------------------------------------------------


def test_the_client_state_is_readable_by_its_owner_only(tiny_circuits, tmp_path):
    app = create_app(lambda _spec: tiny_circuits, ceremony=False)
    state = tmp_path / "run"
    with ServerThread(app) as thread:
        client = SplitClient(thread.url, spec=TINY_SPEC, proof_mode="off", state_dir=state)
        client.create_session()
        client.train(data_batches(TINY_SPEC, 1), steps=1)
    assert state.stat().st_mode & 0o777 == 0o700
    assert (state / "state.json").stat().st_mode & 0o777 == 0o600


def test_the_ceremony_error_says_when_only_the_contribution_hash_differs(tiny_circuits,
                                                                         tmp_path):
    key, announced = server_contribute(tiny_circuits, "client_forward", tmp_path / "server")
    other = "0" * len(announced)
    with pytest.raises(SetupError) as caught:
        client_contribute(tiny_circuits, "client_forward", key.zkey.read_bytes(), other,
                          tmp_path / "client")
    message = str(caught.value)
    assert f"server's contribution hash is {announced[:16]}…, expected {other[:16]}…" in message


def test_mismatch_messages_name_the_field_and_another_sessions_message(tiny_circuits):
    """proof_mode commit: statements without proofs, so each check is the statement's."""
    batches = data_batches(TINY_SPEC, 2, seed=8)
    app = create_app(lambda _spec: tiny_circuits, ceremony=False)
    with ServerThread(app) as thread:
        def started() -> SplitClient:
            client = SplitClient(thread.url, spec=TINY_SPEC, proof_mode="commit",
                                 circuits_for=lambda _s: tiny_circuits)
            client.create_session(seed=2)
            return client

        def post(client: SplitClient, kind: str, body: dict) -> httpx.Response:
            return http.post(f"{thread.url}/sessions/{client.session_id}/{kind}", json=body,
                             headers=bearer(client.token))

        def reason(client: SplitClient, kind: str, body: dict) -> str:
            r = post(client, kind, body)
            assert r.status_code == 409, r.text
            return r.json()["reason"]

        alice, bob, carol, dave = started(), started(), started(), started()
        forward = alice.party.forward(0, *batches[0]).model_dump()
        labels = reason(alice, "forward", {**forward,
                                           "labels": [1 - y for y in forward["labels"]]})
        reply = post(bob, "forward", bob.party.forward(0, *batches[0]).model_dump())
        backward = bob.party.receive_gradient(GradientMessage.model_validate(reply.json()),
                                              bob._server_proof).model_dump()
        assert post(carol, "forward", carol.party.forward(0, *batches[0]).model_dump()
                    ).status_code == 200
        session = reason(carol, "backward", backward)
        dave.step(0, *batches[0])
        second = dave.party.forward(1, *batches[1]).model_dump()
        weights = reason(dave, "forward", {**second, "public": {**second["public"],
                                                                 "weightsCommitment": 5}})
    assert labels == ("the client's statement differs in messageCommitment (the commitment to "
                      "the activations and labels sent)")
    assert session.startswith(f"the backward message is for session {bob.session_id}, not "
                              "this one")
    assert weights == "the client's statement differs in weightsCommitment (the weight chain)"


class LossPastTheField(httpx.HTTPTransport):
    """A cheating server, on the wire: its statement's loss is sent as loss + r."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if not request.url.path.endswith("/forward") or response.status_code != 200:
            return response
        body = json.loads(response.read())
        body["public"]["loss"] += R
        return httpx.Response(200, json=body)


def test_a_value_past_the_field_from_the_server_is_tampering_naming_the_field(tiny_circuits):
    app = create_app(lambda _spec: tiny_circuits, ceremony=False)
    with ServerThread(app) as thread:
        client = SplitClient(thread.url, spec=TINY_SPEC, proof_mode="commit",
                             circuits_for=lambda _s: tiny_circuits,
                             transport=LossPastTheField())
        client.create_session()
        result = client.train(data_batches(TINY_SPEC, 1), steps=1)
    assert isinstance(result.detected, TamperDetected)
    assert (result.detected.step, result.detected.detected_by) == (0, "client")
    assert "['loss'] outside the field" in result.detected.reason


# --- a bounded flood on loopback ------------------------------------------------------------


class ProcessGauge:
    """A process's CPU seconds and its peak resident memory (sampled every 50 ms), from /proc."""

    def __init__(self, pid: int):
        self.pid, self.peak_rss, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def rss(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"no VmRSS for process {self.pid}")

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak_rss = max(self.peak_rss, self.rss())

    def __enter__(self) -> "ProcessGauge":
        self.peak_rss = self.rss()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def disk_bytes(db: Path) -> int:
    """The server's files: the database (with its WAL) and the session keys."""
    files = [p for p in db.parent.glob(f"{db.name}*") if p.is_file()]
    files += [p for p in Path(f"{db}.keys").rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files)


def flood(request, address: str, rate: float, seconds: float) -> list:
    """``request(client)`` from ``address`` at a fixed rate for a fixed time, each in its own
    thread (a slow answer does not slow the flood); per request (the status code, or the
    transport error's name; when the answer came)."""
    answers, threads = [], []
    client = from_address(address)

    def one() -> None:
        try:
            answers.append((request(client).status_code, time.monotonic()))
        except httpx.TransportError as exc:          # a refused upload: the server hung up
            answers.append((type(exc).__name__, time.monotonic()))
    start = time.monotonic()
    for n in range(int(rate * seconds)):
        time.sleep(max(0.0, start + n / rate - time.monotonic()))
        threads.append(threading.Thread(target=one, daemon=True))
        threads[-1].start()
    for thread in threads:
        thread.join(timeout=600)
    client.close()
    return answers


def test_a_bounded_flood_stays_within_budget_while_an_honest_session_completes(tmp_path):
    """`splitverify serve` with 2 creations per address per minute, a 1 MB JSON limit, 30 s
    idle expiry and room for 6 sessions. For 4 s, two addresses flood POST /sessions (10/s
    each, every proof: a key ceremony apiece) and two flood unauthenticated 5 MB chunked key
    uploads (10/s each) while an honest client runs a 2-step session with every proof. The
    server admits 2 sessions per flooding address and refuses the rest (429, 413); its CPU,
    peak memory and disk stay within the budget those admissions allow; the honest session
    completes (and is deleted by its owner); once idle, every other session is removed, keys
    and rows, and new ones are made again."""
    db, idle = tmp_path / "sessions.db", 30
    server = ServeProcess(db, free_port(), "--client-sessions", "2", "--client-window", "60",
                          "--idle-timeout", str(idle), "--max-sessions", "6",
                          "--max-body", "1000000").start()
    try:
        gauge = ProcessGauge(server.proc.pid)
        disk_before, cpu_before = disk_bytes(db), gauge.cpu_seconds()
        with from_address("127.0.0.4") as probe_client:     # what one session costs
            probe = probe_client.post(f"{server.url}/sessions", json=tiny("every")).json()
        one_session_cpu = gauge.cpu_seconds() - cpu_before
        one_session_disk = disk_bytes(db) - disk_before
        key_url = f"{server.url}/sessions/{probe['session_id']}/keys/client_forward"

        def create(client: httpx.Client) -> httpx.Response:
            return client.post(f"{server.url}/sessions", json=tiny("every"))

        def upload(client: httpx.Client) -> httpx.Response:
            return client.put(key_url, content=(b"k" * 65536 for _ in range(80)))   # 5 MB

        floods = {"create@127.0.0.2": (create, "127.0.0.2"), "create@127.0.0.3": (create,
                                                                                  "127.0.0.3"),
                  "upload@127.0.0.5": (upload, "127.0.0.5"), "upload@127.0.0.6": (upload,
                                                                                  "127.0.0.6")}
        answers: dict[str, list] = {}
        disk_start, cpu_start, rss_start = disk_bytes(db), gauge.cpu_seconds(), gauge.rss()
        with gauge:
            flooders = [threading.Thread(target=lambda name=name, how=how: answers.__setitem__(
                name, flood(how[0], how[1], rate=10, seconds=4))) for name, how in floods.items()]
            for thread in flooders:
                thread.start()
            honest = SplitClient(server.url, spec=TINY_SPEC)
            honest.create_session(seed=3)
            result = honest.train(data_batches(TINY_SPEC, 2, seed=9), steps=2)
            status = honest.server_status()
            for thread in flooders:
                thread.join(timeout=600)
        cpu = gauge.cpu_seconds() - cpu_start
        disk = disk_bytes(db) - disk_start
        assert server.proc.poll() is None
        assert result.detected is None and result.steps == 2

        codes_of = {name: [code for code, _ in got] for name, got in answers.items()}
        created = sum(codes_of[name].count(201) for name in answers if name.startswith("create"))
        for name, codes in codes_of.items():
            assert len(codes) == 40, (name, codes)
            if name.startswith("create"):
                assert codes.count(201) == 2 and codes.count(429) == 38, (name, codes)
            else:
                assert all(code == 413 or isinstance(code, str) for code in codes), (name, codes)
        # the budget: what the admitted sessions (and the honest one) may cost, the honest
        # steps' proving and verifying, and 50 ms per refused request; memory: the refused
        # bodies are never held past the 1 MB limit; disk: the admitted sessions' keys
        honest_work = sum(map(sum, status["prove_s"].values())) + sum(
            map(sum, status["verify_s"].values()))
        cpu_budget = (created + 1) * one_session_cpu * 1.5 + 2 * honest_work + 0.05 * 160
        print(f"one session: {one_session_cpu:.2f} s CPU, {one_session_disk} B on disk; flood: "
              f"{cpu:.2f} s CPU (budget {cpu_budget:.2f}), RSS {rss_start / 2 ** 20:.0f} → peak "
              f"{gauge.peak_rss / 2 ** 20:.0f} MiB, disk +{disk} B; load {os.getloadavg()}")
        assert cpu <= cpu_budget
        assert gauge.peak_rss <= rss_start + (256 << 20)
        assert disk <= (created + 1) * one_session_disk * 1.5 + (1 << 20)

        honest.delete_session()
        assert not (Path(f"{db}.keys") / str(honest.session_id)).exists()
        last_made = max(when for got in answers.values() for code, when in got if code == 201)
        time.sleep(max(0.0, last_made + idle + 1.5 - time.monotonic()))
        http.get(f"{server.url}/sessions/1")             # any request sweeps the idle ones
        with sqlite3.connect(db) as con:
            assert con.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 0
        assert list(Path(f"{db}.keys").iterdir()) == []
        assert http.post(f"{server.url}/sessions", json=tiny("off")).status_code == 201
    finally:
        server.kill()
