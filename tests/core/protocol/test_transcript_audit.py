"""The offline audit (`splitverify audit`) establishes the keys before it trusts a proof, checks
every signature and the proof mode's promises, and refuses forged transcripts (issue 13 §2).

Two honest sessions of the tiny model run over real HTTP with the two-party key ceremony; the
forgeries are made from their transcripts as an attacker holding them would, and each is
audited through the CLI (typer's runner): exit 3, naming the key or the step and what failed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from splitverify import zk
from splitverify.circuitgen import SplitCircuits
from splitverify.cli import app as cli
from splitverify_client import SplitClient
from splitverify_client.training import merged_transcript
from splitverify_server.loopback import ServerThread
from splitverify.identity import Identity
from splitverify.keyexchange import local_ceremony
from splitverify.keyorigin import ceremony_record
from splitverify_server import create_app
from splitverify.transcript import SENDER, Transcript
from splitverify.zk.curve import R

from conftest import TINY_SPEC
from split_cases import data_batches


@dataclass
class Sessions:
    every: Path            # 2 steps, proof mode every
    other: Path            # another session of the same server, 1 step
    audited: Path          # 2 steps, proof mode audit:0.5
    committed: Path        # 1 step, proof mode commit
    client: Identity       # the first session's client
    server: Identity


def _session(url: str, seed: int, steps: int, out: Path, mode: str = "every"
             ) -> tuple[Path, SplitClient]:
    client = SplitClient(url, spec=TINY_SPEC, proof_mode=mode)
    client.create_session(seed=seed)
    result = client.train(data_batches(TINY_SPEC, steps, seed), steps=steps)
    assert result.detected is None and result.steps == steps
    merged = merged_transcript(client.party.transcript,
                               Transcript.model_validate(client.server_transcript()))
    return merged.save(out), client


@pytest.fixture(scope="module")
def sessions(tmp_path_factory, isolated_cache) -> Sessions:
    out = tmp_path_factory.mktemp("audit")
    app = create_app()                     # the two-party ceremony for each session
    with ServerThread(app) as thread:
        every, client = _session(thread.url, 1, 2, out / "every.json")
        other, _ = _session(thread.url, 2, 1, out / "other.json")
        audited, _ = _session(thread.url, 3, 2, out / "audited.json", "audit:0.5")
        committed, _ = _session(thread.url, 4, 1, out / "committed.json", "commit")
    return Sessions(every, other, audited, committed, client.identity, app.state.identity)


def audit(path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["audit", str(path), *args], terminal_width=400)
    return result.exit_code, " ".join(result.output.split())


def forged(path: Path, tmp_path: Path, edit) -> Path:
    data = json.loads(path.read_text())
    edit(data)
    out = tmp_path / "forged.json"
    out.write_text(json.dumps(data))
    return out


def resign(data: dict, sessions: Sessions) -> None:
    """Both real parties re-sign every entry as it now stands (collusion, or stolen keys): the
    checks below must not depend on the signatures alone."""
    by = {"client": sessions.client, "server": sessions.server}
    for e in data["entries"]:
        e["signature"] = by[SENDER[e["kind"]]].sign_statement(
            data["session_id"], e["step"], e["kind"], e["public"], e["proof"])


def dev_ptau(kind: str) -> Path:
    circuits = SplitCircuits(TINY_SPEC)
    return zk.initial_key(circuits.circuit(kind), None, circuits.cache).zkey.parent / "dev.ptau"


def test_an_honest_session_audits_and_says_what_it_established(sessions):
    code, out = audit(sessions.every)
    assert code == 0, out
    assert "2 steps, every statement proven (6 proofs)" in out
    assert "INSECURE development ptau" in out and "consistency only" in out
    assert sessions.server.address in out and sessions.client.address in out
    # an auditor who knows the parties' addresses holds the transcript to them
    code, out = audit(sessions.every, "--client", sessions.client.address,
                      "--server", sessions.server.address)
    assert code == 0, out
    stranger = Identity.generate().address
    code, out = audit(sessions.every, "--server", stranger)
    assert code == 3 and f"pins the server identity {sessions.server.address}, not " \
        f"{stranger}" in out, out


def test_with_the_ptau_the_initial_key_is_rederived(sessions, tmp_path):
    ptau = dev_ptau("client_backward")
    code, out = audit(sessions.every, "--ptau", str(ptau))
    assert code == 0, out
    # α of another circuit's key: consistent with the ceremony, not with the ptau
    def other_alpha(data):
        keys = data["verification_keys"]
        keys["client_backward"]["vk_alpha_1"] = keys["client_forward"]["vk_alpha_1"]
    code, out = audit(forged(sessions.every, tmp_path, other_alpha), "--ptau", str(ptau))
    assert code == 3, out
    assert "client_backward key is refused: α differ from the initial key" in out
    code, out = audit(sessions.every, "--ptau", str(sessions.other))     # not a ptau of it
    assert code not in (0, 3) and "no key of this transcript was made from it" in out


def test_delta_set_to_gamma_is_refused(sessions, tmp_path):
    def delta_is_gamma(data):
        vk = data["verification_keys"]["server_step"]
        vk["vk_delta_2"] = vk["vk_gamma_2"]
    code, out = audit(forged(sessions.every, tmp_path, delta_is_gamma))
    assert code == 3, out
    assert "server_step key is refused: δ = γ" in out


def test_a_ceremony_the_attacker_ran_is_refused(sessions, tmp_path):
    """The attacker's own ceremony on the real initial key, contributions named "server" and
    "client", signed by identities that are not the pinned ones."""
    data = json.loads(sessions.every.read_text())
    server_circuits, client_circuits = SplitCircuits(TINY_SPEC), SplitCircuits(TINY_SPEC)
    signatures = local_ceremony(server_circuits, client_circuits, data["session_id"],
                                Identity.generate(), Identity.generate(), tmp_path / "keys")

    def attacker_keys(data):
        for kind in ("client_forward",):
            key = server_circuits.key(kind)
            data["verification_keys"][kind] = zk.export_verification_key(key).to_snarkjs()
            data["ceremony"][kind] = ceremony_record(key, signatures[kind])
    code, out = audit(forged(sessions.every, tmp_path, attacker_keys))
    assert code == 3, out
    assert "client_forward key is refused: contribution #1 (server) is not signed by the " \
           f"server's pinned identity {sessions.server.address}" in out


def test_another_sessions_key_and_proofs_swapped_in_are_refused(sessions, tmp_path):
    other = json.loads(sessions.other.read_text())

    def swap(data):
        kind = "server_step"
        data["verification_keys"][kind] = other["verification_keys"][kind]
        theirs = next(e for e in other["entries"] if e["kind"] == kind)
        mine = next(e for e in data["entries"] if e["kind"] == kind and e["step"] == 0)
        mine["proof"] = theirs["proof"]
    code, out = audit(forged(sessions.every, tmp_path, swap))
    assert code == 3, out
    assert "server_step key is refused" in out and "metadata names other contributions" in out
    # the metadata made to agree: the key's δ still is not the recorded ceremony's
    def swap_quietly(data):
        swap(data)
        data["verification_keys"]["server_step"].pop("splitverify")
    code, out = audit(forged(sessions.every, tmp_path, swap_quietly))
    assert code == 3, out
    assert "server_step key is refused: its δ is not the one the recorded contributions " \
           "reached" in out
    # the whole ceremony record swapped too: signed for another session
    def swap_ceremony(data):
        swap(data)
        data["ceremony"]["server_step"] = other["ceremony"]["server_step"]
        data["key_origin"]["server_step"] = other["key_origin"]["server_step"]
    code, out = audit(forged(sessions.every, tmp_path, swap_ceremony))
    assert code == 3, out
    assert "server_step key is refused: contribution #1 (server) is not signed" in out


def test_an_every_transcript_without_its_proofs_is_refused(sessions, tmp_path):
    def drop_proofs(data):
        for e in data["entries"]:
            e["proof"] = None
    code, out = audit(forged(sessions.every, tmp_path, drop_proofs))
    assert code == 3, out
    assert "invalid at step 0: the client_forward statement is not signed" in out
    # even with both parties' signatures of the proof-less statements: 'every' proves each one
    def drop_and_resign(data):
        drop_proofs(data)
        resign(data, sessions)
    code, out = audit(forged(sessions.every, tmp_path, drop_and_resign))
    assert code == 3, out
    assert "the client_forward statement has no proof, but the proof mode 'every'" in out


def test_a_recorded_detection_is_never_valid(sessions, tmp_path):
    def detected(data):
        data["detected"] = {"step": 1, "detected_by": "client", "reason": "forged proof"}
    code, out = audit(forged(sessions.every, tmp_path, detected))
    assert code == 3 and "records detected tampering" in out, out


def test_a_transcript_cut_short_is_refused(sessions, tmp_path):
    def cut(data):
        data["entries"] = [e for e in data["entries"] if e["step"] == 0]
    code, out = audit(forged(sessions.every, tmp_path, cut))
    assert code == 3 and "ended the session after 2 steps, the transcript holds 1" in out, out

    def cut_and_drop_end(data):
        cut(data)
        data["end"] = None
    code, out = audit(forged(sessions.every, tmp_path, cut_and_drop_end))
    assert code == 3 and "no end record: it may have been cut short" in out, out

    def end_forged(data):
        cut(data)
        data["end"] = {"steps": 1, "signature": Identity.generate().sign(b"anything")}
    code, out = audit(forged(sessions.every, tmp_path, end_forged))
    assert code == 3 and "end record is not signed by the client's pinned identity" in out, out


def test_a_value_outside_the_field_is_refused(sessions, tmp_path):
    def unreduced(data):
        entry = data["entries"][1]                 # step 0, server_step
        entry["public"]["loss"] += R               # the same residue: a proof would still verify
        resign(data, sessions)
    code, out = audit(forged(sessions.every, tmp_path, unreduced))
    assert code == 3, out
    assert "invalid at step 0: the server_step statement's ['loss'] are not reduced field " \
           "elements" in out


def test_the_proof_modes_promises(sessions, tmp_path):
    data = json.loads(sessions.audited.read_text())
    drawn = [e for e in data["entries"] if e["challenged"]]
    assert all(e["challenged"] is not None for e in data["entries"])
    assert all((e["proof"] is not None) == e["challenged"] for e in data["entries"])
    code, out = audit(sessions.audited)
    assert code == 0, out
    assert f"2 steps, {len(drawn)} of 6 statements proven" in out and "committed only" in out
    assert "INSECURE development ptau" in out

    def undrawn(data):                       # the draws are what the audit holds them to
        for e in data["entries"]:
            e["challenged"] = None
    code, out = audit(forged(sessions.audited, tmp_path, undrawn))
    assert code == 3 and "does not record whether its verifier challenged it" in out, out

    code, out = audit(sessions.committed)
    assert code == 0, out
    assert "1 steps, NOTHING PROVEN: 3 statements committed and chained only" in out
