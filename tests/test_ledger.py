"""The Ethereum ledger: SplitLedger.sol through splitverify.ledger on the embedded chain
(eth-tester on py-evm) and on a real anvil node. On-chain verification uses a real Groth16 key
and proof of the tiny split model's ServerStep circuit (``tiny_circuits``, ``tiny_case``)."""

from __future__ import annotations

import os
import secrets

import pytest

from splitverify import circuits, ledger as ledger_module
from splitverify.anvil import AnvilNode, find_anvil
from splitverify.errors import InputError, LedgerError, ToolchainError
from splitverify.ledger import KINDS, Commitments, Ledger, SignalLayout
from splitverify.zk.curve import Q, R
from splitverify.zk.models import Proof
from splitverify.zk.toolchain import Toolchain

from split_cases import SESSION, STEP

COMMITMENTS = Commitments(message=11, gradient=22, weights_before=R - 1, weights_after=0)


def new_session() -> int:
    """A fresh session id as the protocol makes them (below r), so tests sharing a chain never
    collide."""
    return secrets.randbits(250)


@pytest.fixture(scope="module")
def ledger():
    with Ledger.open("embedded") as opened:
        opened.deploy()
        yield opened


# --- recording and reading on the embedded chain -----------------------------------------------


def test_a_recorded_step_reads_back(ledger):
    session = new_session()
    receipt = ledger.record(session, 3, "server_step", COMMITMENTS)
    entry = ledger.entry(session, 3, "server_step")
    assert entry is not None
    assert (entry.session, entry.step, entry.kind) == (session, 3, "server_step")
    assert entry.commitments == COMMITMENTS
    assert entry.submitter == ledger.account
    assert entry.block == receipt.block
    assert entry.verified is False
    assert receipt.function == "record" and receipt.gas_used > 21_000 and receipt.seconds > 0
    assert ledger.receipts[-1] == receipt
    # Other steps and kinds of the same session stay empty; kinds may be given by index.
    assert ledger.entry(session, 4, "server_step") is None
    assert ledger.entry(session, 3, 0) is None


def test_a_duplicate_is_rejected_and_the_first_entry_stands(ledger):
    session = new_session()
    ledger.record(session, 0, "client_forward", COMMITMENTS)
    blocks_before = ledger.w3.eth.block_number
    with pytest.raises(LedgerError) as err:
        ledger.record(session, 0, "client_forward", Commitments(message=1))
    message = str(err.value)
    assert "AlreadyRecorded" in message and f"{session:#x}" in message
    assert "step 0" in message and "client_forward" in message
    assert ledger.w3.eth.block_number == blocks_before  # the preflight refused it: nothing sent
    assert ledger.entry(session, 0, "client_forward").commitments == COMMITMENTS


def test_a_duplicate_sent_anyway_reverts_on_chain(ledger):
    """Without the preflight the transaction is mined and the contract itself reverts it."""
    session = new_session()
    ledger.record(session, 0, "client_forward", COMMITMENTS)
    function = ledger._ledger().functions.record(session, 0, 0, 1, 2, 3, 4)
    with pytest.raises(LedgerError, match=r"reverted in block \d+ \(AlreadyRecorded"):
        ledger._send(function, "record", "duplicate", gas=ledger_module.CALL_GAS_LIMIT,
                     preflight=False)
    assert ledger.entry(session, 0, "client_forward").commitments == COMMITMENTS
    assert len(ledger.events(session)) == 1


def test_events_decode_with_their_fields(ledger):
    session, other = new_session(), new_session()
    first = ledger.record(session, 0, "client_forward", Commitments(message=1, weights_before=2))
    second = ledger.record(session, 0, "server_step", COMMITMENTS)
    ledger.record(other, 0, "client_forward", Commitments(message=3))
    events = ledger.events(session)
    assert [(e.step, e.kind) for e in events] == [(0, "client_forward"), (0, "server_step")]
    assert [e.tx_hash for e in events] == [first.tx_hash, second.tx_hash]
    assert [e.block for e in events] == [first.block, second.block]
    assert events[0].commitments == Commitments(message=1, weights_before=2)
    assert events[1].commitments == COMMITMENTS
    assert all(e.session == session and e.submitter == ledger.account and not e.verified
               for e in events)
    assert events[1].model_dump(exclude={"tx_hash", "log_index"}) == \
        ledger.entry(session, 0, "server_step").model_dump()


