"""Typed errors. Every message says what was wrong and what to do about it."""

from __future__ import annotations


class SplitverifyError(Exception):
    """Base class of every error splitverify raises on purpose."""


class ToolchainError(SplitverifyError):
    """A required external tool (node, the pinned npm packages, a native library) is missing
    or failed in a way that is not the user's input."""


class InstallError(SplitverifyError):
    """The installed splitverify distributions do not fit together: shipped data missing, a
    command plug-in that fails to import, or one command name registered twice."""


class CompileError(SplitverifyError):
    """circom rejected a circuit, or solc a contract; the message carries the compiler's own
    report (file and line)."""


class WitnessError(SplitverifyError):
    """The inputs do not satisfy the circuit (or do not fit its input signals)."""

    def __init__(self, message: str, template: str | None = None, line: int | None = None):
        super().__init__(message)
        self.template = template
        self.line = line


class SetupError(SplitverifyError):
    """The trusted setup (powers of tau, zkey, ceremony) could not be made or checked."""


class IntegrityError(SetupError):
    """A file's content does not match the hash it must have (corrupt or substituted)."""


class ProofError(SplitverifyError):
    """A proof could not be produced, or a proof/verification key is malformed."""


class ProverWorkerLost(ProofError):
    """A prover pool's worker (a process, a Ray actor) died or vanished with a job in hand."""


class CacheError(SplitverifyError):
    """The artifact cache is unusable (permissions, a corrupt entry that cannot be rebuilt)."""


class InputError(SplitverifyError):
    """Bad user input to a command or API call (wrong type, out of range, missing file)."""


class LedgerError(SplitverifyError):
    """The Ethereum ledger failed: a transaction reverted (the message names session, step, kind
    and the decoded revert reason), the node is unreachable, or no contract is deployed."""


class LedgerRejected(LedgerError):
    """The contract reverted a transaction (e.g. ``AlreadyRecorded``, ``ProofRejected``):
    the chain's own verdict on what was sent, as opposed to a node or connection failure."""


class LedgerMismatch(LedgerError):
    """What the chain holds for a session disagrees with its ceremony (another key hash, or a
    verifier whose code is not what the key generates): its "verified" entries prove nothing
    about the session's keys."""


class TamperDetected(SplitverifyError):
    """The other party's message does not verify: the session must stop. Records the step, the
    party that detected it (``client``/``server``) and why; in ``pipelined:W``, the step both
    parties rolled back to (``rolled_back_to``, -1: the initial weights) once they have."""

    def __init__(self, step: int, detected_by: str, reason: str,
                 rolled_back_to: int | None = None):
        super().__init__(f"step {step}: {detected_by} detected tampering: {reason}")
        self.step = step
        self.detected_by = detected_by
        self.reason = reason
        self.rolled_back_to = rolled_back_to


class MalformedAnswer(SplitverifyError):
    """A server's answer does not have the shape of the wire contract
    (:mod:`splitverify.protocol.wire`): the message names the fields that are wrong."""
