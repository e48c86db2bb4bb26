"""The split-learning protocol: the messages and the two parties' logic, independent of the
transport (the FastAPI server and the client SDK carry these messages over HTTP).

    wire.py       the HTTP contract: every message, request and response; ProofMode
    policy.py     the proof-mode policy: what is proven, kept, challenged at a step
    parties.py    the honest ClientParty and ServerParty, their Prover and Verifier
    scenarios.py  the tamper scenarios (--malicious), each a registered subclass of a party
    scenario_catalog.py  their names, sides and help, declared without the parties (the CLI)
    state.py      a party's state as JSON-able data and back
    local.py      both parties in one process (run_local), the transcript's start, the summary
    aggregation.py  SplitFed-V1 rounds: K clients' halves averaged with an Aggregate proof

One step, with proofs on (``every``):

1. client → server ``ForwardMessage``: activations, labels, the message salt, the ClientForward
   statement (commitments) and proof. The server recomputes the message commitment from what it
   received, checks the client's weight commitment continues the chain (step t's "before" is
   step t−1's "after") and the step number, and verifies the proof against that statement.
2. server → client ``GradientMessage``: the activation gradient, its salt, the ServerStep
   statement and proof; the client checks it the same way (its own message commitment, the
   server's weight chain, the gradient's commitment).
3. client → server ``BackwardMessage``: the ClientBackward statement and proof; the server
   checks it refers to the same data, state and weights as step 1 and received its gradient.

``commit``: statements (commitments) travel and chain, nothing is ever proven — what a
ledger without proofs can hold (the blockchain baseline of ``splitverify compare``).
``audit:P``: messages carry statements (commitments) but no proof; once the verifier holds a
statement it draws, from its own randomness, whether to challenge that step (probability P);
a challenged prover must then prove the statement it already committed to. ``off``: no
commitments, no proofs — plain split learning through the same code path (the baseline).
Any failed check raises ``TamperDetected`` (step, party, reason); the session stops.

Every statement travels signed by its sender (:mod:`splitverify.identity`: session, step, kind,
public values, proof or none); the receiver checks the signature against the sender's identity
pinned at the session's creation before anything else, and records it in the transcript.

A party's ``on_statement`` hook (e.g. :class:`splitverify.ledger.sink.LedgerSink`) is called with every
statement the party itself sends — kind, step, public values and proof (None when not proven
now) — exactly as it goes on the wire, cheats included: a ledger holds what was claimed.

The names below are loaded from their submodule when first used, so that a lower module
(:mod:`splitverify.transcript`) can import :mod:`.wire` without loading the parties.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "wire": ("BackwardMessage", "ErrorBody", "ForwardMessage", "GradientMessage",
             "KeyAccepted", "LateProof", "MAX_PREDICT_ROWS", "ProofExchange", "Phase1Accepted", "Predictions", "ProofBody",
             "ProofMode", "PredictRequest", "ProveRequest", "SessionCreate", "SessionCreated",
             "SessionDeleted", "SessionStatus", "StepDone", "StopRecord", "parse_answer",
             "random_field", "statement_digest", "_Message"),
    "parties": ("ClientParty", "ServerParty", "Prover", "Verifier", "ProofRequest",
                "StatementHook"),
    "state": ("params_from_lists", "params_to_lists"),
    "local": ("PartyFigures", "SessionResult", "new_transcript", "run_local",
              "session_summary"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [name for name in _MODULE_OF if not name.startswith("_")] + ["scenarios"]

if TYPE_CHECKING:
    from . import scenarios
    from .local import PartyFigures, SessionResult, new_transcript, run_local, session_summary
    from .parties import ClientParty, ProofRequest, Prover, ServerParty, StatementHook, Verifier
    from .state import params_from_lists, params_to_lists
    from .wire import (MAX_PREDICT_ROWS, BackwardMessage, ErrorBody, ForwardMessage,
                       GradientMessage, KeyAccepted, LateProof, Phase1Accepted, Predictions,
                       PredictRequest, ProofBody, ProofExchange, ProofMode, ProveRequest,
                       SessionCreate, SessionCreated, SessionDeleted, SessionStatus, StepDone,
                       StopRecord, _Message, parse_answer, random_field, statement_digest)


def __getattr__(name: str) -> Any:
    if name == "scenarios":
        return import_module(".scenarios", __name__)
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
