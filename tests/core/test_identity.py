"""The parties' identities (splitverify.identity): signatures over the canonical encoding of a
statement, a contribution and a session's end; keys persisted with their owner's permissions;
and over HTTP: a session needs the client's address, a message with another party's signature
is tampering, a key upload whose contribution is not signed is refused, and a client refuses a
server contribution that its pinned identity did not sign."""

from __future__ import annotations

import stat

import httpx
import pytest

from splitverify.circuitgen import PUBLIC_SIGNALS
from splitverify_client import SplitClient
from splitverify_server.loopback import ServerThread
from splitverify.errors import InputError, SetupError
from splitverify.identity import (Identity, check_address, contribution_payload, end_payload,
                                  recover, signed_by, statement_payload)
from splitverify.circuitgen import SplitCircuits
from splitverify.keyexchange import client_contribute
from splitverify.keyorigin import sign_contribution
from splitverify.protocol import ProofMode, SessionCreate, random_field
from splitverify_server import create_app

from conftest import http, TINY_SPEC
from split_cases import data_batches

PUBLIC = {name: i + 1 for i, name in enumerate(PUBLIC_SIGNALS["client_forward"])}


def test_a_statement_signature_binds_every_field():
    me = Identity.generate()
    signature = me.sign_statement(7, 0, "client_forward", PUBLIC, "ab" * 256)
    assert signed_by(me.address, statement_payload(7, 0, "client_forward", PUBLIC, "ab" * 256),
                     signature)
    # the public values are encoded in the circuit's order, not the dict's
    reordered = dict(reversed(list(PUBLIC.items())))
    assert statement_payload(7, 0, "client_forward", reordered, None) == \
        statement_payload(7, 0, "client_forward", PUBLIC, None)
    changed = [
        statement_payload(8, 0, "client_forward", PUBLIC, "ab" * 256),        # session
        statement_payload(7, 1, "client_forward", PUBLIC, "ab" * 256),        # step
        statement_payload(7, 0, "client_forward", {**PUBLIC, "step": 9}, "ab" * 256),
        statement_payload(7, 0, "client_forward", PUBLIC, None),              # proof dropped
        contribution_payload(7, "client_forward", 1, "server", "ab"),
        end_payload(7, 0),
    ]
    for payload in changed:
        assert not signed_by(me.address, payload, signature)
    assert not signed_by(Identity.generate().address,
                         statement_payload(7, 0, "client_forward", PUBLIC, "ab" * 256), signature)
    assert recover(b"x", None) is None and recover(b"x", "zz") is None
    with pytest.raises(InputError, match="public inputs"):
        statement_payload(7, 0, "client_forward", {"step": 0}, None)


