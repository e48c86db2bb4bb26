"""``pipelined:W`` in one process (issue 18): statements travel at once, proofs follow at most W
steps late from the party's prover pool (inline or background threads); an honest session ends
with every statement proven and audits like ``every``; a cheat surfaces at most W steps late and
both parties go back to the weights of the integer reference run at the last verified step."""

from __future__ import annotations

import pytest
import torch

from splitverify.circuitgen import SplitCircuits
from splitverify.errors import InputError
from splitverify.keyexchange import local_ceremony
from splitverify.pool import InlinePool
from splitverify.pool.threads import ThreadPool
from splitverify.protocol import ClientParty, ProofMode, ServerParty, random_field, run_local
from splitverify.protocol.scenarios import WrongGradient
from splitverify.protocol.state import params_to_lists
from splitverify.transcript import audit

from conftest import TINY_SPEC
from split_cases import data_batches, random_case


class WrongGradientFrom(WrongGradient):
    """Honest until step ``CHEAT_STEP``, then sends a gradient its proven step did not compute."""
    CHEAT_STEP = 2

    def outgoing_gradient(self, gradient, salts, statement):
        if self.next_step < self.CHEAT_STEP:
            return gradient, statement
        return super().outgoing_gradient(gradient, salts, statement)


@pytest.fixture(scope="module")
def circuits(tiny_keys):
    return tiny_keys


def parties(circuits, mode: str, server_class=ServerParty, pool=None):
    case = random_case(TINY_SPEC, seed=11)
    session, parsed = random_field(), ProofMode.parse(mode)
    return (ClientParty(TINY_SPEC, session, parsed, case.client, circuits,
                        pool=pool and pool(circuits)),
            server_class(TINY_SPEC, session, parsed, case.server, circuits,
                         pool=pool and pool(circuits)))


def reference_weights(circuits, steps: int, data):
    """The integer reference run (no proofs) after ``steps`` steps (0: the initial weights)."""
    client, server = parties(circuits, "off")
    result = run_local(client, server, data[:steps])
    assert result.detected is None
    return params_to_lists(client.params), params_to_lists(server.params)


@pytest.mark.parametrize("text", ["pipelined:0", "pipelined:-1", "pipelined:1.5",
                                  "pipelined:", "pipelined:x"])
def test_a_lag_that_is_not_a_whole_number_of_steps_is_refused(text):
    with pytest.raises(InputError, match="pipelined:W"):
        ProofMode.parse(text)


def test_the_mode_reads_back_as_its_text():
    mode = ProofMode.parse("pipelined:4")
    assert (str(mode), mode.lag, mode.proves, mode.commits) == ("pipelined:4", 4, True, True)


@pytest.mark.parametrize("pool", [None, lambda c: ThreadPool(c, workers=2)],
                         ids=["inline", "threads"])
def test_an_honest_session_ends_with_every_statement_proven(circuits, pool):
    data = data_batches(TINY_SPEC, 4, seed=0)
    client, server = parties(circuits, "pipelined:2", pool=pool)
    result = run_local(client, server, data)
    assert result.detected is None and result.steps == 4
    assert (client.verifier.verified, server.verifier.verified) == (4, 8)
    assert all(e.proof is not None for e in result.transcript.entries)
    assert not client.prover.outbound.jobs and not server.prover.outbound.jobs
    assert not client.verifier.inbound.held and not server.verifier.inbound.held
    # proving later changes nothing of the training
    assert (params_to_lists(client.params), params_to_lists(server.params)) == \
        reference_weights(circuits, 4, data)
    assert result.summary()["verified"] is True
    assert sum(len(v) for v in client.prover.prove_seconds.values()) == 8


def test_the_lag_bound_holds_proofs_at_most_w_steps(circuits):
    """With proofs that are made but withheld, the server refuses step W + 1's forward: the
    client's proofs of step 0 did not come within W steps."""
    client, server = parties(circuits, "pipelined:2")
    client.late_proofs = lambda through, timeout=None: []      # a client that never delivers
    result = run_local(client, server, data_batches(TINY_SPEC, 5, seed=0))
    assert result.detected is not None
    assert (result.detected.step, result.detected.detected_by) == (0, "server")
    assert "did not come within the lag bound" in result.detected.reason
    summary = result.summary()
    assert summary["detected_during_step"] == 2 and summary["rolled_back_to_step"] == -1
    assert summary["rolled_back_steps"] == 2


