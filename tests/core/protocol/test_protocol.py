"""The protocol between the two parties (in one process, the same messages and checks as over
HTTP): honest runs verify every proof and train exactly like the reference; every tamper
scenario of REFERENCE.md is detected at the right step by the right party; audit mode challenges
a share P of the steps and catches a cheater at a challenged step."""

from __future__ import annotations

import json
import random

import pytest
import torch

from splitverify import model
from splitverify.protocol import (ClientParty, ProofMode, ServerParty, Verifier, random_field,
                                  run_local, scenarios)
from splitverify.errors import InputError
from splitverify.circuitgen import SplitCircuits
from splitverify.keyexchange import local_ceremony

from conftest import TINY_SPEC
from split_cases import data_batches
from split_cases import random_case


def batches(n: int, seed: int = 0):
    return data_batches(TINY_SPEC, n, seed)


def parties(circuits, mode: str, malicious: str | None = None):
    case = random_case(TINY_SPEC, seed=11)
    session = random_field()
    return (scenarios.party_class("client", malicious)(TINY_SPEC, session, ProofMode.parse(mode),
                                                       case.client, circuits),
            scenarios.party_class("server", malicious)(TINY_SPEC, session, ProofMode.parse(mode),
                                                       case.server, circuits))


@pytest.fixture(scope="module")
def circuits(tiny_circuits):
    for kind in ("client_forward", "server_step", "client_backward"):
        tiny_circuits.key(kind)
    return tiny_circuits


def test_honest_run_verifies_every_proof_and_trains_like_the_reference(circuits):
    data = batches(3)
    client, server = parties(circuits, "every")
    result = run_local(client, server, data)
    assert result.detected is None and result.steps == 3
    assert client.verifier.verified == 3 and server.verifier.verified == 6
    # the same steps without proofs give the same weights: proving changes nothing
    plain_client, plain_server = parties(circuits, "off")
    plain = run_local(plain_client, plain_server, data)
    assert plain.detected is None and plain_client.prover.prove_seconds == {}
    for (w, b), (w2, b2) in zip(client.params + server.params,
                                plain_client.params + plain_server.params):
        assert torch.equal(w, w2) and torch.equal(b, b2)
    assert result.summary()["verified"] is True


@pytest.mark.parametrize("scenario,step,party", [
    ("server:wrong-gradient", 0, "client"),
    ("server:forged-proof", 0, "client"),
    ("server:skip-update", 1, "client"),
    ("client:poisoned-activation", 0, "server"),
    ("client:replay", 1, "server"),
])
def test_tamper_scenarios_are_detected(circuits, scenario, step, party):
    client, server = parties(circuits, "every", scenario)
    result = run_local(client, server, batches(3))
    assert result.detected is not None, scenario
    assert (result.detected.step, result.detected.detected_by) == (step, party), \
        result.detected
    summary = result.summary()
    assert summary["detected"] and not summary["verified"] and summary["reason"]


def test_audit_draws_challenge_a_share_p():
    verifier = Verifier(None, ProofMode.parse("audit:0.3"), "server", rng=random.Random(7))
    draws = [verifier.wants_proof() for _ in range(4000)]
    assert abs(sum(draws) / len(draws) - 0.3) < 0.03
    assert verifier.challenged == sum(draws)


def test_audit_mode_catches_a_forged_proof_at_a_challenged_step(circuits):
    client, server = parties(circuits, "audit:0.5", "server:forged-proof")
    client.verifier.rng = random.Random(3)
    result = run_local(client, server, batches(12, seed=1))
    assert result.detected is not None and result.detected.detected_by == "client"
    # only challenged steps were proven, and the cheat surfaced at the first challenge
    assert client.verifier.challenged == 1
    assert server.prover.prove_seconds["server_step"] and \
        len(server.prover.prove_seconds["server_step"]) == 1


