"""What the dashboard shows that a session's state does not keep: each statement the server
sends (its public values, when, whether a proof went with it) and the ledger entries its
ledger sink made of it. The session state keeps only the latest statement the server sent of
each kind; the received ones are in its transcript.

The log hooks into each server party as it is made or resumed (``create_app``'s ``on_party``):
it wraps the party's ``on_statement`` hook (a ledger sink, in ``demo --chain``) and hands every
statement on to it. It is kept in memory: after a restart the steps made before it show their
loss and the client's statements (stored) but not the server's statements' values."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from splitverify.ledger.sink import LedgerSink
from splitverify.protocol import ServerParty
from splitverify.protocol.parties import StatementHook


@dataclass(frozen=True)
class SentStatement:
    """A statement the server sent: public values only (commitments, loss, session, step)."""
    kind: str
    step: int
    at: float                       # unix time it was sent
    public: dict[str, int]
    with_proof: bool                # the proof went with it (``every``), else on challenge only


@dataclass(frozen=True)
class LedgerEntry:
    """One ledger transaction the server's sink made (or the chain refused) for a statement."""
    kind: str
    step: int
    verified_on_chain: bool
    gas: int
    seconds: float
    refused: str | None


class EventLog:
    """Per session id, the statements the server sent and their ledger entries, in order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sent: dict[int, list[SentStatement]] = {}
        self._ledger: dict[int, list[LedgerEntry]] = {}

    def watching(self, inner: Callable[[ServerParty], object] | None
                 ) -> Callable[[ServerParty], None]:
        """An ``on_party`` hook: ``inner`` first (it may set the party's ledger sink), then this
        log wraps whatever statement hook the party has."""
        def on_party(party: ServerParty) -> None:
            if inner is not None:
                inner(party)
            self.attach(party)
        return on_party

    def attach(self, party: ServerParty) -> None:
        party.on_statement = _Recorder(self, party.session_id, party.on_statement)

    def sent(self, session_id: int) -> list[SentStatement]:
        with self._lock:
            return list(self._sent.get(session_id, ()))

    def ledger(self, session_id: int) -> list[LedgerEntry]:
        with self._lock:
            return list(self._ledger.get(session_id, ()))

    def keep_only(self, session_ids: set[int]) -> None:
        """Forget the sessions the server no longer holds (deleted or expired)."""
        with self._lock:
            for log in (self._sent, self._ledger):
                for gone in set(log) - session_ids:
                    del log[gone]

    def add(self, session_id: int, statement: SentStatement,
             entries: list[LedgerEntry]) -> None:
        with self._lock:
            self._sent.setdefault(session_id, []).append(statement)
            if entries:
                self._ledger.setdefault(session_id, []).extend(entries)


class _Recorder:
    """A party's statement hook that logs each statement, then hands it to the party's own hook
    (``inner``), noting the ledger entries a ledger sink made of it."""

    def __init__(self, log: EventLog, session_id: int, inner: StatementHook | None):
        self.log, self.session_id, self.inner = log, session_id, inner

    def __call__(self, kind: str, step: int, public: dict[str, int], proof: str | None
                 ) -> None:
        statement = SentStatement(kind, step, time.time(), dict(public), proof is not None)
        sink = self.inner if isinstance(self.inner, LedgerSink) else None
        before = len(sink.records) if sink is not None else 0
        try:
            if self.inner is not None:
                self.inner(kind, step, public, proof)
        finally:
            made = sink.records[before:] if sink is not None else []
            self.log.add(self.session_id, statement, [
                LedgerEntry(r.kind, r.step, r.verified, r.gas, round(r.seconds, 4), r.refused)
                for r in made if (r.kind, r.step) == (kind, step)])
