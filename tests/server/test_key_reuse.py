"""Reusing a finished key ceremony between the same two identities (issue 19), over real HTTP
on the tiny model: the second session of a pair takes the first one's keys (no key is fetched
or uploaded; the server's record says where they came from) and both audit clean; another
identity, an offer the server does not hold, ``fresh_keys`` and a cached key whose bytes changed
each get a full ceremony; a transcript whose reused key is signed by another identity fails the
audit (exit 3)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from splitverify import keycache
from splitverify.cli import app as cli
from splitverify.circuitgen import KINDS
from splitverify.identity import Identity
from splitverify.keyexchange import initial
from splitverify.keyorigin import sign_contribution
from splitverify.protocol.wire import SessionCreate
from splitverify.transcript import Transcript, audit
from splitverify.zk.cache import ArtifactCache
from splitverify_client import SplitClient
from splitverify.protocol import ProofMode
from splitverify_client.training import key_ceremony_line, merged_transcript, run_training
from splitverify_server import create_app
from splitverify_server.loopback import ServerThread

from conftest import Interposer, TINY_SPEC, http
from split_cases import data_batches

pytestmark = pytest.mark.xdist_group("sessions")


def one_step(client: SplitClient) -> Transcript:
    """One proven step; the merged transcript of both sides."""
    result = client.train(data_batches(TINY_SPEC, 1, 0), steps=1)
    assert result.detected is None and result.steps == 1
    return merged_transcript(client.party.transcript, client.transcript_of_server())


class Requests(Interposer):
    """A real transport that remembers each request's method and path."""

    def __init__(self):
        super().__init__(before=lambda _n, request: self.seen.append(
            (request.method, request.url.path)))
        self.seen: list[tuple[str, str]] = []


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """A server and a client identity, their first session (a full ceremony) and their second
    (reused), each with one proven step."""
    server_id, client_id = Identity.generate(), Identity.generate()
    server_app = create_app(identity=server_id)
    with ServerThread(server_app) as thread:
        first = SplitClient(thread.url, spec=TINY_SPEC, identity=client_id)
        first.create_session(seed=1)
        first_transcript = one_step(first)
        seen = Requests()
        second = SplitClient(thread.url, spec=TINY_SPEC, identity=client_id, transport=seen)
        second.create_session(seed=2)
        second_transcript = one_step(second)
        yield {"app": server_app, "url": thread.url, "server": server_id, "client": client_id,
               "first": first, "second": second, "seen": seen.seen,
               "transcripts": (first_transcript, second_transcript),
               "tmp": tmp_path_factory.mktemp("reuse")}
    # this pair's cached keys are of no later use (the cache may be a developer's, kept)
    for manifest in (ArtifactCache().root / keycache.FOLDER).glob("*/manifest.json"):
        if json.loads(manifest.read_text())["server"] == server_id.address:
            shutil.rmtree(manifest.parent)


def test_second_session_reuses_the_first_ones_keys(pair):
    first, second = pair["first"], pair["second"]
    assert first.key_reuse["reused"] == {}
    assert second.key_reuse["reused"] == {kind: first.session_id for kind in KINDS}
    # no key was fetched or uploaded in the second session: its ceremony did not run
    assert not [path for _method, path in pair["seen"] if "/keys/" in path], pair["seen"]
    record = pair["app"].state.service.sessions[second.session_id]
    assert {kind: c.reused_from for kind, c in record.keys.items()} == {
        kind: first.session_id for kind in KINDS}
    assert {kind: c.blake2b for kind, c in record.keys.items()} == {
        kind: r["blake2b"] for kind, r in first.keys.items()}
    one, two = pair["transcripts"]
    assert two.verification_keys == one.verification_keys
    assert audit(one).valid
    report = audit(two)
    assert report.valid, report
    assert f"key reused from session {first.session_id}" in report.established, report


def test_reused_key_signed_by_another_identity_fails_the_audit(pair):
    _, two = pair["transcripts"]
    first_id = pair["first"].session_id
    forged = two.model_copy(deep=True)
    record = forged.ceremony["server_step"][0]
    # a valid signature of the same contribution for the origin session, by another identity
    record["signature"] = sign_contribution(Identity.generate(), first_id, "server_step", 1,
                                            "server", record["hash"])
    path = pair["tmp"] / "other_identity.json"
    forged.save(path)
    result = CliRunner().invoke(cli, ["audit", str(path)])
    assert result.exit_code == 3 and "server_step" in result.output, result.output
    # the origin session named must be the one the signatures were made for
    moved = two.model_copy(deep=True)
    moved.key_origin["client_forward"]["reused_from_session"] = first_id + 1
    assert not audit(moved).valid
    unmarked = two.model_copy(deep=True)
    del unmarked.key_origin["client_forward"]["reused_from_session"]
    assert not audit(unmarked).valid