def test_proof_mode_parsing():
    assert str(ProofMode.parse("audit:0.1")) == "audit:0.1"
    for bad in ("sometimes", "audit:0", "audit:1.5", "audit:x"):
        with pytest.raises(InputError, match="proof mode"):
            ProofMode.parse(bad)


# --- transcripts and the offline audit -------------------------------------------------------

@pytest.fixture(scope="module")
def honest_transcript(tmp_path_factory):
    # each party with its own circuits, keys from their two-party ceremony (which the audit
    # establishes before it trusts a proof)
    case, session, mode = random_case(TINY_SPEC, seed=11), random_field(), ProofMode.parse("every")
    client = ClientParty(TINY_SPEC, session, mode, case.client, SplitCircuits(TINY_SPEC))
    server = ServerParty(TINY_SPEC, session, mode, case.server, SplitCircuits(TINY_SPEC))
    signatures = local_ceremony(server.prover.circuits, client.prover.circuits, session,
                                server.identity, client.identity,
                                tmp_path_factory.mktemp("ceremony"))
    result = run_local(client, server, batches(2, seed=4), contribution_signatures=signatures)
    assert result.detected is None
    return result.transcript.save(tmp_path_factory.mktemp("transcript") / "transcript.json")


def audit_exit(path) -> tuple[int, str]:
    from typer.testing import CliRunner
    from splitverify.cli import app
    out = CliRunner().invoke(app, ["audit", str(path)])
    return out.exit_code, out.output


def test_audit_passes_an_honest_transcript(honest_transcript):
    code, out = audit_exit(honest_transcript)
    assert code == 0, out
    assert "6 proofs verified" in out


def tampered(path, tmp_path, edit) -> tuple[int, str]:
    """Audit a copy of the transcript at ``path`` after ``edit(data)``."""
    data = json.loads(path.read_text())
    edit(data)
    bad = tmp_path / "t.json"
    bad.write_text(json.dumps(data))
    return audit_exit(bad)


def test_audit_rejects_a_changed_proof_digit(honest_transcript, tmp_path):
    def edit(data):
        entry = data["entries"][4]                  # step 1, server_step
        digit = entry["proof"][100]
        entry["proof"] = entry["proof"][:100] + ("0" if digit != "0" else "1") + \
            entry["proof"][101:]
    code, out = tampered(honest_transcript, tmp_path, edit)
    assert code == 3 and "step 1" in out, out


def test_audit_rejects_a_changed_public_input(honest_transcript, tmp_path):
    def edit(data):
        data["entries"][5]["public"]["weightsAfter"] += 1   # step 1, client_backward
    code, out = tampered(honest_transcript, tmp_path, edit)
    assert code == 3 and "step 1" in out, out


def test_audit_rejects_a_broken_weight_chain(honest_transcript, tmp_path):
    """Step 0's server update not used at step 1 (a consistent fake: the proof is dropped)."""
    def edit(data):
        data["entries"][4]["public"]["weightsBefore"] += 1
        data["entries"][4]["proof"] = None
    code, out = tampered(honest_transcript, tmp_path, edit)
    assert code == 3 and "server's weights" in out, out


def test_a_session_start_loads_each_partys_own_proving_keys(circuits, monkeypatch):
    """Starting a session loads each party's own keys into the prover its proofs use, beside
    the transcript's work, so that the first step's proofs do not pay the load; a mode that
    proves nothing loads nothing."""
    from splitverify.zk import prover as backends
    from splitverify.zk.mcl_prover import MclProver
    from splitverify.protocol.local import start_local_session

    for mode, expected in (("every", ("client_forward", "server_step", "client_backward")),
                           ("commit", ())):
        fresh = MclProver()
        monkeypatch.setitem(backends._BACKENDS, "mcl", fresh)
        monkeypatch.delenv(backends.ENV_PROVER, raising=False)
        client, server = parties(circuits, mode)
        start_local_session(client, server)
        assert {key.path for key in fresh.loaded_keys()} == {
            str(circuits.key(kind).zkey.resolve()) for kind in expected}
