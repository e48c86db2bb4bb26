"""SplitFed-V1's rounds in the library (issue 20 item 2): K clients, each in its own session,
their halves averaged every R steps with an Aggregate proof each client checks
(splitverify.protocol.aggregation). The honest run equals the integer reference (steps, then
floor averages) bit for bit; a wrong average (server:wrong-average) is caught by the client it
is sent to when proofs run; a half that is not the client's last proven weights is refused."""

from __future__ import annotations

from dataclasses import replace

import pytest

from splitverify import model
from splitverify.circuitgen import SplitCircuits, statements as st
from splitverify.errors import TamperDetected
from splitverify.protocol import ProofMode, random_field, scenarios
from splitverify.protocol.aggregation import (ClientHalf, adopt_average, aggregate_round,
                                              run_local_rounds)
from splitverify.protocol.local import local_step, start_local_session

from splitverify.identity import round_payload
from splitverify.keyexchange import local_ceremony
from splitverify.transcript import audit

from conftest import TINY_SPEC
from split_cases import data_batches, same_params

pytestmark = pytest.mark.xdist_group("aggregate")


def keyed_aggregate(clients: int) -> SplitCircuits:
    circuits = SplitCircuits(TINY_SPEC, aggregate_clients=clients)
    circuits.key("aggregate")
    return circuits


@pytest.fixture(scope="module")
def aggregate_circuits(isolated_cache) -> SplitCircuits:
    return keyed_aggregate(2)


def sessions(keys, mode: str, malicious: str | None = None, clients: int = 2):
    """``clients`` client and server parties, client j from its own seeded initial weights
    (``keys`` None: each party its own circuits, for a key ceremony per session)."""
    proof_mode = ProofMode.parse(mode)
    pairs = []
    for j in range(clients):
        session = random_field()
        client = scenarios.party_class("client", malicious)(
            TINY_SPEC, session, proof_mode, model.init_params(TINY_SPEC.client, 10 + j,
                                                              TINY_SPEC.quant),
            keys or SplitCircuits(TINY_SPEC))
        server = scenarios.party_class("server", malicious)(
            TINY_SPEC, session, proof_mode, model.init_params(TINY_SPEC.server, 20 + j,
                                                              TINY_SPEC.quant),
            keys or SplitCircuits(TINY_SPEC))
        pairs.append((client, server))
    return [c for c, _ in pairs], [s for _, s in pairs]


def reference_rounds(clients, servers, batches, every: int):
    """The integer reference of the same run: each client's steps, then the floor average."""
    spec = TINY_SPEC
    cp = [c.params for c in clients]
    sp = [s.params for s in servers]
    for step in range(len(batches[0])):
        for j in range(len(clients)):
            x, labels = batches[j][step]
            fwd = model.client_forward(spec, cp[j], x, labels)
            res = model.server_step(spec, sp[j], fwd.output, labels)
            cp[j] = model.client_backward(spec, cp[j], fwd, res.gradient).new_params
            sp[j] = res.backward.new_params
        if (step + 1) % every == 0:
            cp = [model.average_params(spec, spec.client, cp)] * len(clients)
    return cp


@pytest.mark.parametrize("count, steps, every", [(2, 4, 2), (3, 2, 1)])
def test_an_honest_run_averages_every_round_as_the_reference(tiny_keys, aggregate_circuits,
                                                             count, steps, every):
    circuits = aggregate_circuits if count == 2 else keyed_aggregate(count)
    clients, servers = sessions(tiny_keys, "every", clients=count)
    batches = [data_batches(TINY_SPEC, steps, seed=j) for j in range(len(clients))]
    expected = reference_rounds(clients, servers, batches, every=every)
    result = run_local_rounds(clients, servers, batches, every=every, circuits=circuits)
    assert result.detected is None and result.steps == steps
    assert len(result.rounds) == steps // every
    for client, want in zip(clients, expected):
        assert same_params(client.params, want)
    # each round's record names the clients' sessions, and the average's commitment under each
    # client's salt is that client's weights now (its next step would start from it)
    last = result.rounds[-1].public
    for j, client in enumerate(clients):
        assert last[f"session{j}"] == client.session_id
        assert last[f"averageWeights{j}"] == client.weights_commitment()
        assert servers[j].client_chain == client.weights_commitment()
    assert all(r.proof is not None for r in result.rounds)