def test_an_identity_is_kept_private_and_reloaded(tmp_path):
    path = tmp_path / "server.identity"
    first = Identity.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Identity.load_or_create(path).address == first.address
    path.write_text("not a key")
    with pytest.raises(InputError, match="identity key"):
        Identity.load_or_create(path)
    assert check_address(first.address, "x") == first.address
    assert check_address(first.address.lower(), "x") == first.address
    # EIP-55's own example, then with one letter's case changed (a broken checksum)
    assert check_address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "x") == \
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
    for bad in ("0x5aaeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "0x12", None):
        with pytest.raises(InputError, match="not an Ethereum address"):
            check_address(bad, "the client's")


def test_http_messages_are_signed_and_checked(tiny_keys):
    keys = tiny_keys
    app = create_app(lambda _spec: keys, ceremony=False)
    with ServerThread(app) as thread:
        body = {"model": "layers", "batch": TINY_SPEC.batch, "proof_mode": "every",
                "client_layers": [[4, 3, True]], "server_layers": [[3, 2, False]],
                "initial_weights_commitment": random_field()}
        refused = http.post(f"{thread.url}/sessions", json=body)
        assert refused.status_code == 422 and "client_identity" in refused.json()["error"]

        client = SplitClient(thread.url, spec=TINY_SPEC, circuits_for=lambda _s: keys)
        client.create_session(seed=1)
        assert client.server_identity == app.state.identity.address
        party = app.state.sessions[client.session_id].party
        assert party.peer == client.identity.address
        (x, labels), = data_batches(TINY_SPEC, 1, 0)
        msg = client.party.forward(0, x, labels)
        assert signed_by(client.identity.address, statement_payload(
            client.session_id, 0, "client_forward", msg.public, msg.proof), msg.signature)
        # the same statement signed by someone else: tampering, the session stops
        forged = msg.model_copy(update={"signature": Identity.generate().sign_statement(
            client.session_id, 0, "client_forward", msg.public, msg.proof)})
        answer = http.post(f"{thread.url}/sessions/{client.session_id}/forward",
                           json=forged.model_dump(),
                           headers={"Authorization": f"Bearer {client.token}"})
    assert answer.status_code == 409, answer.text
    assert "not signed by the client's pinned identity" in answer.json()["reason"]


class StripSignature(httpx.HTTPTransport):
    """A server whose key answers carry no contribution signature."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.method == "GET" and "/keys/" in request.url.path:
            response.read()
            headers = {k: v for k, v in response.headers.items()
                       if k.lower() not in ("x-contribution-signature", "content-length",
                                            "content-encoding", "transfer-encoding")}
            return httpx.Response(response.status_code, headers=headers,
                                  content=response.content)
        return response


def test_the_ceremony_refuses_unsigned_contributions(isolated_cache, tmp_path):
    app = create_app()
    with ServerThread(app) as thread:
        client = SplitClient(thread.url, spec=TINY_SPEC, transport=StripSignature())
        with pytest.raises(SetupError, match="not signed by its pinned identity"):
            client.create_session(seed=1)
        # a client key whose contribution is signed by another identity than the pinned one
        pinned, other = Identity.generate(), Identity.generate()
        created = http.post(f"{thread.url}/sessions", json={
            **SessionCreate.of(TINY_SPEC, ProofMode.parse("every"), 0, random_field()).model_dump(),
            "client_identity": pinned.address}).json()
        sid, auth = created["session_id"], {"Authorization": f"Bearer {created['token']}"}
        url = f"{thread.url}/sessions/{sid}/keys/client_forward"
        theirs = http.get(url, headers=auth)
        key, mine = client_contribute(SplitCircuits(TINY_SPEC), "client_forward", theirs.content,
                                      theirs.headers["X-Contribution-Hash"], tmp_path)
        answers = [http.put(url, content=key.zkey.read_bytes(), headers={
            **auth, "X-Contribution-Hash": mine, "X-Contribution-Signature":
            sign_contribution(signer, sid, "client_forward", 2, "client", mine)})
            for signer in (other, pinned)]
    assert [a.status_code for a in answers] == [422, 200], [a.text for a in answers]
    assert "not signed (X-Contribution-Signature) by the client's pinned identity" in \
        answers[0].json()["error"]


def test_the_store_keeps_signatures_and_upgrades_an_older_database(tmp_path):
    import sqlite3

    from splitverify_server.store import SessionStore

    old = tmp_path / "old.db"
    with sqlite3.connect(old) as db:          # the entries table before entries were signed
        db.execute("CREATE TABLE entries (session_id TEXT NOT NULL, step INTEGER NOT NULL, "
                   "kind TEXT NOT NULL, public TEXT NOT NULL, proof TEXT, "
                   "PRIMARY KEY (session_id, step, kind))")
    store = SessionStore(old)
    entry = {"step": 0, "kind": "client_forward", "public": PUBLIC, "proof": None,
             "signature": "ab" * 65, "challenged": False}
    store.save(5, token_sha256="t", request={}, state={}, replies={}, keys={}, stopped=None,
               entries=[entry])
    (stored,) = SessionStore(old).load_all()
    assert stored.entries == [entry]


def test_a_state_folder_keeps_the_identity_it_was_made_with(tmp_path):
    """`train --identity` writes the key into a new state folder (a resumed session is the same
    party); the folder refuses another identity."""

    mine = Identity.generate()
    first = SplitClient("http://127.0.0.1:9", state_dir=tmp_path / "state", identity=mine)
    assert first.identity.address == mine.address
    assert SplitClient("http://127.0.0.1:9", state_dir=tmp_path / "state").identity.address \
        == mine.address
    with pytest.raises(InputError, match="belongs to identity"):
        SplitClient("http://127.0.0.1:9", state_dir=tmp_path / "state",
                    identity=Identity.generate())


def test_signatures_are_made_and_recovered_by_libsecp256k1():
    """The statements' signatures are on a step's critical path: eth-keys must use its C
    backend (coincurve), not its pure-Python one (~15 ms per signature or recovery), and the
    two agree on what a signature is."""
    from eth_keys.backends import CoinCurveECCBackend, NativeECCBackend, get_backend

    assert isinstance(get_backend(), CoinCurveECCBackend)
    from eth_keys import KeyAPI

    identity = Identity.generate()
    assert signed_by(identity.address, end_payload(7, 3), identity.sign(end_payload(7, 3)))
    digest = bytes(range(32))
    by_c, by_python = (KeyAPI(backend()).ecdsa_sign(digest, KeyAPI.PrivateKey(
        identity.private_key)) for backend in (CoinCurveECCBackend, NativeECCBackend))
    assert by_c == by_python
