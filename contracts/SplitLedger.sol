// SPDX-License-Identifier: GPL-3.0-or-later
// splitverify: verifiable split learning. Copyright (C) splitverify developers.
pragma solidity 0.8.37;

/// What SplitLedger needs of a Groth16 verifier besides `verifyProof`: the hash of the key it
/// verifies with (splitverify's keyed verifiers compute it from their own key constants).
interface IKeyedVerifier {
    function verificationKeyHash() external view returns (bytes32);
}

/// @title SplitLedger: an append-only record of the steps of split-learning sessions.
/// @notice Sessions are owned. A session is opened once per pair of parties, with both parties'
/// addresses (client, server) and, per proof kind (0 client_forward, 1 server_step,
/// 2 client_backward), the hash of the verification key the session's ceremony produced, the
/// verifier contract of that key and the layout of its public signals. Both parties agree to
/// these terms: one sends `openSession`, with the other's signature over them. From then on a
/// slot (session, step, kind) is written only by the party that sends that kind of statement
/// (client: kinds 0 and 2; server: kind 1), so nobody else can take a session's slots first.
/// `record` stores a party's claim as given; `recordVerified` first runs the kind's verifier on
/// chain, checks the proof's session and step signals and takes the commitments from the
/// proof's public signals. A verified entry supersedes an unverified one of the same slot; a
/// verified entry is final, and an unverified one never replaces anything.
///
/// The verifier of a kind is bound to the registered key hash: `openSession` refuses a verifier
/// whose `verificationKeyHash()` differs. The chain cannot see that a contract verifies with the
/// key it names, so readers check the verifier's code against the key in the transcript
/// (splitverify.ledger: `Ledger.check_verifier`); nothing here depends on who deployed it.
contract SplitLedger {
    uint8 public constant KINDS = 3;
    uint8 public constant SERVER_KIND = 1; // the kind the server writes; the client writes the others
    /// Layout index of a field that the kind's public signals do not carry (its entry field is 0).
    uint8 public constant ABSENT = type(uint8).max;
    /// A Groth16 proof as snarkjs' verifier takes it: A.x, A.y, B.x.c1, B.x.c0, B.y.c1, B.y.c0,
    /// C.x, C.y (32-byte words; EIP-197 puts the imaginary part of an Fq2 element first).
    uint256 public constant PROOF_BYTES = 256;
    /// BN254's scalar field: every commitment and public signal of the circuits lies below it.
    uint256 public constant FIELD_MODULUS =
        21888242871839275222246405745257275088548364400416034343698204186575808495617;
    /// Half the secp256k1 group order: signatures with a larger s are refused (malleability).
    uint256 private constant SECP256K1_HALF_N =
        0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    struct Entry {
        uint256 message;
        uint256 gradient;
        uint256 weightsBefore;
        uint256 weightsAfter;
        address submitter;
        uint64 blockNumber; // 0 means "no entry": no transaction runs in the genesis block
        bool verified;
    }

    /// Where a kind's public signals carry the session, the step and the four commitments
    /// (an index below `count`, or ABSENT).
    struct SignalLayout {
        uint8 count;
        uint8 session;
        uint8 step;
        uint8 message;
        uint8 gradient;
        uint8 weightsBefore;
        uint8 weightsAfter;
    }

    /// One kind's part of a session's terms. keyHash 0: the session has no key for the kind;
    /// verifier 0: its statements can only be recorded unverified.
    struct KindTerms {
        bytes32 keyHash;
        address verifier;
        SignalLayout signalLayout;
    }

    struct Session {
        address client;
        address server;
        uint64 openedAt; // block number; 0 means "not opened"
        KindTerms[3] kinds;
    }

    /// Openings by their id: keccak256(session, client, server).
    mapping(bytes32 opening => Session) private sessions;
    /// The opening a party belongs to, per session id (one per party and session).
    mapping(uint256 session => mapping(address party => bytes32 opening)) private openingOf;
    mapping(bytes32 slot => Entry) private entries;

    event SessionOpened(
        uint256 indexed session,
        address indexed client,
        address indexed server,
        bytes32[3] keyHashes,
        address[3] verifiers
    );
    event StepRecorded(
        uint256 indexed session,
        uint64 indexed step,
        uint8 indexed kind,
        address submitter,
        uint256 message,
        uint256 gradient,
        uint256 weightsBefore,
        uint256 weightsAfter,
        bool verified
    );

    error UnknownKind(uint8 kind);
    error NotAFieldElement(uint256 value);
    error BadParties(address client, address server);
    error NotAParty(uint256 session, address caller);
    error PartyAlreadyInSession(uint256 session, address party);
    error BadSignature(uint256 session, address expectedSigner, address recovered);
    error NotAContract(address verifier);
    error BadLayout(uint8 kind);
    error NoKeyHash(uint8 kind);
    error VerifierKeyMismatch(uint8 kind, bytes32 registered, bytes32 verifierKey);
    error NotTheWriter(uint256 session, uint8 kind, address caller);
    error AlreadyRecorded(uint256 session, uint64 step, uint8 kind);
    error NoVerifier(uint256 session, uint8 kind);
    error WrongProofLength(uint256 length);
    error WrongSignalCount(uint8 kind, uint256 expected, uint256 got);
    error SessionMismatch(uint256 expected, uint256 inProof);
    error StepMismatch(uint64 expected, uint256 inProof);
    error ProofRejected(uint256 session, uint64 step, uint8 kind);

    modifier knownKind(uint8 kind) {
        if (kind >= KINDS) revert UnknownKind(kind);
        _;
    }

    /// Opens `session` for `client` and `server` on the given terms. The sender is one of the
    /// two; `counterpartSignature` is the other's EIP-191 signature of `termsDigest(...)`.
    /// Each party belongs to one opening per session id, so an opening made by others under
    /// the same id (with their own addresses) neither blocks nor touches this one.
    function openSession(
        uint256 session,
        address client,
        address server,
        KindTerms[3] calldata kinds,
        bytes calldata counterpartSignature
    ) external {
        _requireField(session);
        if (client == address(0) || server == address(0) || client == server) {
            revert BadParties(client, server);
        }
        if (msg.sender != client && msg.sender != server) revert NotAParty(session, msg.sender);
        address counterpart = msg.sender == client ? server : client;
        address signer = _recover(termsDigest(session, client, server, kinds), counterpartSignature);
        if (signer != counterpart) revert BadSignature(session, counterpart, signer);
        for (uint8 kind = 0; kind < KINDS; kind++) {
            _checkKindTerms(kind, kinds[kind]);
        }
        bytes32 opening = keccak256(abi.encode(session, client, server));
        if (openingOf[session][client] != 0) revert PartyAlreadyInSession(session, client);
        if (openingOf[session][server] != 0) revert PartyAlreadyInSession(session, server);
        openingOf[session][client] = opening;
        openingOf[session][server] = opening;
        Session storage s = sessions[opening];
        (s.client, s.server, s.openedAt) = (client, server, uint64(block.number));
        bytes32[3] memory keyHashes;
        address[3] memory verifiers;
        for (uint8 kind = 0; kind < KINDS; kind++) {
            s.kinds[kind] = kinds[kind];
            (keyHashes[kind], verifiers[kind]) = (kinds[kind].keyHash, kinds[kind].verifier);
        }
        emit SessionOpened(session, client, server, keyHashes, verifiers);
    }

    /// What both parties sign to open a session: the terms, this contract and its chain.
    function termsDigest(
        uint256 session,
        address client,
        address server,
        KindTerms[3] calldata kinds
    ) public view returns (bytes32) {
        bytes32 terms = keccak256(abi.encode(block.chainid, address(this), session, client,
                                             server, kinds));
        return keccak256(abi.encodePacked("\x19Ethereum Signed Message:\n32", terms));
    }

    /// Records the sender's commitments for one step as given (no proof is checked on chain).
    function record(
        uint256 session,
        uint64 step,
        uint8 kind,
        uint256 message,
        uint256 gradient,
        uint256 weightsBefore,
        uint256 weightsAfter
    ) external knownKind(kind) {
        _requireField(message);
        _requireField(gradient);
        _requireField(weightsBefore);
        _requireField(weightsAfter);
        (Entry storage e,) = _writableSlot(session, step, kind);
        if (e.blockNumber != 0) revert AlreadyRecorded(session, step, kind);
        _store(e, session, step, kind, [message, gradient, weightsBefore, weightsAfter], false);
    }

    /// Verifies `proof` for `publicSignals` with the session's verifier of the kind and records
    /// the commitments the signals carry, superseding an unverified entry; reverts (recording
    /// nothing) unless the proof verifies and its session and step signals equal `session` and
    /// `step`.
    ///
    /// Why a low-level call and not an interface: snarkjs' verifier takes `uint[N] _pubSignals`
    /// with N fixed per circuit, so each kind's `verifyProof` has its own selector; it is
    /// derived from the layout's `count`, so it cannot disagree with the length check.
    function recordVerified(
        uint256 session,
        uint64 step,
        uint8 kind,
        bytes calldata proof,
        uint256[] calldata publicSignals
    ) external knownKind(kind) {
        (Entry storage e, KindTerms storage terms) = _writableSlot(session, step, kind);
        // Before the pairing check, so a duplicate costs little gas.
        if (e.verified) revert AlreadyRecorded(session, step, kind);
        _checkStatement(terms, session, step, kind, proof.length, publicSignals);
        (bool success, bytes memory result) = terms.verifier.staticcall(abi.encodePacked(
            _verifyProofSelector(terms.signalLayout.count), proof, publicSignals));
        // snarkjs' verifier answers one bool word, false also for unreduced signals and bad points.
        if (!success || result.length != 32 || !abi.decode(result, (bool))) {
            revert ProofRejected(session, step, kind);
        }
        _store(e, session, step, kind, _commitmentsOf(publicSignals, terms.signalLayout), true);
    }

    /// The entry of (session, step, kind) in the opening `party` belongs to;
    /// `blockNumber == 0` when there is none.
    function entry(uint256 session, address party, uint64 step, uint8 kind)
        external
        view
        knownKind(kind)
        returns (Entry memory)
    {
        return entries[_slot(openingOf[session][party], step, kind)];
    }

    /// The opening of `session` that `party` belongs to (`openedAt == 0` when none).
    function sessionOf(uint256 session, address party) external view returns (Session memory) {
        return sessions[openingOf[session][party]];
    }

    function _checkKindTerms(uint8 kind, KindTerms calldata terms) private view {
        if (terms.verifier == address(0)) return;
        if (terms.keyHash == 0) revert NoKeyHash(kind);
        if (terms.verifier.code.length == 0) revert NotAContract(terms.verifier);
        if (!_layoutFits(terms.signalLayout)) revert BadLayout(kind);
        (bool success, bytes memory result) = terms.verifier.staticcall(
            abi.encodeCall(IKeyedVerifier.verificationKeyHash, ()));
        bytes32 verifierKey = success && result.length == 32 ? abi.decode(result, (bytes32)) : bytes32(0);
        if (verifierKey != terms.keyHash) revert VerifierKeyMismatch(kind, terms.keyHash, verifierKey);
    }

    /// The slot the sender may write, and its kind's terms; reverts unless the sender is the
    /// party of its session that sends statements of this kind.
    function _writableSlot(uint256 session, uint64 step, uint8 kind)
        private
        view
        returns (Entry storage e, KindTerms storage terms)
    {
        bytes32 opening = openingOf[session][msg.sender];
        if (opening == 0) revert NotAParty(session, msg.sender);
        Session storage s = sessions[opening];
        address writer = kind == SERVER_KIND ? s.server : s.client;
        if (msg.sender != writer) revert NotTheWriter(session, kind, msg.sender);
        return (entries[_slot(opening, step, kind)], s.kinds[kind]);
    }

    /// Everything about a proof's statement that can be checked before verifying it.
    function _checkStatement(
        KindTerms storage terms,
        uint256 session,
        uint64 step,
        uint8 kind,
        uint256 proofLength,
        uint256[] calldata publicSignals
    ) private view {
        if (terms.verifier == address(0)) revert NoVerifier(session, kind);
        if (proofLength != PROOF_BYTES) revert WrongProofLength(proofLength);
        SignalLayout memory signalLayout = terms.signalLayout;
        if (publicSignals.length != signalLayout.count) {
            revert WrongSignalCount(kind, signalLayout.count, publicSignals.length);
        }
        uint8 sessionAt = signalLayout.session;
        if (sessionAt != ABSENT && publicSignals[sessionAt] != session) {
            revert SessionMismatch(session, publicSignals[sessionAt]);
        }
        uint8 stepAt = signalLayout.step;
        if (stepAt != ABSENT && publicSignals[stepAt] != step) {
            revert StepMismatch(step, publicSignals[stepAt]);
        }
    }

    function _commitmentsOf(uint256[] calldata signals, SignalLayout storage signalLayout)
        private
        view
        returns (uint256[4] memory)
    {
        return [
            _signal(signals, signalLayout.message),
            _signal(signals, signalLayout.gradient),
            _signal(signals, signalLayout.weightsBefore),
            _signal(signals, signalLayout.weightsAfter)
        ];
    }

    function _store(
        Entry storage e,
        uint256 session,
        uint64 step,
        uint8 kind,
        uint256[4] memory c,
        bool verified
    ) private {
        (e.message, e.gradient, e.weightsBefore, e.weightsAfter) = (c[0], c[1], c[2], c[3]);
        (e.submitter, e.blockNumber, e.verified) = (msg.sender, uint64(block.number), verified);
        emit StepRecorded(session, step, kind, msg.sender, c[0], c[1], c[2], c[3], verified);
    }

    function _slot(bytes32 opening, uint64 step, uint8 kind) private pure returns (bytes32) {
        return keccak256(abi.encode(opening, step, kind));
    }

    /// The signer of an EIP-191 digest (address 0 for a malformed signature).
    function _recover(bytes32 digest, bytes calldata signature) private pure returns (address) {
        if (signature.length != 65) return address(0);
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        if (uint256(s) > SECP256K1_HALF_N || (v != 27 && v != 28)) return address(0);
        return ecrecover(digest, v, r, s);
    }

    function _requireField(uint256 value) private pure {
        if (value >= FIELD_MODULUS) revert NotAFieldElement(value);
    }

    function _signal(uint256[] calldata signals, uint8 index) private pure returns (uint256) {
        return index == ABSENT ? 0 : signals[index];
    }

    function _layoutFits(SignalLayout calldata signalLayout) private pure returns (bool) {
        uint8 n = signalLayout.count;
        if (n == 0 || n == ABSENT) return false;
        uint8[6] memory indices = [
            signalLayout.session,
            signalLayout.step,
            signalLayout.message,
            signalLayout.gradient,
            signalLayout.weightsBefore,
            signalLayout.weightsAfter
        ];
        for (uint256 i = 0; i < indices.length; i++) {
            if (indices[i] != ABSENT && indices[i] >= n) return false;
        }
        return true;
    }

    /// The selector of snarkjs' `verifyProof(uint[2],uint[2][2],uint[2],uint[n])`.
    function _verifyProofSelector(uint8 n) private pure returns (bytes4) {
        return bytes4(keccak256(abi.encodePacked(
            "verifyProof(uint256[2],uint256[2][2],uint256[2],uint256[", _decimal(n), "])"
        )));
    }

    function _decimal(uint8 value) private pure returns (bytes memory out) {
        if (value >= 100) out = abi.encodePacked(bytes1(uint8(48 + value / 100)));
        if (value >= 10) out = abi.encodePacked(out, bytes1(uint8(48 + (value / 10) % 10)));
        out = abi.encodePacked(out, bytes1(uint8(48 + value % 10)));
    }
}
