"""The server's state and what it does with it: one :class:`SessionService` per app (kept in
``app.state.service``) holds the sessions, their store, the server's identity, its limits, the
key folders, the two-party phase-1 cache, the per-address creation rate and the idle sweep. Its
methods are what the routes do: make, resume, persist, remove a session; run the key ceremony;
handle a message as one transaction (all checks, then all changes, committed before the
answer; a message refused part-way rolled back to what the store holds)."""

from __future__ import annotations

import secrets
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch
from pydantic import BaseModel
from starlette.datastructures import Headers
from starlette.types import Scope

from splitverify import model, powersoftau, zk
from splitverify.circuitgen import KINDS, SplitCircuits
from splitverify.circuitgen.generator import describe
from splitverify.errors import InputError, IntegrityError, SplitverifyError, TamperDetected
from splitverify.identity import Identity, check_address
from splitverify import keycache
from splitverify.keyexchange import initial, load_final, server_accept, server_contribute
from splitverify.keyorigin import contribution_signed, sign_contribution
from splitverify.label_table import LabelTable, table_depth as label_table_depth
from splitverify.limits import Limits
from splitverify.tempfolders import owned_temp_folder
from splitverify.model import SplitSpec
from splitverify.pool import ProverPool
from splitverify.powersoftau import PtauPolicy
from splitverify.protocol import ServerParty, new_transcript, params_to_lists, scenarios
from splitverify.pool.threads import background_pool
from splitverify.protocol import policy
from splitverify.protocol.local import rollback_step
from splitverify.protocol.wire import (MAX_PREDICT_ROWS, BackwardMessage, ForwardMessage,
                                       HalfSubmission, KeyReuseOffer, LabelTableInfo,
                                       ProofExchange, RoundStatus, SessionCreate,
                                       SessionCreated, StopRecord, random_field,
                                       statement_digest)
from splitverify.refnet import initial_params
from splitverify.transcript import TranscriptEntry
from splitverify.zk.cache import ArtifactCache
from .bodylimit import KEY_PATH
from .guard import CreationRate, bearer_token, largest_circuit, without_paths
from .refusals import (AlreadyDone, ProofRequired, Refused, SessionRemoved, SessionStopped,
                       TooManySessions)
from .server_model import ServerHalf
from .rounds import NoRound, RoundPlan, Rounds
from .shared_model import SharedModel
from .session import PTAU_RECORD, KeyCeremony, Session, SessionPtau
from .store import SessionStore, StoredSession, token_digest


# pipelined:W: how long the server waits for its own proofs of the steps a client says are due
PROOF_WAIT_SECONDS = 600.0


def need_proof(kind: str, step: int) -> tuple[str, str]:
    """The party's request for a proof it draws on (audit mode): the client is challenged."""
    raise ProofRequired(kind, step)


