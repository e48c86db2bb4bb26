"""SQLite persistence of the server's sessions (``splitverify serve --db PATH``).

A restarted server reloads every session and goes on where it stopped: nothing it answered is
lost, since each handled message is committed (one transaction) before the answer leaves.

    sessions     one row per session: the creation request, the token's SHA-256 (never the
                 token), the party's latest state (JSON: weights, chains, pending step, the
                 audit draws, the inputs kept for challenges), the last answer per message kind
                 (for idempotent retries), the stop record
    entries      the transcript: per step and proof kind, the public statement, the proof, the
                 sender's signature and the audit draw
    checkpoints  the server's weights after each completed step
    shared_model the server half that several clients' sessions train (``--shared-model``):
                 its spec, current weights and salt (one row)
    chain        its chain of ServerSteps, append-only, in the order they were applied: per
                 entry the session and step that caused it, the weights' commitments before
                 and after, the statement's SHA-256 (saved in the transaction of its step)
    round_halves the client halves handed over for a round not yet averaged (``--aggregate``):
                 per round and session its slot, weights and salt
    rounds       the averaged rounds: the published record (the Aggregate statement and proof)
                 and what each session was sent, saved with the sessions' new states in one
                 transaction (the round's halves are removed in it)
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from splitverify.errors import InputError

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,
    token_sha256 TEXT NOT NULL,
    request TEXT NOT NULL,
    state TEXT NOT NULL,
    replies TEXT NOT NULL,
    keys TEXT NOT NULL,
    stopped TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS entries (
    session_id TEXT NOT NULL,
    step INTEGER NOT NULL,
    kind TEXT NOT NULL,
    public TEXT NOT NULL,
    proof TEXT,
    signature TEXT,          -- the sender's signature (splitverify.identity)
    challenged INTEGER,      -- audit:P: whether the server's draw challenged it (NULL otherwise)
    PRIMARY KEY (session_id, step, kind)
);
CREATE TABLE IF NOT EXISTS checkpoints (
    session_id TEXT NOT NULL,
    step INTEGER NOT NULL,
    params TEXT NOT NULL,
    PRIMARY KEY (session_id, step)
);
CREATE TABLE IF NOT EXISTS shared_model (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    model TEXT NOT NULL      -- JSON: server spec, weights, salt, initial commitment
);
CREATE TABLE IF NOT EXISTS chain (
    idx INTEGER PRIMARY KEY,
    entry TEXT NOT NULL      -- JSON: index, session, step, weights_before/after, statement
);
CREATE TABLE IF NOT EXISTS round_halves (
    round INTEGER NOT NULL,
    session_id TEXT NOT NULL,
    half TEXT NOT NULL,      -- JSON: slot, step, weights, salt, the submission's digest
    PRIMARY KEY (round, session_id)
);
CREATE TABLE IF NOT EXISTS rounds (
    round INTEGER PRIMARY KEY,
    record TEXT NOT NULL     -- JSON: the published round and the answer sent to each session
);
"""


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class StoredSession:
    session_id: int
    token_sha256: str
    request: dict
    state: dict
    replies: dict
    keys: dict
    stopped: dict | None
    entries: list[dict]
    updated: float = 0.0         # when it last saw a request (time.time()): for idle expiry