@pytest.mark.parametrize("session,step,kind,match", [
    (R, 0, "client_forward", "session"),
    (-1, 0, "client_forward", "session"),
    (1, -1, "client_forward", "step"),
    (1, 2**64, "client_forward", "step"),
    (1, 0, "server", "unknown proof kind"),
    (1, 0, 3, "unknown proof kind"),
    (1, 0, True, "unknown proof kind"),
])
def test_bad_inputs_raise_input_error_before_sending(ledger, session, step, kind, match):
    blocks_before = ledger.w3.eth.block_number
    with pytest.raises(InputError, match=match):
        ledger.record(session, step, kind, COMMITMENTS)
    assert ledger.w3.eth.block_number == blocks_before


@pytest.mark.parametrize("value", [R, R + 5, -1, 2**256, True])
def test_a_commitment_outside_the_field_is_an_input_error(value):
    with pytest.raises(InputError, match=r"commitment weights_after .* \[0, r\)"):
        Commitments(weights_after=value)


def test_other_bad_inputs_are_named(ledger):
    with pytest.raises(InputError, match="ledger.Commitments"):
        ledger.record(1, 0, "client_forward", (1, 2, 3, 4))
    with pytest.raises(InputError, match="zk.Proof"):
        ledger.record_verified(1, 0, "server_step", b"\0" * 256, [0] * 7)
    proof = Proof(pi_a=(1, 2), pi_b=((1, 2), (3, 4)), pi_c=(1, 2))
    with pytest.raises(InputError, match="public signal 1"):
        ledger.record_verified(1, 0, "server_step", proof, [0, R, 0])
    with pytest.raises(InputError, match="unknown ledger backend"):
        Ledger.open("ganache")
    with pytest.raises(InputError, match="not an Ethereum address"):
        ledger.attach("0x1234")
    with pytest.raises(InputError, match="outside"):
        SignalLayout(count=2, session=2)


def test_verified_recording_needs_a_registered_verifier(ledger):
    proof = Proof(pi_a=(1, 2), pi_b=((1, 2), (3, 4)), pi_c=(1, 2))
    with pytest.raises(LedgerError, match=r"NoVerifier\(kind=2 \(client_backward\)\)"):
        ledger.record_verified(1, 0, "client_backward", proof, [0] * 7)


def test_kinds_are_the_circuit_kinds():
    assert KINDS == circuits.KINDS


def test_the_committed_artifact_matches_the_source():
    """Cheap guard (no compiler run): the committed JSON names the source it was built from."""
    compiled = ledger_module.load_ledger_contract()
    assert compiled.compiler.startswith("0.8.37+")
    assert compiled.bytecode.startswith("0x60") and len(compiled.bytecode) > 1000


# --- slow: the compiler, real proofs, anvil (one xdist worker) ---------------------------------


@pytest.mark.xdist_group("ledger")
def test_recompiling_reproduces_the_committed_json(tmp_path):
    out = ledger_module.compile_contracts(tmp_path)
    assert out.read_bytes() == ledger_module.LEDGER_ARTIFACT.read_bytes()


@pytest.fixture(scope="module")
def server_step(tiny_circuits, tiny_case):
    """The tiny ServerStep key, and one honest proof with its statement (session/step of
    split_cases: SESSION, STEP)."""
    proof, statement = tiny_circuits.prove("server_step", tiny_case.inputs["server_step"],
                                           backend="native")
    assert statement == tiny_case.statements["server_step"]
    return tiny_circuits.key("server_step"), proof, statement


def negated_c(proof: Proof) -> Proof:
    """A well-formed proof with C replaced by −C (still on the curve): must not verify."""
    cx, cy = proof.pi_c
    return proof.model_copy(update={"pi_c": (cx, Q - cy)})