def created(url: str, offers: dict, client: Identity, server: Identity) -> dict:
    """A raw session creation carrying ``offers`` (kind → [(blake2b, origin session)])."""
    body = SessionCreate.of(TINY_SPEC, "every", 0, 1, client_identity=client.address)
    body = body.model_dump(exclude_none=True)
    body["key_offers"] = {"server_identity": server.address, "keys": {
        kind: [{"blake2b": b, "origin_session": s} for b, s in pairs]
        for kind, pairs in offers.items()}}
    answer = http.post(f"{url}/sessions", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_offers_the_server_does_not_hold_run_the_ceremony(pair):
    first = pair["first"]
    held = {kind: [(r["blake2b"], first.session_id)] for kind, r in first.keys.items()}
    url = pair["url"]
    # another client identity offering the pair's real keys: not this pair's
    other = created(url, held, Identity.generate(), pair["server"])
    assert other["reused_keys"] == {} and set(other["key_reuse_declined"]) == set(KINDS)
    # the right identity, a blake2b the server never verified
    forged = created(url, {"server_step": [("0" * 128, first.session_id)]},
                     pair["client"], pair["server"])
    assert forged["reused_keys"] == {} and "server_step" in forged["key_reuse_declined"]
    # keys offered for another server identity
    elsewhere = created(url, held, pair["client"], Identity.generate())
    assert elsewhere["reused_keys"] == {} and "offered for server" in \
        elsewhere["key_reuse_declined"]["client_forward"]


def test_fresh_keys_and_changed_cache_bytes_run_the_ceremony(pair):
    first = pair["first"]
    url = pair["url"]
    fresh = SplitClient(url, spec=TINY_SPEC, identity=pair["client"],
                        fresh_keys=True)
    fresh.create_session(seed=3)
    assert fresh.key_reuse["reused"] == {} and "key_offers" not in fresh.request
    assert all(c.reused_from is None for c in
               pair["app"].state.service.sessions[fresh.session_id].keys.values())
    # the fresh ceremony replaced the pair's cached keys; change the server's copy of one
    circuits = fresh.party.prover.circuits
    entry = keycache.lookup(ArtifactCache(), "server", keycache.KeyPair.of(
        pair["server"].address, pair["client"].address,
        initial(circuits, "client_backward"), "client_backward"))
    assert entry.origin_session == fresh.session_id
    flip(entry.path)
    again = SplitClient(url, spec=TINY_SPEC, identity=pair["client"])
    again.create_session(seed=4)
    # refused by its blake2b (removed, not used): a fresh ceremony ran for that circuit
    assert set(again.key_reuse["reused"]) == {"client_forward", "server_step"}
    assert "blake2b" in again.key_reuse["declined"]["client_backward"]
    assert again.keys["client_backward"].get("reused_from") is None
    one_step(again)
    assert audit(merged_transcript(again.party.transcript,
                                   again.transcript_of_server())).valid
    # the client's own copy changed: not offered (removed), its ceremony runs
    mine = keycache.lookup(ArtifactCache(), "client", keycache.KeyPair.of(
        pair["server"].address, pair["client"].address, initial(circuits, "server_step"),
        "server_step"))
    flip(mine.path)
    third = SplitClient(url, spec=TINY_SPEC, identity=pair["client"])
    third.create_session(seed=5)
    assert "blake2b" in third.key_reuse["not_offered"]["server_step"]
    assert set(third.key_reuse["reused"]) == {"client_forward", "client_backward"}


def test_training_says_whether_the_ceremony_ran(pair, tmp_path):
    """What ``demo`` prints and summarizes (run_training with both identities known)."""
    lines = []
    summary = run_training(pair["url"], 1, ProofMode.parse("every"), tmp_path,
                           lambda _done: None, spec=TINY_SPEC, identity=pair["client"],
                           server_identity=pair["server"].address,
                           on_keys=lambda reuse: lines.append(key_ceremony_line(reuse)))
    assert lines[0].startswith("key ceremony: reused from an earlier session between the same "
                               "identities"), lines
    assert summary["key_ceremony"]["ceremony"] == [] and not summary["detected"]
    fresh = run_training(pair["url"], 1, ProofMode.parse("every"), tmp_path / "fresh",
                         lambda _done: None, spec=TINY_SPEC, identity=pair["client"],
                         server_identity=pair["server"].address, fresh_keys=True,
                         on_keys=lambda reuse: lines.append(key_ceremony_line(reuse)))
    assert lines[1].startswith("key ceremony: ran"), lines
    assert fresh["key_ceremony"] == {"reused_from": {}, "ceremony": list(KINDS),
                                     "declined": {}}


def flip(path: Path) -> None:
    """Change one byte of a file in place (through every hard link to it)."""
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
