"""The Ethereum ledger: SplitLedger.sol through splitverify.ledger on the embedded chain
(eth-tester on py-evm) and on a real anvil node. Sessions are owned: each test opens its session
for a client and a server account (each sending its own transactions) and a third account tries
to take its slots. On-chain verification uses a real Groth16 key and proof of the tiny split
model's ServerStep circuit (``tiny_circuits``, ``tiny_case``), and its keyed verifier."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass

import pytest
from eth_account import Account
from eth_utils import keccak

from splitverify import circuitgen
from splitverify.ledger import contract as ledger_module
from splitverify.ledger.anvil import AnvilNode, find_anvil
from splitverify.errors import InputError, LedgerError, LedgerMismatch, ToolchainError
from splitverify.ledger.keyed_verifier import keyed_verifier_source, verification_key_hash
from splitverify.ledger import KINDS, Commitments, KindTerms, Ledger, SessionTerms, SignalLayout
from splitverify.ledger.solc import compile_source
from splitverify.transcript import Transcript
from splitverify.zk.curve import Q, R
from splitverify.zk.models import Proof
from splitverify.zk.toolchain import Toolchain
from splitverify.zk.verifier import export_verification_key

from split_cases import SESSION, STEP

COMMITMENTS = Commitments(message=11, gradient=22, weights_before=R - 1, weights_after=0)


def new_session() -> int:
    """A fresh session id as the protocol makes them (below r), so tests sharing a chain never
    collide."""
    return secrets.randbits(250)


@dataclass
class Parties:
    """One chain seen from the deployer, a session's client and server, and a third account."""
    chain: Ledger
    client: Ledger
    server: Ledger
    third: Ledger

    def open(self, session: int, **terms) -> SessionTerms:
        """Open ``session`` for client and server (the client sends, the server signs)."""
        agreed = SessionTerms.of(session, self.client.account, self.server.account, **terms)
        self.client.open_session(agreed, self.server.sign_terms(agreed))
        return agreed


def parties_on(chain: Ledger) -> Parties:
    views = []
    for _ in range(3):
        account = Account.create()
        chain.fund(account.address)
        views.append(chain.with_account(account.key))
    return Parties(chain, *views)


@pytest.fixture(scope="module")
def ledger():
    with Ledger.open("embedded") as opened:
        opened.deploy()
        yield opened


@pytest.fixture(scope="module")
def parties(ledger) -> Parties:
    return parties_on(ledger)


# --- recording and reading on the embedded chain -----------------------------------------------


def test_a_recorded_step_reads_back(parties):
    session = new_session()
    parties.open(session)
    receipt = parties.server.record(session, 3, "server_step", COMMITMENTS)
    entry = parties.chain.entry(session, 3, "server_step", party=parties.client.account)
    assert entry is not None
    assert (entry.session, entry.step, entry.kind) == (session, 3, "server_step")
    assert entry.commitments == COMMITMENTS
    assert entry.submitter == parties.server.account
    assert entry.block == receipt.block
    assert entry.verified is False
    assert receipt.function == "record" and receipt.gas_used > 21_000 and receipt.seconds > 0
    assert parties.chain.receipts[-1] == receipt
    # Either party finds the opening; other steps and kinds stay empty; kinds by index too.
    assert parties.server.entry(session, 3, "server_step") == entry
    assert parties.server.entry(session, 4, "server_step") is None
    assert parties.server.entry(session, 3, 0) is None
    info = parties.chain.session(session, parties.server.account)
    assert (info.client, info.server) == (parties.client.account, parties.server.account)
    assert set(info.verifiers.values()) == {None}


def test_a_duplicate_is_rejected_and_the_first_entry_stands(parties):
    session = new_session()
    parties.open(session)
    parties.client.record(session, 0, "client_forward", COMMITMENTS)
    blocks_before = parties.chain.w3.eth.block_number
    with pytest.raises(LedgerError) as err:
        parties.client.record(session, 0, "client_forward", Commitments(message=1))
    message = str(err.value)
    assert "AlreadyRecorded" in message and f"{session:#x}" in message
    assert "step 0" in message and "client_forward" in message
    assert parties.chain.w3.eth.block_number == blocks_before  # refused in the preflight
    assert parties.client.entry(session, 0, "client_forward").commitments == COMMITMENTS