@pytest.mark.parametrize("lag", [1, 3])
def test_a_cheat_is_caught_within_w_steps_and_both_roll_back_to_the_reference(circuits, lag):
    data = data_batches(TINY_SPEC, 8, seed=2)
    client, server = parties(circuits, f"pipelined:{lag}", WrongGradientFrom,
                             pool=lambda c: ThreadPool(c, workers=1))
    result = run_local(client, server, data)
    detected = result.detected
    assert detected is not None and detected.detected_by == "client"
    assert detected.step == WrongGradientFrom.CHEAT_STEP
    assert "server_step proof does not verify" in detected.reason
    summary = result.summary()
    assert summary["detected_during_step"] - detected.step <= lag
    # back to the last step whose proofs all verified: before the cheat, and (the lag
    # bound) no earlier than W steps before the step under way
    back_to = summary["rolled_back_to_step"]
    assert summary["detected_during_step"] - lag - 1 <= back_to < WrongGradientFrom.CHEAT_STEP
    assert summary["rolled_back_steps"] == summary["detected_during_step"] - (back_to + 1)
    assert (params_to_lists(client.params), params_to_lists(server.params)) == \
        reference_weights(circuits, back_to + 1, data)
    assert result.transcript.detected.rolled_back_to == back_to


def test_a_restored_party_re_proves_what_it_still_owes(circuits):
    """A party's state holds its owed proofs (inputs and statements), the statements it waits
    proofs for, and its checkpoints; restored in a new party, the owed proofs are made again
    and verify."""
    data = data_batches(TINY_SPEC, 1, seed=0)
    client, server = parties(circuits, "pipelined:4")
    client.peer, server.peer = server.identity.address, client.identity.address
    x, labels = data[0]
    gradient = server.receive_forward(client.forward(0, x, labels), client.signed_proof)
    client.receive_gradient(gradient, server.signed_proof)
    state = client.snapshot()
    assert {(k, s) for k, s, *_ in state["outbound"]} == {("client_forward", 0),
                                                         ("client_backward", 0)}
    assert state["inbound"]["held"][0][:2] == ["server_step", 0]
    again = ClientParty(TINY_SPEC, client.session_id, client.mode, client.params, circuits,
                        pool=InlinePool(circuits), identity=client.identity,
                        peer=client.peer)
    again.restore(state)
    assert set(again.checkpoints.params) == {-1, 0}
    delivered = again.late_proofs(0)
    assert sorted((p.kind, p.step) for p in delivered) == [("client_backward", 0),
                                                           ("client_forward", 0)]
    forward = [p for p in delivered if p.kind == "client_forward"]
    assert server.receive_late_proofs(forward) == [("client_forward", 0)]


def test_the_transcript_audits_like_every(tmp_path):
    case, session, mode = random_case(TINY_SPEC, seed=11), random_field(), \
        ProofMode.parse("pipelined:2")
    client = ClientParty(TINY_SPEC, session, mode, case.client, SplitCircuits(TINY_SPEC))
    server = ServerParty(TINY_SPEC, session, mode, case.server, SplitCircuits(TINY_SPEC))
    signatures = local_ceremony(server.prover.circuits, client.prover.circuits, session,
                                server.identity, client.identity, tmp_path / "ceremony")
    result = run_local(client, server, data_batches(TINY_SPEC, 3, seed=4),
                       contribution_signatures=signatures)
    assert result.detected is None
    report = audit(result.transcript)
    assert report.valid, report.reason
    assert report.proofs_verified == 9
    assert "every statement proven (9 proofs" in report.established
    assert "at most 2 steps late" in report.established
    # a statement whose proof never came (signed as it was sent, without one) is not
    # proven: the audit refuses the transcript
    stripped = result.transcript.model_copy(deep=True)
    entry = stripped.entries[4]
    sender = server if entry.kind == "server_step" else client
    stripped.entries[4] = entry.model_copy(update={
        "proof": None, "signature": sender.identity.sign_statement(
            session, entry.step, entry.kind, entry.public, None)})
    refused = audit(stripped)
    assert not refused.valid and "pipelined:2" in refused.reason