@pytest.mark.slow
@pytest.mark.xdist_group("ledger")
def test_on_chain_verification_of_a_real_proof(server_step):
    key, proof, statement = server_step
    with Ledger.open("embedded") as chain:
        chain.deploy()
        # A key of another circuit is refused before anything is deployed.
        with pytest.raises(InputError, match="not those of a client_forward circuit"):
            chain.register_verifier("client_forward", key)
        registration = chain.register_verifier("server_step", key)
        assert chain.registration("server_step") == (registration.verifier, registration.layout)
        assert chain.registration("client_forward") is None
        with pytest.raises(LedgerError, match="VerifierAlreadyRegistered"):
            chain.register_verifier("server_step", key)

        # Tampered: one public signal changed (the loss), or the proof's C negated.
        signals = statement.signals()
        loss_at = circuits.PUBLIC_SIGNALS["server_step"].index("loss")
        wrong = [v + 1 if i == loss_at else v for i, v in enumerate(signals)]
        blocks_before = chain.w3.eth.block_number
        for bad_proof, bad_signals in ((proof, wrong), (negated_c(proof), signals)):
            with pytest.raises(LedgerError, match=r"ProofRejected\(session=0x5e551011, step=7"):
                chain.record_verified(SESSION, STEP, "server_step", bad_proof, bad_signals)
        assert chain.w3.eth.block_number == blocks_before
        # ... and sent anyway: mined, reverted by the contract, nothing recorded.
        with pytest.raises(LedgerError, match=r"reverted in block \d+ \(ProofRejected"):
            chain.record_verified(SESSION, STEP, "server_step", proof, wrong, preflight=False)
        assert chain.w3.eth.block_number == blocks_before + 1
        assert chain.entry(SESSION, STEP, "server_step") is None
        assert chain.events(SESSION) == []
        # The proof binds its session and step: it cannot be filed under another step.
        with pytest.raises(LedgerError, match=r"StepMismatch\(expected=8, inProof=7\)"):
            chain.record_verified(SESSION, STEP + 1, "server_step", proof, statement)

        receipt = chain.record_verified(SESSION, STEP, "server_step", proof, statement)
        entry = chain.entry(SESSION, STEP, "server_step")
        values = statement.values
        assert entry.verified and entry.block == receipt.block
        assert entry.commitments == Commitments(
            message=values["messageCommitment"], gradient=values["gradientCommitment"],
            weights_before=values["weightsBefore"], weights_after=values["weightsAfter"])
        [event] = chain.events(SESSION)
        assert event.verified and event.tx_hash == receipt.tx_hash
        with pytest.raises(LedgerError, match="AlreadyRecorded"):
            chain.record_verified(SESSION, STEP, "server_step", proof, statement)
        # Only the deployer may register verifiers.
        chain.account = chain.w3.eth.accounts[1]
        function = chain._ledger().functions.registerVerifier(
            0, registration.verifier, registration.layout.as_struct())
        with pytest.raises(LedgerError, match=f"NotOwner\\(caller={chain.account}\\)"):
            chain._send(function, "registerVerifier", "registering as another account",
                        gas=ledger_module.CALL_GAS_LIMIT)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.xdist_group("ledger")
def test_on_a_real_anvil_node(server_step):
    key, proof, statement = server_step
    session = new_session()
    with Ledger.open("anvil") as chain:
        pid = chain.node.pid
        assert pid_alive(pid)
        chain.deploy()
        receipt = chain.record(session, 0, "client_forward", COMMITMENTS)
        assert chain.entry(session, 0, "client_forward").commitments == COMMITMENTS
        with pytest.raises(LedgerError, match=r"AlreadyRecorded\(session=0x"):
            chain.record(session, 0, "client_forward", COMMITMENTS)
        [event] = chain.events(session)
        assert event.tx_hash == receipt.tx_hash and event.submitter == chain.account

        chain.register_verifier("server_step", key)
        with pytest.raises(LedgerError, match="ProofRejected"):
            chain.record_verified(SESSION, STEP, "server_step", negated_c(proof), statement)
        chain.record_verified(SESSION, STEP, "server_step", proof, statement)
        assert chain.entry(SESSION, STEP, "server_step").verified

        # The same node through its URL, attached to the deployed contract, sending from a
        # fresh key signed locally (funded by the node's first account).
        from eth_account import Account

        sender = Account.create()
        funding = chain.w3.eth.send_transaction({"from": chain.account, "to": sender.address,
                                                 "value": 10**18})
        chain.w3.eth.wait_for_transaction_receipt(funding)
        with Ledger.open(chain.node.url, address=chain.address,
                         private_key=sender.key.to_0x_hex()) as other:
            assert other.entry(session, 0, "client_forward") == \
                chain.entry(session, 0, "client_forward")
            other.record(session, 1, "client_forward", COMMITMENTS)
            assert chain.entry(session, 1, "client_forward").submitter == sender.address
    assert chain.node is None
    assert not pid_alive(pid)


def test_a_missing_anvil_binary_is_a_toolchain_error(tmp_path, monkeypatch):
    monkeypatch.setattr("splitverify.anvil.find_toolchain", lambda: Toolchain("node", tmp_path))
    with pytest.raises(ToolchainError, match="anvil binary is missing"):
        find_anvil()
    with pytest.raises(ToolchainError, match="anvil binary is missing"):
        AnvilNode()