class SessionStore:
    """One SQLite file (``":memory:"`` keeps it in this process only)."""

    def __init__(self, path: str | Path = ":memory:"):
        self.path = str(path)
        if self.path != ":memory:":
            parent = Path(self.path).parent
            if not parent.is_dir():
                raise InputError(f"--db {self.path}: folder {parent} does not exist")
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            if self.path != ":memory:":
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
            # a database from before entries were signed gains the columns (NULL: unsigned)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(entries)")}
            for column, kind in (("signature", "TEXT"), ("challenged", "INTEGER")):
                if column not in columns:
                    self._db.execute(f"ALTER TABLE entries ADD COLUMN {column} {kind}")
        except sqlite3.DatabaseError as exc:
            raise InputError(f"--db {self.path} is not a splitverify session database: {exc}") \
                from exc
        self._lock = threading.Lock()

    def save(self, session_id: int, *, token_sha256: str, request: dict, state: dict,
             replies: dict, keys: dict, stopped: dict | None,
             entries: list[dict] = (), checkpoint: tuple[int, list] | None = None,
             shared: tuple[dict, dict] | None = None) -> None:
        """Commit a session's state with the transcript rows and checkpoint it produced, all or
        nothing; ``shared``: the shared model's new state and the chain entry its step added
        (refused if that index is taken: the chain is append-only)."""
        now = time.time()
        sid = str(session_id)
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute(
                    "INSERT INTO sessions VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(session_id) DO "
                    "UPDATE SET state=excluded.state, replies=excluded.replies, "
                    "keys=excluded.keys, stopped=excluded.stopped, updated=excluded.updated",
                    (sid, token_sha256, json.dumps(request), json.dumps(state),
                     json.dumps(replies), json.dumps(keys),
                     None if stopped is None else json.dumps(stopped), now, now))
                db.executemany(
                    "INSERT OR REPLACE INTO entries (session_id, step, kind, public, proof, "
                    "signature, challenged) VALUES (?,?,?,?,?,?,?)",
                    [(sid, e["step"], e["kind"], json.dumps(e["public"]), e.get("proof"),
                      e.get("signature"), e.get("challenged")) for e in entries])
                if checkpoint is not None:
                    db.execute("INSERT OR REPLACE INTO checkpoints VALUES (?,?,?)",
                               (sid, checkpoint[0], json.dumps(checkpoint[1])))
                if shared is not None:
                    model, entry = shared
                    self._save_shared(model)
                    db.execute("INSERT INTO chain VALUES (?,?)",
                               (entry["index"], json.dumps(entry)))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def _save_shared(self, model: dict) -> None:
        self._db.execute("INSERT INTO shared_model VALUES (0, ?) ON CONFLICT(id) DO UPDATE SET "
                         "model=excluded.model", (json.dumps(model),))

    def save_shared(self, model: dict) -> None:
        """The shared model's row as it starts (before any step: its chain is empty), or given
        a field a row stored before it lacked (the label table's salt)."""
        with self._lock:
            self._save_shared(model)

    def load_shared(self) -> tuple[dict | None, list[dict]]:
        """The shared model's state (None: none yet) and its chain, in order."""
        with self._lock:
            row = self._db.execute("SELECT model FROM shared_model WHERE id=0").fetchone()
            chain = [json.loads(entry) for (entry,) in self._db.execute(
                "SELECT entry FROM chain ORDER BY idx")]
        return (None if row is None else json.loads(row[0])), chain

    def save_half(self, round_: int, session_id: int, half: dict) -> None:
        """A client half handed over for round ``round_`` (refused if the session gave one)."""
        with self._lock:
            self._db.execute("INSERT INTO round_halves VALUES (?,?,?)",
                             (round_, str(session_id), json.dumps(half)))

    def save_round(self, round_: int, record: dict, states: dict[int, dict]) -> None:
        """An averaged round: its record, the new state of each session in it (which now
        expects the average), and its halves removed, all or nothing."""
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("INSERT INTO rounds VALUES (?,?)", (round_, json.dumps(record)))
                db.executemany("UPDATE sessions SET state=? WHERE session_id=?",
                               [(json.dumps(state), str(sid)) for sid, state in states.items()])
                db.execute("DELETE FROM round_halves WHERE round=?", (round_,))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def load_rounds(self) -> tuple[list[dict], dict[int, dict[int, dict]]]:
        """The averaged rounds in order, and the halves of rounds not yet averaged (round →
        session → half)."""
        with self._lock:
            rounds = [json.loads(record) for (record,) in self._db.execute(
                "SELECT record FROM rounds ORDER BY round")]
            halves: dict[int, dict[int, dict]] = {}
            for round_, sid, half in self._db.execute(
                    "SELECT round, session_id, half FROM round_halves"):
                halves.setdefault(round_, {})[int(sid)] = json.loads(half)
        return rounds, halves

    def load_all(self) -> list[StoredSession]:
        return self._load("", ())

    def load(self, session_id: int) -> StoredSession:
        """One session as a restart would load it."""
        found = self._load("WHERE session_id=?", (str(session_id),))
        if not found:
            raise InputError(f"session {session_id} is not in the store {self.path}")
        return found[0]

    def _load(self, where: str, args: tuple) -> list[StoredSession]:
        with self._lock:
            rows = self._db.execute(
                "SELECT session_id, token_sha256, request, state, replies, keys, stopped, updated "
                f"FROM sessions {where} ORDER BY created", args).fetchall()
            out = []
            for sid, token, request, state, replies, keys, stopped, updated in rows:
                entries = [{"step": step, "kind": kind, "public": json.loads(public),
                            "proof": proof, "signature": signature,
                            "challenged": None if challenged is None else bool(challenged)}
                           for step, kind, public, proof, signature, challenged
                           in self._db.execute(
                               "SELECT step, kind, public, proof, signature, challenged FROM "
                               "entries WHERE session_id=? ORDER BY step, rowid", (sid,))]
                out.append(StoredSession(int(sid), token, json.loads(request), json.loads(state),
                                         json.loads(replies), json.loads(keys),
                                         None if stopped is None else json.loads(stopped),
                                         entries, updated))
        return out

    def checkpoints(self, session_id: int) -> list[tuple[int, list]]:
        with self._lock:
            return [(step, json.loads(params)) for step, params in self._db.execute(
                "SELECT step, params FROM checkpoints WHERE session_id=? ORDER BY step",
                (str(session_id),))]

    def touch(self, session_id: int, when: float) -> None:
        """Record a request to the session (its idle time counts from ``when``, across
        restarts)."""
        with self._lock:
            self._db.execute("UPDATE sessions SET updated=? WHERE session_id=?",
                             (when, str(session_id)))

    def delete(self, session_id: int) -> None:
        """Forget a session: its row, transcript and checkpoints, in one transaction."""
        sid = str(session_id)
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                for table in ("sessions", "entries", "checkpoints"):
                    db.execute(f"DELETE FROM {table} WHERE session_id=?", (sid,))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
