"""The ledger in the runtime (splitverify.ledger.sink): each party logs the statements it sends, on
the embedded chain, from its own account, through the protocol's ``on_statement`` hook (the
first statement opens the session with both parties' agreement); and the core claim of the
comparison on the tiny model: a ledger records a consistent cheat that only a proof catches."""

from __future__ import annotations

import pytest

from splitverify.ledger.sink import ChainLog, LedgerSink, check_chain_options, parse_chain
from splitverify.errors import InputError, LedgerMismatch
from splitverify.ledger import KINDS, KindTerms, Ledger, SessionTerms, VerifierDeployment
from splitverify_server.apps.measure import local_parties
from splitverify.protocol import ProofMode, run_local

from conftest import TINY_SPEC
from split_cases import data_batches

# Which public signal each entry field holds (SplitLedger's layout, restated independently).
ENTRY_FIELDS = {
    "client_forward": {"message": "messageCommitment", "weights_before": "weightsCommitment"},
    "server_step": {"message": "messageCommitment", "gradient": "gradientCommitment",
                    "weights_before": "weightsBefore", "weights_after": "weightsAfter"},
    "client_backward": {"gradient": "gradientCommitment", "weights_before": "weightsBefore",
                        "weights_after": "weightsAfter"},
}


@pytest.fixture(scope="module")
def ledger():
    with Ledger.open("embedded") as opened:
        opened.deploy()
        yield opened


@pytest.fixture(scope="module")
def anvil_ledger():
    """A real anvil node: its pairing precompile is native, where the embedded chain's is
    pure Python (minutes for a few proofs verified on chain)."""
    with Ledger.open("anvil") as opened:
        opened.deploy()
        yield opened


@pytest.fixture(scope="module")
def keyed(tiny_circuits):
    for kind in ENTRY_FIELDS:
        tiny_circuits.key(kind)
    return tiny_circuits


def logged_session(circuits, mode: str, ledger: Ledger, steps: int, *,
                   malicious: str | None = None, verify_on_chain: bool = False):
    """A tiny session whose two parties log what they send on ``ledger``."""
    client, server = local_parties(TINY_SPEC, circuits, mode, malicious=malicious)
    log = ChainLog(ledger, verify_on_chain)
    log.sink("client").attach(client)
    log.sink("server").attach(server)
    result = run_local(client, server, data_batches(TINY_SPEC, steps, seed=2))
    return result, log


def assert_on_chain_as_in_transcript(log: ChainLog, result, verified: bool) -> None:
    entries = result.transcript.entries
    assert entries, "nothing was exchanged"
    client = log.party_ledger("client").account
    for sent in entries:
        entry = log.ledger.entry(result.transcript.session_id, sent.step, sent.kind, party=client)
        assert entry is not None, (sent.step, sent.kind)
        for entry_field, signal in ENTRY_FIELDS[sent.kind].items():
            assert getattr(entry, entry_field) == sent.public[signal], (sent.kind, entry_field)
        writer = "server" if sent.kind == "server_step" else "client"
        assert entry.verified is verified
        assert entry.submitter == log.party_ledger(writer).account


def test_each_sent_statement_is_recorded_as_the_transcript_holds_it(tiny_circuits, ledger):
    result, log = logged_session(tiny_circuits, "commit", ledger, 2)
    assert result.detected is None and result.steps == 2
    assert len(result.transcript.entries) == 6
    assert_on_chain_as_in_transcript(log, result, verified=False)
    # the client's first statement opened the session for both accounts, without keys
    info = ledger.session(result.transcript.session_id, log.party_ledger("server").account)
    assert (info.client, info.server) == (log.party_ledger("client").account,
                                          log.party_ledger("server").account)
    assert set(info.key_hashes.values()) == {"0x" + "00" * 32}
    assert len(log.sinks["client"].session_receipts) == 1
    assert log.sinks["server"].session_receipts == []
    # each party logged only its own statements
    assert {(r.kind, r.step) for r in log.sinks["client"].records} == \
        {(k, s) for k in ("client_forward", "client_backward") for s in (0, 1)}
    assert {(r.kind, r.step) for r in log.sinks["server"].records} == \
        {("server_step", 0), ("server_step", 1)}
    summary = log.summary()
    assert summary["entries"] == 6 and summary["verified_entries"] == 0
    assert summary["refused"] == [] and summary["logged_by"] == ["client", "server"]
    per_step = log.per_step()
    assert set(per_step) == {0, 1} and all(gas > 3 * 21_000 for gas, _ in per_step.values())
    assert summary["gas_total"] == sum(gas for gas, _ in per_step.values())
    assert summary["seconds_total"] > 0 and summary["session_gas"] > 100_000