def test_a_duplicate_sent_anyway_reverts_on_chain(parties):
    """Without the preflight the transaction is mined and the contract itself reverts it."""
    session = new_session()
    parties.open(session)
    client = parties.client
    client.record(session, 0, "client_forward", COMMITMENTS)
    function = client._ledger().functions.record(session, 0, 0, 1, 2, 3, 4)
    with pytest.raises(LedgerError, match=r"reverted in block \d+ \(AlreadyRecorded"):
        client._send(function, "record", "duplicate", gas=ledger_module.CALL_GAS_LIMIT,
                     preflight=False)
    assert client.entry(session, 0, "client_forward").commitments == COMMITMENTS
    assert len(client.events(session)) == 1


def test_events_decode_with_their_fields(parties):
    session, other = new_session(), new_session()
    parties.open(session)
    parties.open(other)
    first = parties.client.record(session, 0, "client_forward",
                                  Commitments(message=1, weights_before=2))
    second = parties.server.record(session, 0, "server_step", COMMITMENTS)
    parties.client.record(other, 0, "client_forward", Commitments(message=3))
    events = parties.chain.events(session)
    assert [(e.step, e.kind) for e in events] == [(0, "client_forward"), (0, "server_step")]
    assert [e.tx_hash for e in events] == [first.tx_hash, second.tx_hash]
    assert [e.block for e in events] == [first.block, second.block]
    assert [e.submitter for e in events] == [parties.client.account, parties.server.account]
    assert events[0].commitments == Commitments(message=1, weights_before=2)
    assert events[1].commitments == COMMITMENTS
    assert all(e.session == session and not e.verified for e in events)
    assert events[1].model_dump(exclude={"tx_hash", "log_index"}) == \
        parties.server.entry(session, 0, "server_step").model_dump()


def test_a_third_account_cannot_take_a_sessions_slots(parties):
    """Squatting: a third account that knows the session id records nothing in it, before or
    after it is opened, and cannot open it for the honest parties without their signatures;
    a session it opens under the same id with its own accounts is a separate opening that
    leaves the honest one untouched."""
    session = new_session()
    client, server, third = parties.client, parties.server, parties.third
    for kind in KINDS:
        with pytest.raises(LedgerError, match=rf"NotAParty\(session={session:#x}, "
                                              rf"caller={third.account}\)"):
            third.record(session, 0, kind, COMMITMENTS)
    # Opening for the honest pair needs the counterpart's signature, not the third's.
    terms = SessionTerms.of(session, client.account, server.account)
    with pytest.raises(LedgerError, match=rf"NotAParty\(session={session:#x}"):
        third.open_session(terms, server.sign_terms(terms))
    with pytest.raises(LedgerError, match=rf"BadSignature\(session={session:#x}, "
                                          rf"expectedSigner={server.account}, "
                                          rf"recovered={third.account}\)"):
        client.open_session(terms, third.sign_terms(terms))
    # The signature binds every term: signed for another session, it recovers someone else.
    elsewhere = SessionTerms.of(session + 1, client.account, server.account)
    with pytest.raises(LedgerError, match="BadSignature"):
        client.open_session(terms, server.sign_terms(elsewhere))
    # The third account opens the same id with its own second account: allowed, separate.
    accomplice = parties_on(parties.chain).client
    own = SessionTerms.of(session, third.account, accomplice.account)
    third.open_session(own, accomplice.sign_terms(own))
    third.record(session, 0, "client_forward", Commitments(message=666))
    parties.open(session)                    # the honest parties are not blocked
    with pytest.raises(LedgerError, match=rf"PartyAlreadyInSession\(session={session:#x}, "
                                          rf"party={client.account}\)"):
        parties.open(session)
    assert client.entry(session, 0, "client_forward") is None
    client.record(session, 0, "client_forward", COMMITMENTS)
    assert client.entry(session, 0, "client_forward").commitments == COMMITMENTS
    assert third.entry(session, 0, "client_forward").commitments == Commitments(message=666)
    # Within the opening, each kind is written only by the party that sends it.
    with pytest.raises(LedgerError, match=r"NotTheWriter\(.*kind=1 \(server_step\)"):
        client.record(session, 0, "server_step", COMMITMENTS)
    with pytest.raises(LedgerError, match=r"NotTheWriter\(.*kind=2 \(client_backward\)"):
        server.record(session, 0, "client_backward", COMMITMENTS)
    third.record(session, 1, "client_forward", COMMITMENTS)  # lands in its own opening only
    assert client.entry(session, 1, "client_forward") is None


def test_the_signed_digest_is_the_contracts(parties):
    """The digest computed here (what a party signs) is the one the contract recovers from."""
    terms = SessionTerms.of(new_session(), parties.client.account, parties.server.account)
    on_chain = parties.chain._ledger().functions.termsDigest(*terms.as_args()).call()
    local = keccak(b"\x19Ethereum Signed Message:\n32" + parties.chain.terms_digest(terms))
    assert bytes(on_chain) == local
    with pytest.raises(InputError, match="65 bytes"):
        parties.client.open_session(terms, b"\0" * 64)
    with pytest.raises(InputError, match="not a local key"):
        parties.chain.sign_terms(terms)      # the node's account: no key here to sign with


