"""The server under clients that push: its limits (each refused with a 4xx naming it), sessions
isolated from one another (tokens, concurrent training), and messages replayed from another
session or another step (409 with the reason). Tiny model, the operator's shared tiny keys."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import httpx
import pytest

from splitverify_client import SplitClient
from splitverify_server.loopback import ServerThread
from splitverify.identity import Identity
from splitverify.limits import Limits
from splitverify.protocol import GradientMessage, ProofMode, SessionCreate
from splitverify_server import create_app

from conftest import http, TINY_SPEC
from split_cases import data_batches, reference_weights, same_params

pytestmark = pytest.mark.xdist_group("api")

TINY_LAYERS = {"model": "layers", "batch": TINY_SPEC.batch, "proof_mode": "off",
               "client_layers": [[d.n_in, d.n_out, d.relu] for d in TINY_SPEC.client],
               "server_layers": [[d.n_in, d.n_out, d.relu] for d in TINY_SPEC.server]}


def serve(circuits, limits: Limits = Limits()) -> tuple:
    app = create_app(lambda _spec: circuits, ceremony=False, limits=limits)
    return app, ServerThread(app)


def bearer(client: SplitClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {client.token}"}


def signed(client: SplitClient, msg: dict, kind: str = "client_forward") -> dict:
    """``msg`` signed by ``client``: the cheater is the session's own client and signs what it
    sends, so only the check under test can refuse it."""
    return {**msg, "signature": client.identity.sign_statement(
        client.session_id, msg["step"], kind, msg["public"], msg["proof"])}


# --- limits -------------------------------------------------------------------------------------


def test_models_past_the_dimension_or_parameter_limit_are_refused(tiny_circuits):
    app, thread = serve(tiny_circuits, Limits(dim=8, params=40))
    with thread:
        def create(**changes) -> httpx.Response:
            return http.post(f"{thread.url}/sessions", json={**TINY_LAYERS, **changes})

        assert create().status_code == 201                      # 4·3+3 + 3·2+2 = 23 parameters
        wide = create(client_layers=[[4, 9, True]], server_layers=[[9, 2, False]])
        assert wide.status_code == 422 and "≤ 8" in wide.json()["error"]
        batch = create(batch=9)
        assert batch.status_code == 422 and "≤ 8" in batch.json()["error"]
        huge = create(client_layers=[[4, 10 ** 12, True]], server_layers=[[10 ** 12, 2, False]])
        assert huge.status_code == 422 and "dimension limit" in huge.json()["error"]
        deep = create(client_layers=[[4, 4, True]] * 3 + [[4, 3, True]])   # 20+20+20+15+8
        assert deep.status_code == 422 and "83 parameters" in deep.json()["error"]
        assert create(model="refnet").status_code == 422                  # 64 > 8
        assert len(app.state.sessions) == 1


def test_sessions_past_the_limit_are_refused_with_429(tiny_circuits):
    app, thread = serve(tiny_circuits, Limits(sessions=2))
    with thread:
        codes = [http.post(f"{thread.url}/sessions", json=TINY_LAYERS).status_code
                 for _ in range(3)]
        full = http.post(f"{thread.url}/sessions", json=TINY_LAYERS)
    assert codes == [201, 201, 429]
    assert "limit of 2 sessions" in full.json()["error"] and len(app.state.sessions) == 2


def test_steps_past_the_limit_are_refused_and_change_nothing(tiny_circuits):
    app, thread = serve(tiny_circuits, Limits(steps=2))
    batches = data_batches(TINY_SPEC, 3, seed=2)
    with thread:
        client = SplitClient(thread.url, spec=TINY_SPEC, proof_mode="off")
        sid = client.create_session(seed=1)
        client.train(batches, steps=2)
        third = client.party.forward(2, *batches[2]).model_dump()
        refused = http.post(f"{thread.url}/sessions/{sid}/forward", json=third,
                             headers=bearer(client))
    assert refused.status_code == 422 and "2 steps" in refused.json()["error"]
    assert app.state.sessions[sid].party.next_step == 2
    assert app.state.sessions[sid].stopped is None


def test_bodies_past_the_limits_are_refused_with_413_with_or_without_a_length(tiny_circuits):
    app, thread = serve(tiny_circuits, Limits(body_bytes=1000, key_bytes=2000))
    with thread:
        client = SplitClient(thread.url, spec=TINY_SPEC, proof_mode="off")
        sid = client.create_session()
        url, auth = f"{thread.url}/sessions/{sid}", bearer(client)
        json_headers = {**auth, "content-type": "application/json"}

        def chunked(size: int):                 # no Content-Length: the limit counts bytes read
            yield b" " * (size - 2)
            yield b"{}"

        sized = http.post(f"{url}/forward", content=b" " * 1001, headers=json_headers)
        streamed = http.post(f"{url}/forward", content=chunked(1001), headers=json_headers)
        small = http.post(f"{url}/forward", content=chunked(500), headers=json_headers)
        key_ok = http.put(f"{url}/keys/client_forward", content=b"k" * 1500, headers=auth)
        key_big = http.put(f"{url}/keys/client_forward", content=chunked(2001), headers=auth)
    assert sized.status_code == streamed.status_code == key_big.status_code == 413
    assert "exceeds" in streamed.json()["error"]
    assert small.status_code == 422            # read whole and parsed: {} is not a message
    assert key_ok.status_code == 404           # under the key limit; no ceremony here


def test_a_proof_of_any_length_but_256_bytes_or_not_hex_is_tampering(tiny_keys):
    """The proof-size check is Proof.from_bytes: exactly 256 bytes, or 409 'malformed'."""
    app, thread = serve(tiny_keys)
    batches = data_batches(TINY_SPEC, 1)
    with thread:
        reasons = []
        for proof in ("00" * 255, "00" * 257, "zz" * 256, "00" * 100_000):
            client = SplitClient(thread.url, spec=TINY_SPEC, circuits_for=lambda _s: tiny_keys)
            sid = client.create_session()
            good = client.party.forward(0, *batches[0]).model_dump()
            r = http.post(f"{thread.url}/sessions/{sid}/forward",
                          json=signed(client, {**good, "proof": proof}), headers=bearer(client))
            reasons.append((r.status_code, r.json().get("reason", r.json()["error"])))
    assert [code for code, _ in reasons] == [409, 409, 409, 409], reasons
    assert all("malformed" in reason for _, reason in reasons), reasons


# --- isolation ----------------------------------------------------------------------------------


def test_a_sessions_token_opens_no_other_session(tiny_keys):
    app, thread = serve(tiny_keys)
    with thread:
        alice = SplitClient(thread.url, spec=TINY_SPEC, proof_mode="off")
        bob = SplitClient(thread.url, spec=TINY_SPEC, proof_mode="off")
        alice.create_session(seed=1)
        bob.create_session(seed=2)
        forward = bob.party.forward(0, *data_batches(TINY_SPEC, 1)[0]).model_dump()
        url, auth = f"{thread.url}/sessions/{bob.session_id}", bearer(alice)
        answers = {
            "status": http.get(url, headers=auth),
            "transcript": http.get(f"{url}/transcript", headers=auth),
            "forward": http.post(f"{url}/forward", json=forward, headers=auth),
            "backward": http.post(f"{url}/backward", json={"session_id": bob.session_id,
                                                            "step": 0}, headers=auth),
            "prove": http.post(f"{url}/prove", json={"kind": "server_step", "step": 0},
                                headers=auth),
            "predict": http.post(f"{url}/predict", json={"activations": [[0, 0, 0]]},
                                  headers=auth),
            "get key": http.get(f"{url}/keys/client_forward", headers=auth),
            "put key": http.put(f"{url}/keys/client_forward", content=b"key", headers=auth),
        }
        assert {name: r.status_code for name, r in answers.items()} == \
            {name: 403 for name in answers}
        assert bob.server_status()["next_step"] == 0 and bob.server_status()["losses"] == []


@pytest.mark.parametrize("mode,clients,steps", [("off", 4, 3), ("every", 2, 2)])
def test_concurrent_sessions_train_as_if_alone(tiny_keys, mode, clients, steps):
    """Several clients train at once, one session each, on one server: every session ends
    with exactly the weights of a sequential run from the integer reference."""
    app, thread = serve(tiny_keys)
    data = {seed: data_batches(TINY_SPEC, steps, seed=10 + seed) for seed in range(clients)}
    results, failures = {}, []

    def train(seed: int) -> None:
        try:
            client = SplitClient(thread.url, spec=TINY_SPEC, proof_mode=mode,
                                 circuits_for=lambda _s: tiny_keys)
            client.create_session(seed=seed)
            results[seed] = (client, client.train(data[seed], steps=steps))
        except Exception as exc:                 # reported below, with the seed that failed
            failures.append((seed, exc))

    with thread:
        workers = [threading.Thread(target=train, args=(seed,)) for seed in range(clients)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=600)
    assert not failures, failures
    hung = [seed for seed, worker in enumerate(workers) if worker.is_alive()]
    assert not hung and sorted(results) == list(range(clients)), f"clients {hung} never finished"
    for seed, (client, result) in results.items():
        assert result.detected is None and result.steps == steps
        want_client, want_server = reference_weights(TINY_SPEC, steps, seed, data[seed])
        assert same_params(client.party.params, want_client), seed
        assert same_params(app.state.sessions[client.session_id].party.params, want_server), seed
        if mode == "every":
            assert app.state.sessions[client.session_id].party.verifier.verified == 2 * steps


# --- replay -------------------------------------------------------------------------------------


def honest_session(url: str, circuits, seed: int) -> SplitClient:
    client = SplitClient(url, spec=TINY_SPEC, circuits_for=lambda _s: circuits)
    client.create_session(seed=seed)
    return client


def post(client: SplitClient, kind: str, body: dict) -> httpx.Response:
    return http.post(f"{client.url}/sessions/{client.session_id}/{kind}", json=body,
                      headers=bearer(client))


def relabelled(msg: dict, session_id: int | None = None, step: int | None = None,
               statement_too: bool = False) -> dict:
    """``msg`` claiming another session or step; with ``statement_too`` its public statement
    claims it as well (then only the proof, bound to the original, can tell)."""
    out = dict(msg)
    public = dict(msg["public"])
    if session_id is not None:
        out["session_id"] = session_id
        public["session"] = session_id
    if step is not None:
        out["step"] = step
        public["step"] = step
    if statement_too:
        out["public"] = public
    return out


def test_messages_replayed_into_another_session_are_rejected(tiny_keys):
    """Session A's step-0 forward message (with its proof) sent to session B at step 0:
    as it is, naming B, and naming B in its statement too. Each stops B with a 409. B declares
    A's initial weights commitment, so only the proof (bound to A's session) can tell the
    last variant."""
    batches = data_batches(TINY_SPEC, 1, seed=6)
    app, thread = serve(tiny_keys)
    with thread:
        alice = honest_session(thread.url, tiny_keys, seed=1)
        stolen = alice.party.forward(0, *batches[0]).model_dump()
        rejected = {}
        for variant in ("as sent", "naming B", "naming B in the statement"):
            identity = Identity.generate()                   # B's client: the cheater
            created = http.post(f"{thread.url}/sessions", json=SessionCreate.of(
                TINY_SPEC, ProofMode.parse("every"), 1, alice.initial_weights_commitment,
                client_identity=identity.address).model_dump()).json()   # same weights as A
            bob = SimpleNamespace(url=thread.url, session_id=created["session_id"],
                                  token=created["token"], identity=identity)
            replay = {"as sent": stolen,
                      "naming B": relabelled(stolen, session_id=bob.session_id),
                      "naming B in the statement": signed(bob, relabelled(
                          stolen, session_id=bob.session_id, statement_too=True))}[variant]
            r = post(bob, "forward", replay)
            rejected[variant] = (r.status_code, r.json().get("reason"))
            assert app.state.sessions[bob.session_id].party.losses == []
        assert post(alice, "forward", stolen).status_code == 200     # A itself is unharmed
    assert {v: code for v, (code, _) in rejected.items()} == dict.fromkeys(rejected, 409)
    assert "session" in rejected["as sent"][1]
    assert "differs in session (the session id)" in rejected["naming B"][1]
    assert "does not verify" in rejected["naming B in the statement"][1]


def test_messages_replayed_into_a_later_step_are_rejected(tiny_keys):
    """Step 0's messages (and proofs) sent again at step 1 or 2: the forward message as it
    is, claiming the later step, and claiming it in its statement too; the backward message
    as it is. Each is a 409 with the reason, and the session stops at that step."""
    batches = data_batches(TINY_SPEC, 3, seed=7)
    app, thread = serve(tiny_keys)
    rejected = {}
    with thread:
        for variant, k in (("forward as sent", 1), ("forward claiming t+k", 2),
                           ("forward, statement claiming t+k", 1), ("backward as sent", 1)):
            client = honest_session(thread.url, tiny_keys, seed=3)
            party = client.party
            forward = party.forward(0, *batches[0])
            gradient = GradientMessage.model_validate(post(client, "forward",
                                                           forward.model_dump()).json())
            backward = party.receive_gradient(gradient, client._server_proof).model_dump()
            assert post(client, "backward", backward).status_code == 200
            client.next_step = 1                # step 0 went by hand, to keep its messages
            for step in range(1, k):
                client.step(step, *batches[step])
            old = forward.model_dump()
            if variant.startswith("backward"):
                fresh = party.forward(k, *batches[k]).model_dump()
                assert post(client, "forward", fresh).status_code == 200
                r = post(client, "backward", backward)
            else:
                r = post(client, "forward", {
                    "forward as sent": old,
                    "forward claiming t+k": relabelled(old, step=k),
                    "forward, statement claiming t+k": relabelled(old, step=k,
                                                                  statement_too=True)}[variant])
            rejected[variant] = (r.status_code, r.json().get("detected_step"),
                                 r.json().get("reason"))
            assert app.state.sessions[client.session_id].party.next_step == k
    assert {v: (code, step) for v, (code, step, _) in rejected.items()} == {
        "forward as sent": (409, 1), "forward claiming t+k": (409, 2),
        "forward, statement claiming t+k": (409, 1), "backward as sent": (409, 1)}
    assert "replay" in rejected["forward as sent"][2]
    assert "differs in" in rejected["forward claiming t+k"][2] and \
        "step (the step)" in rejected["forward claiming t+k"][2]
    assert "differs in" in rejected["forward, statement claiming t+k"][2] or \
        "does not verify" in rejected["forward, statement claiming t+k"][2]
    assert "for step 0" in rejected["backward as sent"][2]