def test_off_mode_sends_no_statement_and_the_options_say_so(tiny_circuits, ledger):
    result, log = logged_session(tiny_circuits, "off", ledger, 1)
    assert result.steps == 1 and log.summary()["entries"] == 0
    with pytest.raises(InputError, match="nothing to record"):
        check_chain_options("embedded", False, ProofMode.parse("off"))
    with pytest.raises(InputError, match="needs a chain"):
        check_chain_options(None, True, ProofMode.parse("every"))
    with pytest.raises(InputError, match="proof-mode every"):
        check_chain_options("embedded", True, ProofMode.parse("commit"))
    check_chain_options("embedded", True, ProofMode.parse("every"))


def test_chain_choices():
    assert parse_chain("none") is None
    assert parse_chain("anvil") == "anvil" and parse_chain("http://127.0.0.1:8545")
    with pytest.raises(InputError, match="use none, embedded"):
        parse_chain("ganache")


def test_a_replayed_message_is_refused_by_the_chain(tiny_circuits, ledger):
    """The replayed step-0 statement is already on chain: the contract refuses it
    (AlreadyRecorded), nothing is overwritten, and the server's own step check stops the run."""
    result, log = logged_session(tiny_circuits, "commit", ledger, 3, malicious="client:replay")
    assert (result.detected.step, result.detected.detected_by) == (1, "server")
    [refused] = log.sinks["client"].refused()
    assert (refused.kind, refused.step, refused.gas) == ("client_forward", 0, 0)
    assert refused.refused.startswith("AlreadyRecorded(")
    assert log.summary()["refused"][0]["party"] == "client"


@pytest.mark.parametrize("scenario,kind,detected_by", [
    ("server:wrong-gradient", "server_step", "client"),
    ("client:poisoned-activation", "client_forward", "server"),
])
def test_a_ledger_records_a_consistent_cheat_only_a_proof_catches(keyed, ledger, scenario,
                                                                   kind, detected_by):
    """The core claim. With commitments on a ledger and no proofs (``commit``), the cheater's
    statements match what it sent, so the session goes on and the ledger records the cheat; with
    proofs (``every``) the honest side stops it at step 0."""
    result, log = logged_session(keyed, "commit", ledger, 2, malicious=scenario)
    assert result.detected is None and result.steps == 2
    assert_on_chain_as_in_transcript(log, result, verified=False)
    assert {(r.kind, r.step) for r in log.sinks[kind.split("_")[0]].records
            if r.refused is None} >= {(kind, 0), (kind, 1)}

    result, log = logged_session(keyed, "every", ledger, 2, malicious=scenario)
    assert result.detected is not None
    assert (result.detected.step, result.detected.detected_by) == (0, detected_by)
    # the cheater's own record went on chain (recording is not checking); the session stopped
    cheater = log.party_ledger(kind.split("_")[0])
    assert cheater.entry(result.transcript.session_id, 0, kind).submitter == cheater.account
    # with proofs the session's key hashes are registered: the transcript's keys check out
    assert log.check_keys(result.transcript) == dict.fromkeys(KINDS)


@pytest.mark.slow
def test_on_chain_verification_records_verified_entries(keyed, ledger):
    """``verify_on_chain``: every statement goes on chain with its proof, which the contract
    verifies with the session's verifiers (deployed by the party that opens the session from
    its keys, checked by the other before it signs, and checkable by any reader)."""
    result, log = logged_session(keyed, "every", ledger, 1, verify_on_chain=True)
    assert result.detected is None and result.steps == 1
    assert_on_chain_as_in_transcript(log, result, verified=True)
    summary = log.summary()
    assert summary["verified_entries"] == 3 and summary["refused"] == []
    assert summary["session_gas"] > 0
    deployed = {d.kind: d.verifier for d in log.sinks["client"].deployments}
    assert log.sinks["server"].deployments == []
    # a reader checks every kind's verifier against the transcript's keys (the ceremony)
    assert log.check_keys(result.transcript) == {
        kind: ledger.session(result.transcript.session_id,
                             log.party_ledger("client").account).verifiers[kind]
        for kind in KINDS}
    assert set(deployed) <= set(KINDS)
    verified_gas = min(r.gas for s in log.sinks.values() for r in s.records)
    assert verified_gas > 200_000          # a pairing check on chain (record alone: ~100k)


@pytest.mark.slow
def test_the_chain_refuses_a_proof_that_does_not_verify(keyed, ledger):
    result, log = logged_session(keyed, "every", ledger, 1, malicious="server:forged-proof",
                                 verify_on_chain=True)
    assert (result.detected.step, result.detected.detected_by) == (0, "client")
    [refused] = log.sinks["server"].refused()
    assert refused.kind == "server_step" and refused.verified
    assert refused.refused.startswith("ProofRejected(") or "malformed" in refused.refused
    assert log.party_ledger("server").entry(result.transcript.session_id, 0,
                                            "server_step") is None