@pytest.mark.parametrize("session,step,kind,match", [
    (R, 0, "client_forward", "session"),
    (-1, 0, "client_forward", "session"),
    (1, -1, "client_forward", "step"),
    (1, 2**64, "client_forward", "step"),
    (1, 0, "server", "unknown proof kind"),
    (1, 0, 3, "unknown proof kind"),
    (1, 0, True, "unknown proof kind"),
])
def test_bad_inputs_raise_input_error_before_sending(parties, session, step, kind, match):
    blocks_before = parties.chain.w3.eth.block_number
    with pytest.raises(InputError, match=match):
        parties.client.record(session, step, kind, COMMITMENTS)
    assert parties.chain.w3.eth.block_number == blocks_before


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
    with pytest.raises(InputError, match="party 'bob' is not an Ethereum address"):
        ledger.entry(1, 0, "client_forward", party="bob")
    with pytest.raises(InputError, match="secp256k1"):
        ledger.with_account("0x1234")
    with pytest.raises(InputError, match="verifier and its signal layout together"):
        KindTerms(bytes(32), ledger.account, None)


def test_a_connection_without_an_account_only_reads(parties):
    """A reader on a node with no unlocked account (and no key) reads entries; sending is
    refused by name."""
    session = new_session()
    parties.open(session)
    parties.client.record(session, 0, "client_forward", COMMITMENTS)
    reader = Ledger(parties.chain.w3, "embedded", None)
    reader.attach(parties.chain.address)
    assert reader.entry(session, 0, "client_forward",
                        party=parties.server.account).commitments == COMMITMENTS
    with pytest.raises(InputError, match="no account: pass party="):
        reader.entry(session, 0, "client_forward")
    with pytest.raises(LedgerError, match="no unlocked account to send from"):
        reader.record(session, 1, "client_forward", COMMITMENTS)


def test_verified_recording_needs_the_sessions_verifier(parties):
    session = new_session()
    parties.open(session)
    proof = Proof(pi_a=(1, 2), pi_b=((1, 2), (3, 4)), pi_c=(1, 2))
    with pytest.raises(LedgerError, match=rf"NoVerifier\(session={session:#x}, "
                                          r"kind=2 \(client_backward\)\)"):
        parties.client.record_verified(session, 0, "client_backward", proof, [0] * 7)


def test_kinds_are_the_circuit_kinds():
    assert KINDS == circuitgen.KINDS


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


@pytest.fixture(scope="module")
def server_vk(server_step):
    return export_verification_key(server_step[0])


