"""--labels server in one process (run_local): the server holds the label table and commits it
once; the client's messages name sample ids and hold no labels; the run trains exactly as the
same rows with the labels at the client; a server that uses other labels than its committed
table is caught (server:wrong-labels); the transcript binds the table and audits."""

from __future__ import annotations

import pytest
import torch

from splitverify.circuitgen import SplitCircuits
from splitverify.keyexchange import local_ceremony
from splitverify.label_table import SampleIds
from splitverify.pool import ProofJob, checked
from splitverify.pool.local import LocalPool
from splitverify.errors import InputError
from splitverify.protocol import (ClientParty, ProofMode, ServerParty, random_field, run_local,
                                  scenarios)
from splitverify.protocol.state import ClientStep
from splitverify.protocol.wire import ForwardMessage
from splitverify.transcript import audit

from conftest import TINY_SPEC
import split_cases
from split_cases import SESSION, STEP, random_case, table_case

pytestmark = pytest.mark.xdist_group("labeltable")

STEPS, TABLE_SALT = 2, 4242


def vertical_split(seed: int):
    """The client's batches of sample ids and the server's table holding their labels."""
    return split_cases.vertical_split(TINY_SPEC, STEPS, seed, TABLE_SALT)


def run(circuits, batches, *, table=None, mode="every", malicious=None, on_message=None,
        ceremony_dir=None):
    """A local session; ``ceremony_dir``: each party with circuits of its own and the keys of
    their two-party ceremony (what the audit establishes), else both on ``circuits``."""
    case, session = random_case(TINY_SPEC, seed=11), random_field()
    proof_mode = ProofMode.parse(mode)
    client_kw = {} if table is None else {"label_table": (table.commitment, table.depth)}
    server_kw = {} if table is None else {"label_table": table}
    own = ceremony_dir is not None
    depth = circuits.label_table_depth
    client = scenarios.party_class("client", malicious)(
        TINY_SPEC, session, proof_mode, case.client,
        SplitCircuits(TINY_SPEC, label_table_depth=depth) if own else circuits, **client_kw)
    server = scenarios.party_class("server", malicious)(
        TINY_SPEC, session, proof_mode, case.server,
        SplitCircuits(TINY_SPEC, label_table_depth=depth) if own else circuits, **server_kw)
    signatures = None
    if own:
        signatures = local_ceremony(server.prover.circuits, client.prover.circuits, session,
                                    server.identity, client.identity, ceremony_dir)
    return run_local(client, server, batches, contribution_signatures=signatures,
                     **({} if on_message is None else {"on_message": on_message}))


def test_server_labels_run_verifies_without_sending_labels(table_keys, tiny_keys, tmp_path):
    labelled, by_id, table = vertical_split(seed=3)
    forwards = []
    result = run(table_keys, by_id, table=table, ceremony_dir=tmp_path,
                 on_message=lambda m: forwards.append(m) if isinstance(m, ForwardMessage) else 0)
    assert result.detected is None and result.steps == STEPS
    assert result.client.verifier.verified == STEPS
    assert result.server.verifier.verified == 2 * STEPS
    assert len(forwards) == STEPS
    assert all(m.labels is None and m.ids == ids.tolist()
               for m, (_, ids) in zip(forwards, by_id))
    assert result.transcript.label_table == table.commitment
    assert all(e.public["labelTable"] == table.commitment
               for e in result.transcript.entries if e.kind == "server_step")
    report = audit(result.transcript)
    assert report.valid, report.reason
    # the same rows labelled at the client: the same labels, so the same proven losses and
    # weights, bit for bit (accuracy equal by construction)
    plain = run(tiny_keys, labelled)
    assert plain.detected is None and plain.losses == result.losses
    for (w, b), (w2, b2) in zip(result.client.params + result.server.params,
                                plain.client.params + plain.server.params):
        assert torch.equal(w, w2) and torch.equal(b, b2)
    assert result.server.correct == plain.server.correct


def test_a_transcript_with_another_label_table_fails_audit(table_keys, tmp_path):
    _, by_id, table = vertical_split(seed=4)
    result = run(table_keys, by_id, table=table, mode="commit", ceremony_dir=tmp_path)
    assert result.detected is None
    forged = result.transcript.model_copy(update={"label_table": table.commitment + 1})
    report = audit(forged)
    assert not report.valid and "label table" in report.reason


