// SPDX-License-Identifier: GPL-3.0-or-later
// splitverify: verifiable split learning. Copyright (C) splitverify developers.
pragma solidity 0.8.37;

/// @title SplitLedger: an append-only record of the steps of split-learning sessions.
/// @notice One entry per (session, step, kind); kind is the proof kind: 0 client_forward,
/// 1 server_step, 2 client_backward. An entry holds the step's commitments (BN254 scalar-field
/// elements), who submitted it and in which block. `record` stores a party's claim as given;
/// `recordVerified` first runs the kind's registered Groth16 verifier on chain, checks that the
/// proof's session and step signals are the entry's, and takes the commitments from the proof's
/// public signals, so a verified entry says exactly what the proof proves. Entries are never
/// overwritten: the first submission of a (session, step, kind) stands, so readers check
/// `submitter` (anyone can make a plain `record`; a verified one needs a valid proof of that
/// session and step).
contract SplitLedger {
    uint8 public constant KINDS = 3;
    /// Layout index of a field that the kind's public signals do not carry (its entry field is 0).
    uint8 public constant ABSENT = type(uint8).max;
    /// A Groth16 proof as snarkjs' verifier takes it: A.x, A.y, B.x.c1, B.x.c0, B.y.c1, B.y.c0,
    /// C.x, C.y (32-byte words; EIP-197 puts the imaginary part of an Fq2 element first).
    uint256 public constant PROOF_BYTES = 256;
    /// BN254's scalar field: every commitment and public signal of the circuits lies below it.
    uint256 public constant FIELD_MODULUS =
        21888242871839275222246405745257275088548364400416034343698204186575808495617;

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

    struct Registration {
        address verifier;
        bytes4 selector;
        SignalLayout signalLayout;
    }

    address public immutable owner;
    mapping(uint8 kind => Registration) private registrations;
    mapping(bytes32 slot => Entry) private entries;

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
    event VerifierRegistered(uint8 indexed kind, address verifier, uint8 publicSignals);

    error NotOwner(address caller);
    error UnknownKind(uint8 kind);
    error NotAFieldElement(uint256 value);
    error AlreadyRecorded(uint256 session, uint64 step, uint8 kind);
    error VerifierAlreadyRegistered(uint8 kind, address verifier);
    error NotAContract(address verifier);
    error BadLayout(uint8 kind);
    error NoVerifier(uint8 kind);
    error WrongProofLength(uint256 length);
    error WrongSignalCount(uint8 kind, uint256 expected, uint256 got);
    error SessionMismatch(uint256 expected, uint256 inProof);
    error StepMismatch(uint64 expected, uint256 inProof);
    error ProofRejected(uint256 session, uint64 step, uint8 kind);

    constructor() {
        owner = msg.sender;
    }

    modifier knownKind(uint8 kind) {
        if (kind >= KINDS) revert UnknownKind(kind);
        _;
    }

    /// Registers the Groth16 verifier of one kind, once (a later swap would let the owner change
    /// what old and new entries mean).
    ///
    /// Why a low-level call and not an interface: snarkjs' verifier takes `uint[N] _pubSignals`
    /// with N fixed per circuit, so each kind's `verifyProof` has its own signature and selector.
    /// The ABI encoding of fixed-size arrays is their words in order, so the call data is the
    /// selector for N, the 256 proof bytes and the N signals, built from one `uint256[]`; no
    /// adapter contract per N is needed. The selector is derived here from the layout's `count`,
    /// so it cannot disagree with the length check in `recordVerified`.
    function registerVerifier(
        uint8 kind,
        address verifier,
        SignalLayout calldata signalLayout
    ) external knownKind(kind) {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        Registration storage slot = registrations[kind];
        if (slot.verifier != address(0)) revert VerifierAlreadyRegistered(kind, slot.verifier);
        if (verifier.code.length == 0) revert NotAContract(verifier);
        if (!_layoutFits(signalLayout)) revert BadLayout(kind);
        slot.verifier = verifier;
        slot.selector = _verifyProofSelector(signalLayout.count);
        slot.signalLayout = signalLayout;
        emit VerifierRegistered(kind, verifier, signalLayout.count);
    }

    /// Records a party's commitments for one step as given (no proof is checked on chain).
    function record(
        uint256 session,
        uint64 step,
        uint8 kind,
        uint256 message,
        uint256 gradient,
        uint256 weightsBefore,
        uint256 weightsAfter
    ) external knownKind(kind) {
        _requireField(session);
        _requireField(message);
        _requireField(gradient);
        _requireField(weightsBefore);
        _requireField(weightsAfter);
        Entry storage e = _unrecorded(session, step, kind);
        _store(e, session, step, kind, [message, gradient, weightsBefore, weightsAfter], false);
    }

    /// Verifies `proof` for `publicSignals` with the kind's registered verifier and records the
    /// commitments the signals carry; reverts (recording nothing) unless the proof verifies and
    /// its session and step signals equal `session` and `step`.
    function recordVerified(
        uint256 session,
        uint64 step,
        uint8 kind,
        bytes calldata proof,
        uint256[] calldata publicSignals
    ) external knownKind(kind) {
        Registration storage slot = registrations[kind];
        _checkStatement(slot, session, step, kind, proof.length, publicSignals);
        // Before the pairing check, so a duplicate costs little gas.
        Entry storage e = _unrecorded(session, step, kind);
        (bool success, bytes memory result) =
            slot.verifier.staticcall(abi.encodePacked(slot.selector, proof, publicSignals));
        // snarkjs' verifier answers one bool word, false also for unreduced signals and bad points.
        if (!success || result.length != 32 || !abi.decode(result, (bool))) {
            revert ProofRejected(session, step, kind);
        }
        _store(e, session, step, kind, _commitmentsOf(publicSignals, slot.signalLayout), true);
    }

    /// The entry of (session, step, kind); `blockNumber == 0` when there is none.
    function entry(uint256 session, uint64 step, uint8 kind)
        external
        view
        knownKind(kind)
        returns (Entry memory)
    {
        return entries[_slot(session, step, kind)];
    }

    function isRecorded(uint256 session, uint64 step, uint8 kind)
        external
        view
        knownKind(kind)
        returns (bool)
    {
        return entries[_slot(session, step, kind)].blockNumber != 0;
    }

    /// The verifier registered for a kind (address 0 when none) and its signal layout.
    function registration(uint8 kind)
        external
        view
        knownKind(kind)
        returns (address verifier, SignalLayout memory signalLayout)
    {
        Registration storage slot = registrations[kind];
        return (slot.verifier, slot.signalLayout);
    }

    /// Everything about a proof's statement that can be checked before verifying it.
    function _checkStatement(
        Registration storage slot,
        uint256 session,
        uint64 step,
        uint8 kind,
        uint256 proofLength,
        uint256[] calldata publicSignals
    ) private view {
        if (slot.verifier == address(0)) revert NoVerifier(kind);
        if (proofLength != PROOF_BYTES) revert WrongProofLength(proofLength);
        SignalLayout memory signalLayout = slot.signalLayout;
        if (publicSignals.length != signalLayout.count) {
            revert WrongSignalCount(kind, signalLayout.count, publicSignals.length);
        }
        _requireField(session);
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

    /// The empty entry of (session, step, kind); reverts if it was recorded already.
    function _unrecorded(uint256 session, uint64 step, uint8 kind)
        private
        view
        returns (Entry storage e)
    {
        e = entries[_slot(session, step, kind)];
        if (e.blockNumber != 0) revert AlreadyRecorded(session, step, kind);
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

    function _slot(uint256 session, uint64 step, uint8 kind) private pure returns (bytes32) {
        return keccak256(abi.encode(session, step, kind));
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