def test_a_sink_without_circuits_cannot_verify_on_chain(ledger):
    sink = LedgerSink(ledger, verify_on_chain=True)
    with pytest.raises(InputError, match="circuits"):
        sink("server_step", 0, {"session": 1}, "00" * 256)


def test_a_party_signs_no_terms_that_disagree_with_its_keys(keyed, ledger):
    """The opener proposes the terms; the other party checks them against its own keys before
    signing: another key hash, or a verifier whose code is not its key's, is refused, and the
    statement that needed the session is refused with that reason (nothing recorded)."""
    from splitverify_server.apps.measure import local_parties

    client, server = local_parties(TINY_SPEC, keyed, "every")
    log = ChainLog(ledger)
    log.sink("client").attach(client)
    server_sink = log.sink("server").attach(server)
    mine = log.sinks["client"].terms(client.session_id, server_sink.ledger.account)
    assert server_sink.agree(mine)                  # its own keys: signed
    bad_hash = SessionTerms(mine.session, mine.client, mine.server,
                            (KindTerms(b"\1" * 32), *mine.kinds[1:]))
    with pytest.raises(LedgerMismatch, match="client_forward to key hash 0x0101"):
        server_sink.agree(bad_hash)
    # a verifier deployed for the client_backward key, named for client_forward
    other = ledger.deploy_verifier("client_backward", keyed.key("client_backward"))
    wrong_code = SessionTerms(mine.session, mine.client, mine.server, (
        KindTerms(mine.kinds[0].key_hash, other.verifier, other.layout), *mine.kinds[1:]))
    with pytest.raises(LedgerMismatch, match=f"verifier at {other.verifier} is not"):
        server_sink.agree(wrong_code)
    # The runtime: a client that proposes that verifier (here: its deployment cache poisoned)
    # gets no signature, so its statement is refused with the reason and nothing is recorded.
    log.verify_on_chain = log.sinks["client"].verify_on_chain = True
    log.sinks["client"].ledger._verifiers[("client_forward", mine.kinds[0].key_hash)] = \
        VerifierDeployment("client_forward", other.verifier, mine.kinds[0].key_hash,
                           other.layout, None)
    log.sinks["client"]("client_forward", 0, {"session": client.session_id,
                                              "messageCommitment": 1, "weightsCommitment": 2},
                        None)
    [refused] = log.sinks["client"].refused()
    assert f"verifier at {other.verifier} is not" in refused.refused
    assert ledger.session(client.session_id, log.party_ledger("client").account) is None


def test_a_client_logging_alone_opens_the_session_with_a_stand_in_server(tiny_circuits, ledger):
    """``train --chain`` against a remote server: only the client logs, from the account key it
    is given; a stand-in server account of the same process signs the session's terms (until
    the parties' identity keys are wired in, the entry's server is not the real server)."""
    from eth_account import Account

    from splitverify_server.apps.measure import local_parties

    key = Account.create().key
    client, server = local_parties(TINY_SPEC, tiny_circuits, "commit")
    log = ChainLog(ledger, accounts={"client": key})
    log.sink("client").attach(client)
    result = run_local(client, server, data_batches(TINY_SPEC, 1, seed=2))
    assert result.detected is None
    me = Account.from_key(key).address
    assert log.party_ledger("client").account == me
    info = ledger.session(result.transcript.session_id, me)
    assert (info.client, info.server) == (me, log.party_ledger("server").account)
    summary = log.summary()
    assert summary["logged_by"] == ["client"] and summary["entries"] == 2
    assert ledger.entry(result.transcript.session_id, 0, "server_step", party=me) is None
    with pytest.raises(InputError, match="unknown party 'referee'"):
        log.sink("referee")


def test_pipelined_statements_are_recorded_at_once_and_verified_when_their_proofs_land(
        keyed, anvil_ledger):
    """``pipelined:W`` with ``verify_on_chain``: each statement goes on the ledger as it is
    sent (unverified), and its proof, when it is delivered, is verified on chain and marks the
    entry verified (recordVerified supersedes the unverified entry); at the end every entry is
    verified and nothing was refused."""
    seen = []
    result, log = logged_session(keyed, "pipelined:1", anvil_ledger, 1, verify_on_chain=True)
    for sink in log.sinks.values():
        seen += [(r.kind, r.step, r.verified) for r in sink.records]
    assert result.detected is None and result.steps == 1
    assert sorted(seen) == sorted([(kind, 0, verified) for kind in KINDS
                                   for verified in (False, True)])
    assert_on_chain_as_in_transcript(log, result, verified=True)
    summary = log.summary()
    assert summary["verified_entries"] == 3 and summary["refused"] == []
