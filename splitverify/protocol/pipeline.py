"""``pipelined:W``: statements travel at once, their proofs follow (issue 18).

A sender hands the proof of each statement it sends to its prover pool as the message leaves
(:class:`OutboundProofs`) and delivers the proof, signed together with the statement, when it
is made (:class:`~.wire.LateProof`, in a :class:`~.wire.ProofExchange`). The receiver holds
every statement it checked and signed for until its proof comes (:class:`InboundProofs`) and
verifies the proof against that very statement. The lag bound: before step t begins, every
proof of the steps up to t − W must have been delivered and verified on both sides, so at most W
steps have a proof outstanding; a party waits for its own proofs of those steps, and a proof of
the other party's that fails or has not come is tampering at that proof's step.

Each party keeps its weights at the end of the steps whose proofs may still fail
(:class:`Checkpoints`): on tampering both go back to the end of the last step whose proofs all
verified, so a cheat's effects live at most W steps.

Everything here is JSON-able state of its party (``snapshot``/``restore``): a restarted party
re-submits the proofs it still owes and waits for the ones it is still owed.
"""

from __future__ import annotations

from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

from ..circuitgen import Statement
from ..errors import ProofError
from ..model import Params
from ..pool import ProofJob, ProofResult, ProverPool, checked
from .state import params_from_lists, params_to_lists

Key = tuple[str, int]           # (circuit kind, step) of one statement


class OutboundProofs:
    """The proofs a sender still owes: each statement's job (its witness inputs and the
    statement its prover proves), the public values it signed and sent (a cheating sender's may
    differ: its proof then fails at the receiver), and the pool's future, until the receiver
    says it verified the proof."""

    def __init__(self) -> None:
        self.jobs: dict[Key, ProofJob] = {}
        self.sent: dict[Key, dict[str, int]] = {}
        self.futures: dict[Key, Future[ProofResult]] = {}
        self.timed: set[Key] = set()    # proofs whose proving time is already reported

    def submit(self, pool: ProverPool, job: ProofJob) -> None:
        key = (job.kind, job.step)
        self.jobs[key] = job
        self.futures[key] = pool.submit(job)

    def resubmit(self, pool: ProverPool) -> None:
        """After a restart: the proofs still owed go to the pool again (their futures were lost
        with the process)."""
        for key, job in sorted(self.jobs.items(), key=lambda item: item[0][1]):
            if key not in self.futures:
                self.futures[key] = pool.submit(job)

    def record_sent(self, kind: str, step: int, public: dict[str, int]) -> None:
        if (kind, step) in self.jobs:
            self.sent[(kind, step)] = dict(public)

    def ready(self, through_step: int, timeout: float | None) -> list[tuple[ProofResult,
                                                                           dict[str, int]]]:
        """The proofs made so far, each checked to be its job's, with the public values sent
        for it; those of steps up to ``through_step`` are waited for (``timeout`` seconds in
        all)."""
        out = []
        for key in sorted(self.futures, key=lambda k: (k[1], k[0])):
            future = self.futures[key]
            if key[1] <= through_step:
                try:
                    future.result(timeout)
                except FutureTimeout as exc:
                    raise ProofError(f"the prover pool did not make the {key[0]} proof of step "
                                     f"{key[1]} within {timeout:g} s") from exc
            if future.done() and key in self.sent:
                out.append((checked(self.jobs[key], future.result()), self.sent[key]))
        return out

    def acknowledge(self, keys: list[Key]) -> None:
        """The receiver verified these proofs: they are owed no more."""
        for key in keys:
            self.jobs.pop(key, None)
            self.sent.pop(key, None)
            self.futures.pop(key, None)
            self.timed.discard(key)

    def steps(self) -> set[int]:
        return {step for _, step in self.jobs}

    def snapshot(self) -> list:
        return [[kind, step, dict(job.inputs), job.statement.values, self.sent.get((kind, step))]
                for (kind, step), job in self.jobs.items()]

    def restore(self, rows: list, session_id: int) -> None:
        """The owed proofs as stored; a proof already in the making for the same statement
        (a party reloaded after a refused message) is kept, not made again."""
        jobs, futures = self.jobs, self.futures
        self.jobs, self.sent, self.futures = {}, {}, {}
        for kind, step, inputs, values, sent in rows:
            job = ProofJob(session_id, kind, step, Statement(kind, values), inputs)
            self.jobs[(kind, step)] = job
            if sent is not None:
                self.sent[(kind, step)] = sent
            before = jobs.get((kind, step))
            if before is not None and before.statement == job.statement \
                    and (kind, step) in futures:
                self.futures[(kind, step)] = futures[(kind, step)]
        self.timed &= set(self.futures)