@pytest.mark.parametrize("mode, caught", [("every", True), ("commit", False)])
def test_a_wrong_average_is_caught_by_the_client_when_proofs_run(tiny_keys, aggregate_circuits,
                                                                 mode, caught):
    clients, servers = sessions(tiny_keys, mode, "server:wrong-average")
    batches = [data_batches(TINY_SPEC, 2, seed=j) for j in range(2)]
    result = run_local_rounds(clients, servers, batches, every=2, circuits=aggregate_circuits)
    if not caught:      # committed to consistently: commitments alone cannot tell
        assert result.detected is None and result.steps == 2
        return
    assert result.detected is not None
    assert (result.detected.step, result.detected.detected_by, result.detected_client) == \
        (1, "client", 0)
    assert "Aggregate proof does not verify" in result.detected.reason
    assert result.sessions[0].transcript.detected.detected_step == 1


def test_a_half_that_is_not_the_last_proven_weights_is_refused(tiny_keys, aggregate_circuits):
    clients, servers = sessions(tiny_keys, "commit")
    batches = [data_batches(TINY_SPEC, 1, seed=j) for j in range(2)]
    for j, (client, server) in enumerate(zip(clients, servers)):
        start_local_session(client, server)
        local_step(client, server, 0, *batches[j][0])
    halves = [ClientHalf.of(c) for c in clients]
    stale = ClientHalf(clients[1].session_id, model.init_params(TINY_SPEC.client, 11,
                                                                TINY_SPEC.quant),
                       clients[1].weights_salt)
    with pytest.raises(TamperDetected, match="client 1's half is not the weights of its last"):
        aggregate_round(aggregate_circuits, servers, [halves[0], stale], 0, 0)
    # the honest halves are taken, and the statement is the honest one
    record, _ = aggregate_round(aggregate_circuits, servers, halves, 0, 0)
    assert record.public == st.aggregate_honest_statement(
        TINY_SPEC, [h.params for h in halves], [h.weights_salt for h in halves],
        [h.session_id for h in halves], 0).values


def test_an_average_the_server_did_not_sign_is_refused(tiny_keys, aggregate_circuits):
    clients, servers = sessions(tiny_keys, "commit")
    for j, (client, server) in enumerate(zip(clients, servers)):
        start_local_session(client, server)
        local_step(client, server, 0, *data_batches(TINY_SPEC, 1, seed=j)[0])
    record, messages = aggregate_round(aggregate_circuits, servers,
                                       [ClientHalf.of(c) for c in clients], 0, 0)
    before = clients[0].params
    with pytest.raises(TamperDetected, match="not signed by the server's pinned identity"):
        adopt_average(clients[0], replace(messages[0], signature=messages[1].signature),
                      record, aggregate_circuits, 0, 0)
    assert clients[0].params is before                # a refused average changes nothing
    adopt_average(clients[0], messages[0], record, aggregate_circuits, 0, 0)
    assert clients[0].weights_commitment() == record.public["averageWeights0"]


def test_each_clients_transcript_audits_with_its_rounds(aggregate_circuits, tmp_path):
    """Every session's transcript records the rounds its client half was averaged in; the
    audit verifies each Aggregate proof and links the client's next weights to the average.
    A round whose average is swapped, or a round left out, fails the audit."""
    clients, servers = sessions(None, "every")
    signatures = [local_ceremony(s.prover.circuits, c.prover.circuits, c.session_id,
                                 s.identity, c.identity, tmp_path / f"ceremony{j}")
                  for j, (c, s) in enumerate(zip(clients, servers))]
    batches = [data_batches(TINY_SPEC, 2, seed=j) for j in range(2)]
    result = run_local_rounds(clients, servers, batches, every=1, circuits=aggregate_circuits,
                              contribution_signatures=signatures)
    assert result.detected is None and len(result.rounds) == 2
    for session in result.sessions:
        report = audit(session.transcript)
        assert report.valid, report.reason
        assert "averaged with other clients' in 2 rounds" in report.established
    transcript = result.sessions[1].transcript
    # another average written in (by the client, say): the server did not sign it; signed by
    # the server, its proof does not verify
    swapped = transcript.model_copy(deep=True)
    entry = swapped.rounds[0]
    public = {**entry.public, "averageWeights1": entry.public["averageWeights0"]}
    swapped.rounds[0] = entry.model_copy(update={"public": public})
    report = audit(swapped)
    assert not report.valid and "round 0's Aggregate statement is not signed" in report.reason
    swapped.rounds[0] = entry.model_copy(update={"public": public, "signature": servers[
        1].identity.sign(round_payload(transcript.session_id, 0, 0, 1, public, entry.proof))})
    report = audit(swapped)
    assert not report.valid and "round 0's Aggregate proof does not verify" in report.reason
    dropped = transcript.model_copy(deep=True)
    dropped.rounds = dropped.rounds[1:]
    report = audit(dropped)
    assert not report.valid and report.bad_step == 1
    assert "not its previous step's updated weights" in report.reason