class SessionService:
    """See the module. ``create_app`` documents the arguments."""

    def __init__(self, circuits_for: Callable[[SplitSpec], SplitCircuits] | None, *,
                 backend: str | None, malicious: str | None, limits: Limits, db: str | Path,
                 ceremony: bool, ptau: PtauPolicy | None,
                 on_party: Callable[[ServerParty], object] | None,
                 identity: Identity | None, server_model: torch.nn.Sequential | None = None,
                 prover_pool: Callable[[SplitCircuits], ProverPool] | None = None,
                 shared_model: bool = False, labels: torch.Tensor | None = None,
                 aggregate: RoundPlan | None = None,
                 aggregate_circuits_for: Callable[[SplitSpec, int], SplitCircuits] | None = None):
        if aggregate is not None and not shared_model:
            raise InputError("rounds of averaged client halves (aggregate=) are for the "
                             "clients of one shared server half: they need shared_model=True")
        self.limits, self.db = limits, db
        # --labels server: the labels this server holds, by sample id (None: it holds none, and
        # a session asking for labels 'server' is refused)
        self.labels = None if labels is None else torch.as_tensor(labels,
                                                                  dtype=torch.int64).reshape(-1)
        self.server_half = None if server_model is None else ServerHalf(server_model)
        self.store = SessionStore(db)
        # one server half for every session (its chain of ServerSteps), or one per session
        self.shared = SharedModel(self.store, self.server_half) if shared_model else None
        # SplitFed-V1: the client halves averaged with a proof every R steps (--aggregate)
        self.rounds = (None if aggregate is None
                       else Rounds(aggregate, self.store, aggregate_circuits_for))
        self.sessions: dict[int, Session | None] = {}     # None: a session being made
        self._creating = threading.Lock()    # the session count is checked and raised at once
        self.creation_rate = CreationRate(limits.client_sessions, limits.client_window)
        self._last_sweep = 0.0
        self.circuits_for = circuits_for or SplitCircuits
        self.backend, self.malicious, self.on_party = backend, malicious, on_party
        self.prover_pool = prover_pool
        self.ceremony, self.ptau = ceremony, ptau
        self._key_folders: dict[int, Path] = {}
        self.identity = identity or (Identity.generate() if self.in_memory
                                     else Identity.load_or_create(f"{db}.identity"))
        self.phase1_cache = (ArtifactCache() if ptau is not None and ptau.origin == "two-party"
                             else None)
        self.server_party = self.identity.address if self.phase1_cache is not None else None
        # finished ceremony keys, reused by later sessions with the same client identity; not
        # kept by a server whose identity lasts one process (nothing could reuse them)
        self.lasting_identity = identity is not None or not self.in_memory
        self.key_cache = ArtifactCache() if ceremony and self.lasting_identity else None
        for stored in self.store.load_all():
            if time.time() - stored.updated > limits.idle_seconds:
                self.forget(stored.session_id)           # it expired while the server was down
                continue
            self.sessions[stored.session_id] = self.resume(stored)
            self.sessions[stored.session_id].last_request = stored.updated

    @property
    def in_memory(self) -> bool:
        return str(self.db) == ":memory:"

    # -- sessions: made, kept, found, removed -------------------------------------------------
    def key_folder(self, session_id: int) -> Path:
        """Where a session's ceremony keys live: next to the database (``<db>.keys/<id>``),
        or in a temporary folder when sessions are not persisted."""
        if session_id not in self._key_folders:
            self._key_folders[session_id] = (
                owned_temp_folder(self, "sv-server-keys-") if self.in_memory
                else Path(f"{self.db}.keys") / str(session_id))
        return self._key_folders[session_id]

    def holds_labels_for(self, request: SessionCreate) -> bool:
        """Does the session read its labels from this server's table? (A session asking for
        labels 'server' of a server that holds none is refused.)"""
        if request.labels == "client":
            return False
        if self.labels is None:
            raise InputError("the session asks for labels 'server', but this server holds no "
                             "label table: start it with serve --labels FILE|digits, or ask "
                             "for labels 'client' (and send each batch's labels)")
        return True

    def label_table(self, request: SessionCreate, stored: dict | None = None
                    ) -> LabelTable | None:
        """The session's label table when it asks for labels 'server': this server's labels
        under a fresh salt (one for all sessions of a shared model; ``stored``: the salt and
        commitment a stored session was created with, which the labels must still give)."""
        if not self.holds_labels_for(request):
            return None
        spec = request.spec()
        salt = (stored["salt"] if stored is not None
                else self.shared.label_salt if self.shared is not None else random_field())
        try:
            table = LabelTable(self.labels, spec.classes, salt)
        except InputError as exc:
            raise InputError(f"this server's labels do not fit the session's model "
                             f"({spec.classes} classes): {exc}") from exc
        if stored is not None and table.commitment != stored["commitment"]:
            raise InputError("a stored session's label table was committed with other labels "
                             "than this server holds now: restart the server with the --labels "
                             "it had when the session was created")
        return table

    def new_party(self, request: SessionCreate, session_id: int,
                  stored_table: dict | None = None) -> ServerParty:
        spec = request.spec()
        if self.shared is not None:
            self.shared.admit(spec, request.proof_mode)
        table = self.label_table(request, stored_table)
        server_params = (self.shared.params if self.shared is not None
                         else self.server_half.params_for(spec) if self.server_half is not None
                         else initial_params(spec, request.seed)[1])
        circuits = self.circuits_for(spec).with_label_table(0 if table is None else table.depth)
        party = scenarios.party_class("server", self.malicious)(
            spec, session_id, request.proof_mode, server_params, circuits,
            backend=self.backend, identity=self.identity, peer=request.client_identity,
            pool=(self.prover_pool(circuits) if self.prover_pool is not None
                  else background_pool(request.proof_mode, circuits, self.backend)),
            label_table=table)
        # step 0's weightsCommitment must continue the chain from the declared starting point
        party.client_chain = request.initial_weights_commitment
        party.shared_server_model = self.shared is not None
        if self.on_party is not None:
            self.on_party(party)
        return party

    def persist(self, session: Session, checkpoint: bool = False,
                rewritten: list[TranscriptEntry] = (),
                shared: tuple[dict, dict] | None = None) -> None:
        """Store the session's state and its new transcript entries (``rewritten``: earlier
        entries changed since, e.g. given their proofs in ``pipelined:W``; ``shared``: the
        shared model's new state and chain entry) in one transaction."""
        if session.removed:
            raise SessionRemoved(f"session {session.id} was deleted or expired while this "
                                 "request was handled; nothing of it was kept")
        party = session.party
        entries = party.transcript.entries if party.transcript is not None else []
        self.store.save(party.session_id, token_sha256=session.token_sha256,
                        request=session.request, state=party.snapshot(),
                        replies=session.replies, keys=session.stored_keys(),
                        stopped=None if session.stopped is None else session.stopped.model_dump(),
                        entries=[e.model_dump() for e in
                                 [*rewritten, *entries[session.saved_entries:]]],
                        checkpoint=((party.next_step - 1, params_to_lists(party.params))
                                    if checkpoint else None),
                        shared=shared)
        session.saved_entries = len(entries)

    def start_transcript(self, session: Session) -> None:
        party = session.party
        signatures = {kind: {"server": ceremony.server_signature,
                             "client": ceremony.client_signature}
                      for kind, ceremony in session.keys.items()}
        party.transcript = new_transcript(party, signatures, session.reused_keys)
        if party.mode.proves:
            powersoftau.record_in(party.transcript, session.ptau.record
                                  or powersoftau.record_of(party.prover.circuits))

    def resume(self, stored: StoredSession) -> Session:
        request = SessionCreate.model_validate(stored.request)
        party = self.new_party(request, stored.session_id, stored.state.get("label_table"))
        party.restore(stored.state)
        keys = dict(stored.keys)
        ptau = SessionPtau(**keys.pop(PTAU_RECORD, {}))   # absent in sessions stored before it
        stopped = None if stored.stopped is None else StopRecord.model_validate(stored.stopped)
        session = Session(stored.token_sha256, stored.request, party, stopped,
                          stored.replies,
                          {kind: KeyCeremony(**record) for kind, record in keys.items()},
                          len(stored.entries), ptau=ptau)
        if ptau.file:
            party.prover.circuits.ptau = zk.PtauFile.open(ptau.file,
                                                          expected_blake2b=ptau.blake2b)
        for kind, ceremony in session.keys.items():
            if ceremony.final:
                load_final(party.prover.circuits, kind, Path(ceremony.final),
                           ceremony.blake2b, ceremony.transcript)
        if not session.keys_ready:
            return session
        self.start_transcript(session)
        order = {kind: i for i, kind in enumerate(KINDS)}
        party.transcript.entries = [TranscriptEntry(**e) for e in sorted(
            stored.entries, key=lambda e: (e["step"], order[e["kind"]]))]
        party.transcript.detected = stopped
        return session

    def forget(self, session_id: int) -> None:
        """The session's stored rows and key files, removed."""
        self.store.delete(session_id)
        folder = self._key_folders.pop(session_id, None)
        if folder is None and not self.in_memory:
            folder = Path(f"{self.db}.keys") / str(session_id)
        if folder is not None and folder.exists():
            shutil.rmtree(folder)

    def remove(self, session: Session, *, wait: bool) -> bool:
        """End a session (deleted or expired): its slot, state and keys. False when it is
        busy and ``wait`` is not set (an expiry sweep does not wait for a step in flight)."""
        if not session.lock.acquire(blocking=wait):
            return False
        try:
            if session.removed:
                return False
            session.removed = True
            self.sessions.pop(session.id, None)
            self.forget(session.id)
            session.party.prover.pool.close()     # e.g. the background prover thread
        finally:
            session.lock.release()
        return True

    def sweep_expired(self) -> None:
        """Remove the sessions idle for longer than the limit (at most once a second)."""
        now = time.time()
        if now - self._last_sweep < 1:
            return
        self._last_sweep = now
        for session in list(self.sessions.values()):
            if session is not None and now - session.last_request > self.limits.idle_seconds:
                self.remove(session, wait=False)

    def touch(self, session: Session) -> None:
        """A request to the session: its idle clock restarts (kept across restarts)."""
        now = time.time()
        if now - session.last_request >= 1:
            self.store.touch(session.id, now)
        session.last_request = now

    @staticmethod
    def holds_token(session: Session, token: str | None) -> bool:
        return token is not None and secrets.compare_digest(token_digest(token),
                                                            session.token_sha256)

    def key_owner(self, scope: Scope) -> bool:
        """Does this key upload carry its session's token? (The key limit is the owner's.)"""
        found = KEY_PATH.fullmatch(scope["path"])
        digits = found.group(1) if found else ""
        if not digits.isdigit() or len(digits) > 80:
            return False
        session = self.sessions.get(int(digits))
        return session is not None and self.holds_token(session,
                                                        bearer_token(Headers(scope=scope)))

    # -- POST /sessions -----------------------------------------------------------------------
    def create_session(self, body: SessionCreate, address: str) -> SessionCreated:
        limits = self.limits
        mode = body.proof_mode               # a bad mode was a 422 before anything was made
        if mode.commits and body.initial_weights_commitment is None:
            raise InputError(f"proof mode {body.proof_mode} needs initial_weights_commitment: "
                             "the commitment of the client's initial weights, which step 0's "
                             "weightsCommitment must equal")
        body.within(limits)
        if self.rounds is not None:
            self.rounds.admit(body)
        elif body.aggregate_every is not None:
            raise InputError("this server averages no client halves (it runs without "
                             "--aggregate): leave aggregate_every out")
        reads_table = self.holds_labels_for(body)
        if mode.commits or body.client_identity is not None:
            # the client's statements and contributions are checked against this address
            body = body.model_copy(update={"client_identity": check_address(
                body.client_identity, "the client's (client_identity)")})
        wait = self.creation_rate.admit(address)
        if wait:
            retry = str(int(wait) + 1)
            raise TooManySessions(f"{address} has created {limits.client_sessions} sessions in "
                                  f"{limits.client_window} s, the most this server allows "
                                  f"(--client-sessions); retry in {retry} s",
                                  headers={"Retry-After": retry})
        if mode.proves:                      # before anything is compiled or set up
            depth = label_table_depth(len(self.labels)) if reads_table else 0
            kind, constraints = largest_circuit(body.spec(), depth)
            if constraints > limits.constraints:
                raise InputError(f"this model's {kind} circuit needs about {constraints:,} "
                                 f"constraints; this server sets up at most "
                                 f"{limits.constraints:,} (--max-constraints): use a smaller "
                                 "model or batch, or proof_mode 'off'")
        self.sweep_expired()
        with self._creating:
            if len(self.sessions) >= limits.sessions:
                raise TooManySessions(f"this server holds its limit of {limits.sessions} "
                                      "sessions; no new one until the operator raises it "
                                      "(--max-sessions)")
            session_id = random_field()
            self.sessions[session_id] = None     # holds its place in the count while it is made
        try:
            session, token = self._new_session(body, session_id)
        except BaseException:
            del self.sessions[session_id]
            raise
        session.last_request = time.time()  # idle from now: making it may have taken a while
        self.sessions[session_id] = session
        waits = session.ptau.waits_for_client
        return SessionCreated(session_id=session_id, token=token,
                              spec=describe(session.party.spec),
                              proof_mode=session.party.mode,
                              ceremony=bool(session.keys) or waits,
                              idle_expiry_s=limits.idle_seconds,
                              server_identity=self.identity.address,
                              ptau=self._announced_ptau(session),
                              server_party=self.server_party,
                              reused_keys=session.reused_keys,
                              key_reuse_declined=session.reuse_declined,
                              shared_model=self.shared is not None,
                              label_table=self._announced_table(session.party))

    @staticmethod
    def _announced_table(party: ServerParty) -> LabelTableInfo | None:
        """What the client learns of the session's label table: commitment, depth, size."""
        table = party.label_table
        if table is None:
            return None
        return LabelTableInfo(commitment=table.commitment, depth=table.depth,
                              size=len(table.labels))

    def _announced_ptau(self, session: Session) -> dict | None:
        """What the server tells the client of the session's powers of tau: a phase 1 to make
        with it, the ptau its keys come from, or (development) that each side makes its own."""
        if session.ptau.waits_for_client:
            return {"origin": "two-party", "phase1": True, "power": session.ptau.power}
        if session.ptau.record is None and self.ptau is not None:
            return self.ptau.announce()
        return session.ptau.record

    def _new_session(self, body: SessionCreate, session_id: int) -> tuple[Session, str]:
        """The session (stored) and its bearer token."""
        party = self.new_party(body, session_id)
        token = secrets.token_urlsafe(32)
        session = Session(token_digest(token), body.model_dump(), party)
        if self.ceremony and party.mode.proves:   # the server's half of each key's ceremony
            session.ptau = self._choose_ptau(body, party, session_id)
            if session.ptau.waits_for_client:
                offered = body.key_offers.keys if body.key_offers is not None else {}
                session.reuse_declined = {kind: "the two-party phase 1 with this client is made "
                                          "in this session, so its keys are new"
                                          for kind in offered}
            else:
                self._reuse_keys(session, body.key_offers)
                self._contribute_keys(session)
            if session.keys_ready:               # every key reused: no ceremony to wait for
                self.start_transcript(session)
        else:
            self.start_transcript(session)
        self.persist(session)
        return session, token

    # -- the key ceremony ---------------------------------------------------------------------
    def _choose_ptau(self, body: SessionCreate, party: ServerParty, session_id: int
                     ) -> SessionPtau:
        """The session's powers of tau under the server's policy, checked against the one the
        client announced; a two-party phase 1 not yet made with this client is started."""
        circuits, policy = party.prover.circuits, self.ptau
        if policy is None:
            return SessionPtau()
        if body.ptau is not None:
            powersoftau.check_same(policy.announce(), body.ptau, "client")
        if policy.origin == "published":
            circuits.ptau = policy.file
            return SessionPtau(record=powersoftau.ptau_record(policy.file, "published",
                                                              policy.file.path.name))
        if policy.origin == "development":
            return SessionPtau()
        client = powersoftau.check_party_id(body.party_id, "the session request's party_id "
                                            "(needed for the two-party phase 1)")
        if client != body.client_identity:
            raise InputError(f"the session request's party_id {client} is not its client_identity "
                             f"{body.client_identity}: the two-party phase 1 is shared by identity "
                             "keys, so a client's party id is its identity address")
        needed = powersoftau.needed_power(circuits)
        found = powersoftau.cached(self.phase1_cache, self.server_party, client, needed)
        if found is not None:
            return self._use_phase1(SessionPtau(), party, found)
        power = max(needed, powersoftau.MIN_TWO_PARTY_POWER)
        path, contribution = powersoftau.server_start(self.server_party, power,
                                                      self.key_folder(session_id))
        return SessionPtau(ready=False, client=client, power=power, server_file=str(path),
                           server_hash=contribution)

    @staticmethod
    def _use_phase1(ptau: SessionPtau, party: ServerParty, prepared: zk.PtauFile
                    ) -> SessionPtau:
        party.prover.circuits.ptau = prepared
        ptau.ready, ptau.file, ptau.blake2b = True, str(prepared.path), prepared.blake2b
        ptau.record = powersoftau.ptau_record(prepared, "two-party")
        return ptau

    def _reuse_keys(self, session: Session, offer: KeyReuseOffer | None) -> None:
        """Take each offered key this server holds itself — the identical finished key (same
        blake2b and origin session) of a ceremony with this very client identity, which this
        server verified with its own contribution in it — into the session; the others are
        declined with the reason (their ceremony runs). A cached key whose bytes no longer
        have its recorded blake2b is removed and declined, never used."""
        if offer is None:
            return
        if self.key_cache is None:
            session.reuse_declined = {kind: "this server's identity lasts one process: it keeps "
                                      "no finished keys" for kind in offer.keys}
            return
        if offer.server_identity != self.identity.address:
            session.reuse_declined = {kind: f"the keys were offered for server "
                                      f"{offer.server_identity}, this server is "
                                      f"{self.identity.address}" for kind in offer.keys}
            return
        circuits, folder = session.party.prover.circuits, self.key_folder(session.id)
        for kind, offers in offer.keys.items():
            pair = keycache.KeyPair.of(self.identity.address, session.party.peer,
                                       initial(circuits, kind), kind)
            mine = keycache.lookup(self.key_cache, "server", pair)
            if mine is None or not any((o.blake2b, o.origin_session)
                                       == (mine.blake2b, mine.origin_session) for o in offers):
                session.reuse_declined[kind] = ("this server holds no finished key with that "
                                                "blake2b from a ceremony with this client "
                                                "identity for this circuit and ptau")
                continue
            path = keycache.use_in(mine, folder / f"{kind}_final.zkey")
            try:
                load_final(circuits, kind, path, mine.blake2b, mine.transcript)
            except IntegrityError:
                path.unlink(missing_ok=True)
                keycache.forget(mine)
                session.reuse_declined[kind] = ("the server's cached key no longer has its "
                                                "recorded blake2b (changed on disk): removed")
                continue
            session.keys[kind] = KeyCeremony(
                server=str(path), server_hash=mine.transcript[0]["hash"],
                server_signature=mine.signatures["server"], final=str(path),
                blake2b=mine.blake2b, transcript=mine.transcript,
                client_signature=mine.signatures["client"], reused_from=mine.origin_session)

    def _contribute_keys(self, session: Session) -> None:
        """The server's contribution to each key not reused from an earlier session."""
        folder = self.key_folder(session.id)
        for kind in KINDS:
            if kind in session.keys:
                continue
            key, contribution = server_contribute(session.party.prover.circuits, kind, folder)
            session.keys[kind] = KeyCeremony(
                server=str(key.zkey), server_hash=contribution,
                server_signature=sign_contribution(self.identity, session.id, kind, 1,
                                                   "server", contribution))

    def accept_phase1(self, session: Session, contribution: bytes) -> dict:
        """The client's contribution to the two-party phase 1: checked against the server's
        file, prepared and cached for this pair of parties; the server's key contributions
        follow."""
        phase1 = session.two_party_phase1()
        with session.lock:
            if phase1.ready:
                raise AlreadyDone("the phase 1 of this session is already done")
            folder = self.key_folder(session.id)
            try:
                prepared = powersoftau.server_accept(
                    self.phase1_cache, self.server_party, phase1.client,
                    Path(phase1.server_file), contribution, folder)
            except SplitverifyError as exc:
                raise Refused(f"the client's phase-1 contribution is refused: {exc}") from exc
            self._use_phase1(phase1, session.party, prepared)
            self._contribute_keys(session)
            self.persist(session)
        return {"sha256": phase1.record["sha256"], "power": prepared.power}

    def accept_key(self, session: Session, kind: str, key_bytes: bytes, client_hash: str,
                   client_signature: str | None) -> dict:
        """The client's final key for ``kind``: its contribution signed by the client's pinned
        identity, checked against our initial key with our contribution in it."""
        ceremony = session.key_ceremony(kind)
        folder = self.key_folder(session.id)
        if not contribution_signed(session.party.peer, session.id, kind, 2, "client",
                                   client_hash, client_signature):
            raise Refused(f"the {kind} key is refused: its contribution hash "
                          "(X-Contribution-Hash) is not signed (X-Contribution-Signature) "
                          f"by the client's pinned identity {session.party.peer}")
        with session.lock:
            if session.removed:              # deleted while the key was uploaded: write nothing
                raise SessionRemoved(f"session {session.id} was deleted or expired meanwhile")
            if ceremony.final:               # a concurrent upload finished first
                raise AlreadyDone(f"the {kind} key is already final")
            try:
                key = server_accept(session.party.prover.circuits, kind, key_bytes,
                                    ceremony.server_hash, folder, client_hash)
            except SplitverifyError as exc:
                raise Refused(f"the {kind} key is refused: {without_paths(str(exc))}") from exc
            ceremony.final, ceremony.blake2b = str(key.zkey), key.blake2b
            ceremony.transcript = [asdict(c) for c in key.transcript]
            ceremony.client_signature = client_signature
            if session.keys_ready:
                self.start_transcript(session)
            self.persist(session)
        # verified here, our contribution in it: later sessions with this client may reuse it
        if self.key_cache is not None:
            keycache.store(self.key_cache, "server",
                           keycache.KeyPair.of(self.identity.address, session.party.peer,
                                               initial(session.party.prover.circuits, kind),
                                               kind),
                           key, session.id, {"server": ceremony.server_signature,
                                             "client": client_signature})
        return {"kind": kind, "accepted": True,
                "contributions": [c.name for c in key.transcript]}

    # -- the steps ----------------------------------------------------------------------------
    def forward(self, session: Session, msg: ForwardMessage) -> dict:
        return self.handle(session, "forward", msg,
                           lambda: session.party.receive_forward(msg, need_proof).model_dump())

    def backward(self, session: Session, msg: BackwardMessage) -> dict:
        def run() -> dict:
            session.party.receive_backward(msg, need_proof)
            return {"step": msg.step}
        return self.handle(session, "backward", msg, run)

    def handle(self, session: Session, kind: str, msg: BaseModel, run: Callable[[], dict]
               ) -> dict:
        """Run one message against the party; commit the outcome before answering. With a
        shared model a forward message runs on the chain's head, one at a time across sessions,
        and its ServerStep joins the chain in the message's transaction."""
        with session.lock:
            if self.shared is None or kind != "forward":
                return self._handle_alone(session, kind, msg, run)
            with self.shared.lock:
                return self._handle_alone(session, kind, msg, run, shared=True)

    def _handle_alone(self, session: Session, kind: str, msg: BaseModel,
                      run: Callable[[], dict], shared: bool = False) -> dict:
        session.require_keys()
        if (again := self._handled_again(session, kind, msg)) is not None:
            return again
        if kind == "forward" and self.rounds is not None:
            self.rounds.require_averaged(session)
        if kind == "forward" and session.party.next_step >= self.limits.steps:
            raise Refused(f"the session has made the {self.limits.steps} steps this server "
                          "allows per session (--max-steps); start a new session")
        if shared:                    # a new step (not a re-sent one) runs on the chain's head
            self.shared.load_into(session.party)
        try:
            response = run()
        except ProofRequired:
            # the draw and the statement it binds are stored before the 428 reveals them
            self.persist(session)
            raise
        except TamperDetected as exc:
            raise self.stop(session, exc) from exc
        except Exception:
            self.roll_back(session)
            raise
        session.replies[kind] = {"step": msg.step, "digest": statement_digest(msg),
                                 "response": response}
        if not shared or not session.party.publishes_step():
            self.persist(session, checkpoint=kind == "backward")
            return response
        model, entry = self.shared.step_taken(session.party, session.id, msg.step,
                                              response["public"])
        try:
            self.persist(session, shared=(model, entry))
        except Exception:
            self.roll_back(session)
            raise
        self.shared.advance(session.party, entry)
        return response

    @staticmethod
    def _handled_again(session: Session, kind: str, msg: BaseModel) -> dict | None:
        """The stored answer if ``msg`` states exactly what the last message of this kind
        stated (re-sent because its answer was lost; its proof bytes may differ, since a
        Groth16 proof can be re-randomized) and the session has not moved past it."""
        last = session.replies.get(kind)
        if (last is None or last["step"] != msg.step
                or last["digest"] != statement_digest(msg)):
            return None
        return last["response"] if session.party.handles_now(kind, msg.step) else None

    def roll_back(self, session: Session) -> None:
        """Undo a message that was refused part-way: the party and the stored answers are
        reloaded from the store and the transcript cut back to its stored entries. The store is
        what a restart would load, so after a refusal live and stored state cannot differ (a
        snapshot kept in memory would be a second copy to keep in step)."""
        stored = self.store.load(session.id)
        session.party.restore(stored.state)
        session.replies = stored.replies
        if session.party.transcript is not None:
            del session.party.transcript.entries[session.saved_entries:]

    def stop(self, session: Session, exc: TamperDetected) -> SessionStopped:
        """Tampering detected: the session stops, for good (stored); the 409 says where (in
        ``pipelined:W`` also the step the server rolled back to, for the client to follow)."""
        if policy.proves_later(session.party.mode) and exc.rolled_back_to is None:
            exc.rolled_back_to = rollback_step(exc.step, session.party)
            session.party.roll_back_to(exc.rolled_back_to)
        session.stopped = StopRecord.of(exc)
        if session.party.transcript is not None:
            session.party.transcript.detected = session.stopped
        self.persist(session)
        return SessionStopped(str(exc), **session.stopped.model_dump())

    def prove(self, session: Session, kind: str, step: int) -> dict:
        """The server's proof the client challenges (audit mode), signed."""
        if kind not in KINDS:
            raise InputError(f"unknown circuit {kind!r}")
        with session.lock:
            proof, signature = session.party.signed_proof(kind, step)
            self.persist(session)                # the prove time joins the recorded figures
        return {"proof": proof, "signature": signature}

    def exchange_proofs(self, session: Session, body: ProofExchange) -> dict:
        """``pipelined:W``: verify the client's late proofs, take its acknowledgements of ours,
        and answer with our proofs made so far (waiting for those of steps up to
        ``through_step``); or, when the client reports tampering it detected, stop and roll
        back to the step it names."""
        party = session.party
        if not policy.proves_later(party.mode):
            raise Refused(f"this session's proof mode is {party.mode}: its proofs travel with "
                          "their messages or on challenge; /proofs serves pipelined:W only")
        with session.lock:
            session.require_keys()
            if body.stopped is not None:
                raise self._stop_for_client(session, body.stopped)
            entries = party.transcript.entries
            before = {(e.kind, e.step): e.proof for e in entries}
            try:
                party.acknowledged(body.verified)
                verified = party.receive_late_proofs(body.proofs)
                proofs = party.late_proofs(body.through_step, PROOF_WAIT_SECONDS)
            except TamperDetected as exc:
                raise self.stop(session, exc) from exc
            except Exception:
                self.roll_back(session)
                raise
            self.persist(session, rewritten=[e for e in entries[:session.saved_entries]
                                             if before[(e.kind, e.step)] != e.proof])
        return {"proofs": proofs, "verified": verified, "through_step": body.through_step}

    def _stop_for_client(self, session: Session, record: StopRecord) -> SessionStopped:
        """The client detected tampering (a proof of ours that failed or did not come): the
        session stops and the server goes back to the step the client went back to."""
        kept = sorted(session.party.checkpoints.params)
        if record.rolled_back_to not in kept:
            raise InputError(f"a stop reported in pipelined:W names the step the client rolled "
                             f"back to (stopped.rolled_back_to), one whose weights the server "
                             f"still keeps: {kept}; got {record.rolled_back_to}")
        session.party.roll_back_to(record.rolled_back_to)
        exc = record.error()
        return self.stop(session, exc)

    # -- SplitFed-V1 rounds (--aggregate) --------------------------------------------------------
    def _rounds(self) -> Rounds:
        if self.rounds is None:
            raise NoRound("this server averages no client halves (it runs without --aggregate)")
        return self.rounds

    def submit_half(self, session: Session, body: HalfSubmission) -> RoundStatus:
        return self._rounds().submit(self, session, body)

    def round_average(self, session: Session, round_: int) -> dict:
        return self._rounds().average_for(session, round_)

    # -- status, end, evaluation --------------------------------------------------------------
    def status(self, session: Session) -> dict:
        party = session.party
        return {"session_id": session.id, "next_step": party.next_step,
                "stopped": session.stopped,
                "proof_mode": party.mode, "proofs_verified": party.verifier.verified,
                "challenged": party.verifier.challenged, "losses": party.losses,
                "prove_s": party.prover.prove_seconds, "verify_s": party.verifier.verify_seconds,
                "idle_expiry_s": self.limits.idle_seconds}

    def delete(self, session: Session) -> dict:
        if not self.remove(session, wait=True):
            raise SessionRemoved(f"no session {session.id} (it was removed meanwhile)")
        return {"session_id": session.id, "deleted": True}

    def predict(self, session: Session, activations: list[list[int]]) -> dict:
        """The server half's predictions for cut-layer activations (nothing is learned or
        proven); with a shared model, its current weights."""
        spec = session.party.spec
        try:
            acts = torch.tensor(activations, dtype=torch.int64)
        except (ValueError, TypeError, RuntimeError) as exc:
            raise InputError(f"activations must be an integer matrix: {exc}") from exc
        if acts.ndim != 2 or acts.shape[1] != spec.cut_width or len(acts) == 0:
            raise InputError(f"activations must be n×{spec.cut_width} (1 ≤ n ≤ "
                             f"{MAX_PREDICT_ROWS}); got {tuple(acts.shape)}")
        spec.quant.check_range(acts, "the activations")
        full = SplitSpec(spec.client, spec.server, len(acts), spec.quant)
        params = session.party.params if self.shared is None else self.shared.params
        logits = model.forward(full, spec.server, params, acts).output
        return {"classes": logits.argmax(1).tolist()}