@pytest.mark.slow
@pytest.mark.xdist_group("ledger")
def test_on_chain_verification_of_a_real_proof(server_step, server_vk):
    key, proof, statement = server_step
    with Ledger.open("embedded") as chain:
        chain.deploy()
        p = parties_on(chain)
        # A key of another circuit is refused before anything is deployed.
        with pytest.raises(InputError, match="not those of a client_forward circuit"):
            p.server.deploy_verifier("client_forward", key)
        deployed = p.server.deploy_verifier("server_step", key)
        assert deployed.key_hash == verification_key_hash(server_vk)
        assert p.client.deploy_verifier("server_step", server_vk) == deployed  # once per key
        # The verifier hashes its own key constants exactly as the reader does.
        verifier = chain.w3.eth.contract(address=deployed.verifier, abi=[{
            "type": "function", "name": "verificationKeyHash", "stateMutability": "pure",
            "inputs": [], "outputs": [{"name": "", "type": "bytes32"}]}])
        assert bytes(verifier.functions.verificationKeyHash().call()) == deployed.key_hash
        p.open(SESSION, keys={"server_step": server_vk}, verifiers={"server_step": deployed})
        assert chain.check_verifier(SESSION, "server_step", server_vk,
                                    party=p.client.account) == deployed.verifier

        # Tampered: one public signal changed (the loss), or the proof's C negated.
        signals = statement.signals()
        loss_at = circuitgen.PUBLIC_SIGNALS["server_step"].index("loss")
        wrong = [v + 1 if i == loss_at else v for i, v in enumerate(signals)]
        blocks_before = chain.w3.eth.block_number
        for bad_proof, bad_signals in ((proof, wrong), (negated_c(proof), signals)):
            with pytest.raises(LedgerError, match=r"ProofRejected\(session=0x5e551011, step=7"):
                p.server.record_verified(SESSION, STEP, "server_step", bad_proof, bad_signals)
        assert chain.w3.eth.block_number == blocks_before
        # ... and sent anyway: mined, reverted by the contract, nothing recorded.
        with pytest.raises(LedgerError, match=r"reverted in block \d+ \(ProofRejected"):
            p.server.record_verified(SESSION, STEP, "server_step", proof, wrong, preflight=False)
        assert chain.w3.eth.block_number == blocks_before + 1
        assert p.server.entry(SESSION, STEP, "server_step") is None
        assert chain.events(SESSION) == []
        # The proof binds its session and step: it cannot be filed under another step.
        with pytest.raises(LedgerError, match=r"StepMismatch\(expected=8, inProof=7\)"):
            p.server.record_verified(SESSION, STEP + 1, "server_step", proof, statement)
        # A valid proof is no key to someone else's slot: the third account and the client.
        with pytest.raises(LedgerError, match="NotAParty"):
            p.third.record_verified(SESSION, STEP, "server_step", proof, statement)
        with pytest.raises(LedgerError, match="NotTheWriter"):
            p.client.record_verified(SESSION, STEP, "server_step", proof, statement)

        # The server's unverified claim is superseded by its verified entry, never the reverse.
        p.server.record(SESSION, STEP, "server_step", Commitments(message=1))
        receipt = p.server.record_verified(SESSION, STEP, "server_step", proof, statement)
        entry = p.server.entry(SESSION, STEP, "server_step")
        values = statement.values
        assert entry.verified and entry.block == receipt.block
        assert entry.commitments == Commitments(
            message=values["messageCommitment"], gradient=values["gradientCommitment"],
            weights_before=values["weightsBefore"], weights_after=values["weightsAfter"])
        claimed, verified = chain.events(SESSION)
        assert (claimed.verified, verified.verified) == (False, True)
        assert verified.tx_hash == receipt.tx_hash
        for again in (lambda: p.server.record_verified(SESSION, STEP, "server_step", proof,
                                                       statement),
                      lambda: p.server.record(SESSION, STEP, "server_step", COMMITMENTS)):
            with pytest.raises(LedgerError, match="AlreadyRecorded"):
                again()
        assert p.server.entry(SESSION, STEP, "server_step") == entry


def forged_key(vk):
    """The honest key with delta set to gamma (issue 13: then anyone can forge proofs)."""
    return vk.model_copy(update={"vk_delta_2": vk.vk_gamma_2})


def lying_verifier_source(forged_vk, claimed_hash: bytes) -> str:
    """A verifier of ``forged_vk`` that declares ``claimed_hash`` as its key hash."""
    source = keyed_verifier_source(forged_vk, "ServerStepVerifier")
    start = source.index("            let p := mload(0x40)")
    end = source.index("keyHash := keccak256(p,")
    end = source.index("\n", end)
    return source[:start] + f"            keyHash := 0x{claimed_hash.hex()}" + source[end:]


@pytest.mark.slow
@pytest.mark.xdist_group("ledger")
def test_a_verifier_not_of_the_sessions_key_is_refused_or_detected(server_vk):
    """Self-certification: a party that deploys the verifier cannot make "verified" mean its own
    key. A verifier of another key than the registered hash is refused by the chain; one that
    lies about its key passes the chain but not the reader's code check; a session registered
    with another key hash fails the reader's hash check against the ceremony's key."""
    forged = forged_key(server_vk)
    honest_hash = verification_key_hash(server_vk)
    assert verification_key_hash(forged) != honest_hash
    with Ledger.open("embedded") as chain:
        chain.deploy()
        p = parties_on(chain)
        of_forged = p.client.deploy_verifier("server_step", forged)
        # SessionTerms.of refuses to pair the session's key with another key's verifier ...
        with pytest.raises(InputError, match="is for key hash"):
            SessionTerms.of(1, p.client.account, p.server.account,
                            keys={"server_step": server_vk}, verifiers={"server_step": of_forged})
        # ... and so does the chain, when the terms are made by hand.
        session = new_session()
        terms = SessionTerms(session, p.client.account, p.server.account, (
            KindTerms(), KindTerms(honest_hash, of_forged.verifier, of_forged.layout), KindTerms()))
        with pytest.raises(LedgerError, match=r"VerifierKeyMismatch\(kind=1 \(server_step\)"):
            p.client.open_session(terms, p.server.sign_terms(terms))
        assert chain.session(session, p.client.account) is None

        # A verifier that claims the honest hash but checks proofs with the forged key.
        lying = compile_source(lying_verifier_source(forged, honest_hash),
                               "Verifier.sol")["ServerStepVerifier"]
        _, lying_address = p.client._deploy(lying, "deploying a lying verifier")
        terms = SessionTerms(session, p.client.account, p.server.account, (
            KindTerms(), KindTerms(honest_hash, lying_address, of_forged.layout), KindTerms()))
        p.client.open_session(terms, p.server.sign_terms(terms))   # the chain cannot tell
        with pytest.raises(LedgerMismatch, match=f"verifier at {lying_address} is not the "
                                                 "verifier the ceremony's key generates"):
            chain.check_verifier(session, "server_step", server_vk, party=p.server.account)
        with pytest.raises(LedgerMismatch, match="not the verifier"):
            chain.check_session_keys(session, {"server_step": server_vk.to_snarkjs()},
                                     party=p.client.account)

        # A session registered with the forged key (its own, honest-looking verifier).
        other = new_session()
        p.open(other, keys={"server_step": forged}, verifiers={"server_step": of_forged})
        with pytest.raises(LedgerMismatch, match=rf"binds the server_step kind to key hash "
                                                 rf"0x{of_forged.key_hash.hex()}"):
            chain.check_verifier(other, "server_step", server_vk, party=p.client.account)
        with pytest.raises(LedgerError, match="was not opened"):
            chain.check_verifier(new_session(), "server_step", server_vk,
                                 party=p.client.account)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.xdist_group("ledger")
