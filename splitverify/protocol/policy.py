"""The proof-mode policy: at a step, what a sender proves and keeps, and what a receiver
challenges and records (:class:`~.wire.ProofMode` lists the modes)."""

from __future__ import annotations

import random

from .wire import ProofMode


def proves_when_sent(mode: ProofMode) -> bool:
    """``every``: a statement leaves with its proof."""
    return mode.kind == "every"


def proves_later(mode: ProofMode) -> bool:
    """``pipelined:W``: a statement leaves at once; its proof is made in the background by the
    sender's pool and delivered (signed with the statement) at most W steps later."""
    return mode.kind == "pipelined"


def lag_bound(mode: ProofMode) -> int | None:
    """How many steps may have a proof outstanding (``pipelined:W``: W); None when proofs are
    never late."""
    return mode.lag if proves_later(mode) else None


def keeps_witness(mode: ProofMode) -> bool:
    """A sender keeps the inputs of its latest statement of each kind when a proof may be asked
    for (``every`` proves from them now, ``audit`` on challenge; ``commit`` and ``off`` never
    prove)."""
    return mode.proves


def draws_challenges(mode: ProofMode) -> bool:
    """``audit``: the receiver draws whether to challenge each statement, binds the challenge
    to the statement drawn on, and records the draw in the transcript."""
    return mode.kind == "audit"


def challenge(mode: ProofMode, rng: random.Random) -> bool:
    """Whether a statement just received must be proven with it: always in ``every``, with
    probability P in ``audit:P`` (one draw of ``rng``), never in ``commit`` and ``off``, nor in
    ``pipelined:W`` (where every proof comes later, see :func:`proves_later`)."""
    if mode.kind == "every":
        return True
    if draws_challenges(mode):
        return rng.random() < mode.probability
    return False