class InboundProofs:
    """The other party's statements this party checked and signed for, waiting for their
    proofs; and those whose proofs verified (a proof delivered again is acknowledged again)."""

    def __init__(self) -> None:
        self.held: dict[Key, dict[str, int]] = {}
        self.verified: set[Key] = set()
        self.unannounced: set[Key] = set()   # verified, not yet told to the sender

    def hold(self, kind: str, step: int, public: dict[str, int]) -> None:
        self.held[(kind, step)] = dict(public)

    def overdue(self, through_step: int) -> Key | None:
        """The earliest statement of a step up to ``through_step`` still without its proof."""
        late = sorted((step, kind) for kind, step in self.held if step <= through_step)
        return None if not late else (late[0][1], late[0][0])

    def proven(self, key: Key) -> None:
        self.held.pop(key, None)
        self.verified.add(key)
        self.unannounced.add(key)

    def announce(self) -> list[Key]:
        """The statements verified since the sender was last told (it stops offering their
        proofs; one told twice, or not at all, is offered or acknowledged again)."""
        news, self.unannounced = sorted(self.unannounced, key=lambda k: (k[1], k[0])), set()
        return news

    def steps(self) -> set[int]:
        return {step for _, step in self.held}

    def snapshot(self) -> dict:
        return {"held": [[kind, step, public] for (kind, step), public in self.held.items()],
                "verified": sorted([kind, step] for kind, step in self.verified),
                "unannounced": sorted([kind, step] for kind, step in self.unannounced)}

    def restore(self, state: dict) -> None:
        self.held = {(kind, step): public for kind, step, public in state["held"]}
        self.verified = {(kind, step) for kind, step in state["verified"]}
        self.unannounced = {(kind, step) for kind, step in state["unannounced"]}


class Checkpoints:
    """A party's weights at the end of each step whose proofs may still fail (-1: before step
    0), so that it can go back to the last step whose proofs all verified."""

    def __init__(self) -> None:
        self.params: dict[int, Params] = {}

    def keep(self, step: int, params: Params) -> None:
        self.params[step] = [(w.clone(), b.clone()) for w, b in params]

    def at(self, step: int) -> Params:
        if step not in self.params:
            raise ProofError(f"no checkpoint of the weights at the end of step {step} is kept "
                             f"(kept: {sorted(self.params)}); the rollback cannot be made")
        return [(w.clone(), b.clone()) for w, b in self.params[step]]

    def prune(self, below: int) -> None:
        """Forget the checkpoints of steps before ``below`` (their proofs all verified: no
        rollback goes there)."""
        for step in [s for s in self.params if s < below]:
            del self.params[step]

    def snapshot(self) -> dict:
        return {str(step): params_to_lists(params) for step, params in self.params.items()}

    def restore(self, state: dict) -> None:
        self.params = {int(step): params_from_lists(rows) for step, rows in state.items()}


def first_unverified(*steps: set[int] | int) -> int | None:
    """The earliest step among these whose proofs are not all verified (None: none)."""
    found = [s for group in steps for s in ((group,) if isinstance(group, int) else group)]
    return min(found) if found else None