def test_on_a_real_anvil_node(server_step, tmp_path, capsys):
    key, proof, statement = server_step
    session = new_session()
    with Ledger.open("anvil") as chain:
        pid = chain.node.pid
        assert pid_alive(pid)
        chain.deploy()
        p = parties_on(chain)
        with pytest.raises(LedgerError, match=r"NotAParty\(session=0x"):
            p.third.record(session, 0, "client_forward", COMMITMENTS)
        p.open(session)
        receipt = p.client.record(session, 0, "client_forward", COMMITMENTS)
        assert p.client.entry(session, 0, "client_forward").commitments == COMMITMENTS
        with pytest.raises(LedgerError, match=r"AlreadyRecorded\(session=0x"):
            p.client.record(session, 0, "client_forward", COMMITMENTS)
        [event] = chain.events(session)
        assert event.tx_hash == receipt.tx_hash and event.submitter == p.client.account

        deployed = p.server.deploy_verifier("server_step", key)
        vk = export_verification_key(key)
        p.open(SESSION, keys={"server_step": vk}, verifiers={"server_step": deployed})
        with pytest.raises(LedgerError, match="ProofRejected"):
            p.server.record_verified(SESSION, STEP, "server_step", negated_c(proof), statement)
        p.server.record(SESSION, STEP, "server_step", COMMITMENTS)
        p.server.record_verified(SESSION, STEP, "server_step", proof, statement)
        assert p.server.entry(SESSION, STEP, "server_step").verified
        assert chain.check_verifier(SESSION, "server_step", vk, party=p.client.account)

        # A reader with the session's transcript checks the chain from outside this process.
        check = ["check", "--node", chain.node.url, "--address", chain.address,
                 "--party", p.client.account, "--transcript"]
        for name, key_of_transcript, code in (("honest", vk, 0), ("forged", forged_key(vk), 3)):
            path = tmp_path / f"{name}.json"
            Transcript(session_id=SESSION, spec="tiny", proof_mode="every", verification_keys={
                "server_step": key_of_transcript.to_snarkjs()}).save(path)
            assert ledger_module.main([*check, str(path)]) == code
        out = capsys.readouterr().out
        assert f"verifier {deployed.verifier} is exactly the key's keyed verifier" in out
        assert "MISMATCH" in out and "binds the server_step kind to key hash" in out

        # The same node through its URL, attached to the deployed contract, sending from the
        # client's key signed locally.
        with Ledger.open(chain.node.url, address=chain.address,
                         private_key=p.client.signing_key) as other:
            assert other.entry(session, 0, "client_forward") == \
                p.client.entry(session, 0, "client_forward")
            other.record(session, 1, "client_forward", COMMITMENTS)
            assert chain.entry(session, 1, "client_forward",
                               party=p.server.account).submitter == p.client.account
    assert chain.node is None
    assert not pid_alive(pid)


def test_a_missing_anvil_binary_is_a_toolchain_error(tmp_path, monkeypatch):
    monkeypatch.setattr("splitverify.ledger.anvil.find_toolchain", lambda: Toolchain("node", tmp_path))
    with pytest.raises(ToolchainError, match="anvil binary is missing"):
        find_anvil()
    with pytest.raises(ToolchainError, match="anvil binary is missing"):
        AnvilNode()