# server:wrong-labels under --labels server, per proof mode: (step, detecting party), or None
# where commitments alone cannot tell (its statement names the committed table; only a proof
# shows the loss came from other labels). Without a table the run is honest (test_scenarios).
CAUGHT_WITH_TABLE = {"every": (0, "client"), "commit": None}


@pytest.mark.parametrize("mode", list(CAUGHT_WITH_TABLE))
def test_a_server_using_other_labels_is_detected(table_keys, mode):
    _, by_id, table = vertical_split(seed=5)
    result = run(table_keys, by_id, table=table, mode=mode, malicious="server:wrong-labels")
    expected = CAUGHT_WITH_TABLE[mode]
    if expected is None:
        assert result.detected is None and result.steps == STEPS
        return
    assert result.detected is not None
    assert (result.detected.step, result.detected.detected_by) == expected
    assert "server_step" in result.detected.reason and "proof" in result.detected.reason
    print(result.detected.reason)


def test_a_forward_message_must_carry_what_the_session_holds(table_keys, tiny_keys):
    """Ids to a server without a table, labels (or both) to one with a table: refused, with
    nothing changed (the server is still at step 0)."""
    labelled, by_id, table = vertical_split(seed=6)
    case, session = random_case(TINY_SPEC, seed=11), random_field()
    mode = ProofMode.parse("commit")
    plain = ServerParty(TINY_SPEC, session, mode, case.server, tiny_keys)
    held = ServerParty(TINY_SPEC, session, mode, case.server, table_keys, label_table=table)
    client = ClientParty(TINY_SPEC, session, mode, case.client, table_keys,
                         label_table=(table.commitment, table.depth))
    client.peer = plain.peer = held.peer = None
    msg = client.forward(0, *by_id[0])
    labels = labelled[0][1].tolist()
    only_labels = msg.model_copy(update={"ids": None, "labels": labels})
    both = msg.model_copy(update={"labels": labels})
    for server, bad in ((plain, msg), (held, only_labels), (held, both)):
        with pytest.raises(InputError, match="this session's forward messages carry"):
            server.receive_forward(bad, client.signed_proof)
        assert server.next_step == 0 and server.losses == []
    with pytest.raises(InputError, match="sample ids"):
        held.receive_forward(msg.model_copy(update={"ids": [0, len(table.labels)]}),
                             client.signed_proof)


@pytest.mark.parametrize("mode", ["pipelined:1", "audit:0.5"])
def test_server_labels_in_the_other_proof_modes(table_keys, mode):
    """Proofs that follow their statements (the pool proves the table ServerStep) and proofs on
    challenge verify as in `every`."""
    _, by_id, table = vertical_split(seed=7)
    result = run(table_keys, by_id, table=table, mode=mode)
    assert result.detected is None and result.steps == STEPS, result.detected


def test_a_pending_forward_step_with_ids_survives_a_restart(table_keys):
    _, by_id, table = vertical_split(seed=8)
    case, session = random_case(TINY_SPEC, seed=11), random_field()
    client = ClientParty(TINY_SPEC, session, ProofMode.parse("commit"), case.client,
                         table_keys, label_table=(table.commitment, table.depth))
    client.forward(0, *by_id[0])
    restored = ClientStep.from_state(client.pending.to_state(), TINY_SPEC, client.params)
    assert isinstance(restored.labels, SampleIds) and restored.labels.depth == table.depth
    assert torch.equal(restored.labels.ids, by_id[0][1])
    assert torch.equal(restored.fwd.output, client.pending.fwd.output)
    assert restored.statement == client.pending.statement


def test_a_worker_process_proves_the_table_server_step(table_keys, tiny_case):
    """A prover pool's worker answers with the table ServerStep's public signals (its label
    table's commitment among them), which the party checks are its job's statement."""
    case = table_case(tiny_case, table_size=4, seed=9)
    assert case.table.depth == table_keys.label_table_depth
    job = ProofJob(SESSION, "server_step", STEP, case.statements["server_step"],
                   case.inputs["server_step"])
    pool = LocalPool(table_keys, 1)
    try:
        result = checked(job, pool.submit(job).result())
    finally:
        pool.close()
    assert result.statement.values["labelTable"] == case.table.commitment
    assert table_keys.verify("server_step", result.proof, case.statements["server_step"])
