"""The splitverify server (the app of ``splitverify_server``): a FastAPI app that holds the
server's half of each session and speaks the protocol of :mod:`splitverify.protocol`.

    POST /sessions                      create a session → id, bearer token
    GET  /sessions/{id}/phase1          the server's powers of tau (two-party phase 1)
    PUT  /sessions/{id}/phase1          the client's contribution to it (checked, then prepared)
    GET  /sessions/{id}/keys/{kind}     the key with the server's phase-2 contribution
    PUT  /sessions/{id}/keys/{kind}     the client's final key (checked, then the session's key)
    POST /sessions/{id}/forward         ForwardMessage → GradientMessage
    POST /sessions/{id}/backward        BackwardMessage → {"step": t}
    POST /sessions/{id}/prove           {"kind", "step"} → {"proof"}   (the client's challenge)
    POST /sessions/{id}/predict         {"activations"} → {"classes"}  (evaluation, no proof)
    GET  /sessions/{id}                 status
    DELETE /sessions/{id}               end the session: its state and keys are removed
    GET  /sessions/{id}/transcript      what the server received and checked

With ``ceremony=True`` (``serve``, ``demo``) every session's keys come from a two-party
ceremony (:mod:`splitverify.keyexchange`); steps are refused (425) until the three keys are
final. With ``ceremony=False`` the operator's ``circuits_for`` keys are used as they are.
With a ``ptau`` policy (``serve``) the keys come from the ptau it names
(:mod:`splitverify.powersoftau`): a published file, or a two-party phase 1 with each client
(made in the session's first requests, then cached per pair of parties and reused); a client
announcing another ptau is refused.

Limits (:class:`Limits`, ``splitverify serve --max-…``) bound what one request or one client
can make the server hold: request bodies (413), model sizes and the batch (422), sessions per
server (429), steps per session (422), JSON nesting (400, checked on the raw bytes before any
parser runs), the largest circuit a model may need (422, by the cost model, before anything is
compiled), sessions created per source address (429 with Retry-After). An uploaded key may be
as large as the key limit only with the session's token; without it the JSON limit applies. A
session without a request for ``idle_seconds`` is removed, keys and all (at the next request
the server gets, and at start for stored ones). Every 4xx answer is an :class:`ErrorBody`.

A message the server challenges in audit mode is answered 428 with ``{"challenge": kind}``:
the client re-sends it with the proof (the draw is made once per step). The challenge binds the
statement it was drawn on, stored before the 428 leaves: for that step only that statement
with a valid proof is accepted, anything else is tampering. Tampering detected → 409 with the
step, the detecting party and the reason; the session is stopped. Bad input → 4xx with a
message, and nothing changes: each message is one transaction (all checks, the server's own
step included, then all state changes, committed to the store before the answer; a message
refused part-way is rolled back to what the store holds).

Every handled message is committed to the session store (SQLite with ``--db``, see
:mod:`splitverify_server.store`) before it is answered, so a restarted server resumes every
session. A message re-sent because its answer was lost (same step, same statement: public
values, tensors and salts — never the proof bytes, since a Groth16 proof can be re-randomized)
gets the same answer again and changes nothing; any other message for a step already handled
is a replay.
"""

from __future__ import annotations

import re
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import torch
from fastapi import FastAPI, Path as PathParam, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from splitverify.circuitgen import KINDS, SplitCircuits
from splitverify.circuitgen.generator import describe
from splitverify.errors import InputError, SetupError, SplitverifyError, TamperDetected
from splitverify.identity import Identity, check_address
from splitverify.keyorigin import contribution_signed, sign_contribution
from splitverify.keyexchange import load_final, server_accept, server_contribute
from splitverify import powersoftau, zk
from splitverify.powersoftau import PtauPolicy
from splitverify.zk.cache import ArtifactCache
from splitverify.limits import Limits
from splitverify import model
from splitverify.model import SplitSpec
from splitverify.protocol import ServerParty, new_transcript, params_to_lists, scenarios
from splitverify.protocol.wire import (MAX_PREDICT_ROWS, BackwardMessage, ErrorBody,
                                       ForwardMessage, GradientMessage, KeyAccepted,
                                       Phase1Accepted, Predictions, PredictRequest, ProofBody,
                                       ProveRequest, SessionCreate, SessionCreated,
                                       SessionDeleted, SessionStatus, StepDone, StopRecord,
                                       random_field, statement_digest)
from splitverify.refnet import initial_params
from splitverify.transcript import Transcript, TranscriptEntry
from .guard import (CreationRate, NestingLimit, bearer_token, largest_circuit,
                    without_paths)
from .store import SessionStore, token_digest

SESSION_ID_BITS = 250            # session ids are random field elements (protocol.random_field)
PTAU_RECORD = "_ptau"            # the session's ptau, stored beside its circuits' key records


ERROR_MEANINGS = {
    400: "The body could not be read (not UTF-8 text, or JSON nested past the limit).",
    401: "No bearer token.",
    403: "The token is not this session's.",
    404: "No such session (it expired, was deleted or never existed; or no key ceremony "
         "of that kind in it).",
    409: "Tampering or a replay was detected: the session is stopped (step, party, reason); "
         "or the key is already final.",
    413: "The request body exceeds the server's limit.",
    422: "Invalid request, or past a limit of the server; nothing changed.",
    425: "The key ceremony is not finished.",
    428: "The server challenges this message: re-send it with its proof.",
    429: "The server holds as many sessions as it allows, or this address created as many "
         "as it may for now (Retry-After).",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: its error answers, each an ErrorBody."""
    return {code: {"model": ErrorBody, "description": ERROR_MEANINGS[code]} for code in codes}


# what every route can answer: a body over the limit, or one that does not parse
COMMON = (400, 413, 422)
SESSION_ERRORS = (*COMMON, 401, 403, 404, 409)
SessionId = Annotated[int, PathParam(ge=0, lt=1 << SESSION_ID_BITS,
                                     description="The id POST /sessions returned.")]


BINARY = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
KEY_PATH = re.compile(r"/sessions/([^/]+)/(?:keys/[^/]+|phase1)")
METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


class BodyLimit:
    """ASGI middleware: a body over the limit is answered 413 before the app reads it — from
    its Content-Length, or, for a body sent without one (chunked), once the bytes read pass the
    limit (so at most the limit is ever held). An uploaded key has its own, larger limit, for
    the session's owner only (``key_owner(scope)``: the request carries the session's token)."""

    def __init__(self, app: ASGIApp, limits: Limits,
                 key_owner: Callable[[Scope], bool] = lambda _scope: True):
        self.app, self.limits, self.key_owner = app, limits, key_owner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_key = is_key_upload(scope) and self.key_owner(scope)
        limit = self.limits.key_bytes if is_key else self.limits.body_bytes
        hint = (" (a key upload may be larger only with the session's bearer token)"
                if is_key_upload(scope) and not is_key else "")
        length = Headers(scope=scope).get("content-length")
        if length is not None:
            if not length.isdigit() or int(length) > limit:
                await _error(413, f"request body of {length} bytes exceeds {limit}{hint}")(
                    scope, receive, send)
                return
        elif scope["method"] in METHODS_WITH_BODY:
            body = await _read_at_most(receive, limit)
            if body is None:
                await _error(413, f"request body exceeds {limit} bytes{hint}")(
                    scope, receive, send)
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, send)


def is_key_upload(scope: Scope) -> bool:
    return scope["method"] == "PUT" and KEY_PATH.fullmatch(scope["path"]) is not None


async def _read_at_most(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it is longer than ``limit``."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        size += len(message.get("body", b""))
        if size > limit:
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the app a body already read, then the real one's messages."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()
    return replayed


class SessionRemoved(SplitverifyError):
    """The session was deleted or expired while a request to it was in flight."""


class ProofRequired(SplitverifyError):
    def __init__(self, kind: str, step: int):
        super().__init__(f"step {step}: the server challenges this {kind} message; re-send it "
                         "with its proof")
        self.kind, self.step = kind, step


@dataclass
class _Session:
    token_sha256: str
    request: dict                                # the SessionCreate body
    party: ServerParty
    stopped: StopRecord | None = None
    # the last answer per message kind, for a client re-sending a message whose answer was lost
    replies: dict[str, dict] = field(default_factory=dict)
    # per circuit: the server's contribution (path, hash) and, once accepted, the final key
    keys: dict[str, dict] = field(default_factory=dict)
    saved_entries: int = 0                       # transcript entries already in the store
    # the session's powers of tau: {"record"} once known; a pending two-party phase 1 holds
    # {"ready": False, "client", "power", "server_file", "server_hash"}
    ptau: dict = field(default_factory=dict)
    # one message at a time per session: two at once would both see the same step pending
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    last_request: float = field(default_factory=time.time)     # for idle expiry
    removed: bool = False                        # deleted or expired: nothing more is stored

    @property
    def keys_ready(self) -> bool:
        return self.ptau.get("ready", True) and all(self.keys[kind].get("final")
                                                    for kind in self.keys)


def _error(status: int, message: str, headers: dict[str, str] | None = None,
           **extra) -> JSONResponse:
    return JSONResponse(status_code=status, headers=headers,
                        content=ErrorBody(error=message, **extra).model_dump(exclude_none=True))


def _file_response(path: str, contribution_hash: str, signature: str | None = None) -> Response:
    """A ceremony file of the server's, with the hash of its contribution (and the server's
    signature of it, for a phase-2 key)."""
    headers = {"X-Contribution-Hash": contribution_hash}
    if signature is not None:
        headers["X-Contribution-Signature"] = signature
    return Response(Path(path).read_bytes(), media_type="application/octet-stream",
                    headers=headers)


def create_app(circuits_for: Callable[[SplitSpec], SplitCircuits] | None = None, *,
               backend: str | None = None, malicious: str | None = None,
               limits: Limits = Limits(), db: str | Path = ":memory:",
               ceremony: bool = True, ptau: PtauPolicy | None = None,
               on_party: Callable[[ServerParty], object] | None = None,
               identity: Identity | None = None) -> FastAPI:
    """``circuits_for(spec)`` gives a session's circuits (a fresh ``SplitCircuits`` by default;
    with ``ceremony=False`` its keys are used as they are); ``malicious`` makes this server
    cheat (tamper scenarios); ``limits`` bounds what clients can make it hold; ``db`` is the
    SQLite file sessions persist in (reloaded at start; ceremony keys are kept next to it, in
    ``<db>.keys/``); ``on_party`` sees each session's party as it is made or resumed (e.g.
    ``LedgerSink.attach``, to log its statements); ``ptau`` which powers of tau the
    session keys come from (None: the operator's circuits decide, as in tests and the demo);
    ``identity`` signs what the server sends (default: kept next to the database in
    ``<db>.identity``, or one per process for ``:memory:``)."""
    scenarios.require_side(malicious, "server")
    app = FastAPI(title="splitverify server", version="0.1.0")
    # the nesting check runs inside the body limit (the middleware added last runs first)
    app.add_middleware(NestingLimit, limit=limits.nesting, is_binary=is_key_upload,
                       refuse=_error)
    app.add_middleware(BodyLimit, limits=limits, key_owner=lambda scope: key_owner(scope))
    sessions: dict[int, _Session | None] = {}       # None: a session being made
    creating = threading.Lock()          # the session count is checked and raised at once
    store = SessionStore(db)
    creation_rate = CreationRate(limits.client_sessions, limits.client_window)
    last_sweep = [0.0]
    app.state.sessions, app.state.store = sessions, store
    circuits_for = circuits_for or (lambda spec: SplitCircuits(spec))
    key_folders: dict[int, Path] = {}
    identity = identity or (Identity.generate() if str(db) == ":memory:"
                            else Identity.load_or_create(f"{db}.identity"))
    app.state.identity = identity
    phase1_cache = ArtifactCache() if ptau is not None and ptau.origin == "two-party" else None
    server_party = identity.address if phase1_cache is not None else None

    def key_folder(session_id: int) -> Path:
        """Where a session's ceremony keys live: next to the database (``<db>.keys/<id>``),
        or in a temporary folder when sessions are not persisted."""
        if session_id not in key_folders:
            key_folders[session_id] = (
                Path(tempfile.mkdtemp(prefix="sv-server-keys-")) if str(db) == ":memory:"
                else Path(f"{db}.keys") / str(session_id))
        return key_folders[session_id]

    def new_party(request: SessionCreate, session_id: int) -> ServerParty:
        spec = request.spec()
        _, server_params = initial_params(spec, request.seed)
        party = scenarios.party_class("server", malicious)(
            spec, session_id, request.proof_mode, server_params, circuits_for(spec),
            backend=backend, identity=identity, peer=request.client_identity)
        # step 0's weightsCommitment must continue the chain from the declared starting point
        party.client_chain = request.initial_weights_commitment
        if on_party is not None:
            on_party(party)
        return party

    def persist(session: _Session, checkpoint: bool = False) -> None:
        if session.removed:
            raise SessionRemoved(f"session {session.party.session_id} was deleted or expired "
                                 "while this request was handled; nothing of it was kept")
        party = session.party
        entries = party.transcript.entries if party.transcript is not None else []
        store.save(party.session_id, token_sha256=session.token_sha256,
                   request=session.request, state=party.snapshot(), replies=session.replies,
                   keys={**session.keys, PTAU_RECORD: session.ptau},
                   stopped=None if session.stopped is None else session.stopped.model_dump(),
                   entries=[e.model_dump() for e in entries[session.saved_entries:]],
                   checkpoint=((party.next_step - 1, params_to_lists(party.params))
                               if checkpoint else None))
        session.saved_entries = len(entries)

    def contribution_signatures(session: _Session) -> dict[str, dict[str, str]]:
        return {kind: {"server": record.get("server_signature"),
                       "client": record.get("client_signature")}
                for kind, record in session.keys.items()}

    def start_transcript(session: _Session) -> None:
        party = session.party
        party.transcript = new_transcript(party, contribution_signatures(session))
        if party.mode.proves:
            powersoftau.record_in(party.transcript, session.ptau.get("record")
                                  or powersoftau.record_of(party.prover.circuits))

    def resume(stored) -> _Session:
        request = SessionCreate.model_validate(stored.request)
        party = new_party(request, stored.session_id)
        party.restore(stored.state)
        keys = dict(stored.keys)
        ptau_record = keys.pop(PTAU_RECORD, {})          # absent in sessions stored before it
        stopped = None if stored.stopped is None else StopRecord.model_validate(stored.stopped)
        session = _Session(stored.token_sha256, stored.request, party, stopped,
                           stored.replies, keys, len(stored.entries), ptau=ptau_record)
        if session.ptau.get("file"):
            party.prover.circuits.ptau = zk.PtauFile.open(session.ptau["file"],
                                                          expected_blake2b=session.ptau["blake2b"])
        for kind, record in keys.items():
            if record.get("final"):
                load_final(party.prover.circuits, kind, Path(record["final"]),
                           record["blake2b"], record["transcript"])
        if not session.keys_ready:
            return session
        start_transcript(session)
        order = {kind: i for i, kind in enumerate(KINDS)}
        party.transcript.entries = [TranscriptEntry(**e) for e in sorted(
            stored.entries, key=lambda e: (e["step"], order[e["kind"]]))]
        party.transcript.detected = stopped
        return session

    def forget(session_id: int) -> None:
        """The session's stored rows and key files, removed."""
        store.delete(session_id)
        folder = key_folders.pop(session_id, None)
        if folder is None and str(db) != ":memory:":
            folder = Path(f"{db}.keys") / str(session_id)
        if folder is not None and folder.exists():
            shutil.rmtree(folder)

    def remove(session_id: int, session: _Session, *, wait: bool) -> bool:
        """End a session (deleted or expired): its slot, state and keys. False when it is
        busy and ``wait`` is not set (an expiry sweep does not wait for a step in flight)."""
        if not session.lock.acquire(blocking=wait):
            return False
        try:
            if session.removed:
                return False
            session.removed = True
            sessions.pop(session_id, None)
            forget(session_id)
        finally:
            session.lock.release()
        return True

    def sweep_expired() -> None:
        """Remove the sessions idle for longer than the limit (at most once a second)."""
        now = time.time()
        if now - last_sweep[0] < 1:
            return
        last_sweep[0] = now
        for session_id, session in list(sessions.items()):
            if session is not None and now - session.last_request > limits.idle_seconds:
                remove(session_id, session, wait=False)

    def holds_token(session: _Session, token: str | None) -> bool:
        return token is not None and secrets.compare_digest(token_digest(token),
                                                            session.token_sha256)

    def key_owner(scope: Scope) -> bool:
        """Does this key upload carry its session's token? (The key limit is the owner's.)"""
        found = KEY_PATH.fullmatch(scope["path"])
        digits = found.group(1) if found else ""
        if not digits.isdigit() or len(digits) > 80:
            return False
        session = sessions.get(int(digits))
        return session is not None and holds_token(session, bearer_token(Headers(scope=scope)))

    for stored in store.load_all():
        if time.time() - stored.updated > limits.idle_seconds:
            forget(stored.session_id)            # it expired while the server was down
            continue
        sessions[stored.session_id] = resume(stored)
        sessions[stored.session_id].last_request = stored.updated

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException):
        # the framework's own answers (no such route, method not allowed) as ErrorBody too
        return _error(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(InputError)
    async def input_error(_request: Request, exc: InputError):
        return _error(422, without_paths(str(exc)))

    @app.exception_handler(SessionRemoved)
    async def removed_meanwhile(_request: Request, exc: SessionRemoved):
        return _error(404, str(exc))

    @app.exception_handler(SetupError)
    async def setup_error(_request: Request, exc: SetupError):
        # e.g. a session whose client announced another powers of tau than ours
        return _error(422, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_body(_request: Request, exc: RequestValidationError):
        # never echo the input back: it may hold NaN/inf, which JSON cannot carry
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}"
                             for e in exc.errors()[:5])
        return _error(422, f"invalid request: {problems}")

    def session_of(request: Request, session_id: int, *, stopped_ok: bool = False
                   ) -> _Session | JSONResponse:
        sweep_expired()
        session = sessions.get(session_id)
        if session is None:
            return _error(404, f"no session {session_id} (a session is removed when its owner "
                               f"deletes it or after {limits.idle_seconds} s without a request)")
        token = bearer_token(request.headers)
        if token is None:
            return _error(401, "missing bearer token (Authorization: Bearer <token>)")
        if not holds_token(session, token):
            return _error(403, "wrong token for this session")
        now = time.time()
        if now - session.last_request >= 1:      # the idle clock, kept across restarts
            store.touch(session_id, now)
        session.last_request = now
        if session.stopped and not stopped_ok:
            return _error(409, "the session was stopped", **session.stopped.model_dump())
        return session

    def stop(session: _Session, exc: TamperDetected) -> JSONResponse:
        session.stopped = StopRecord.of(exc)
        if session.party.transcript is not None:
            session.party.transcript.detected = session.stopped
        persist(session)
        return _error(409, str(exc), **session.stopped.model_dump())

    def need_proof(kind: str, step: int) -> tuple[str, str]:
        raise ProofRequired(kind, step)

    @app.post("/sessions", response_model=SessionCreated, status_code=201,
              responses=errors(*COMMON, 429))
    def create_session(body: SessionCreate, request: Request):
        mode = body.proof_mode               # a bad mode was a 422 before anything was made
        if mode.commits and body.initial_weights_commitment is None:
            raise InputError(f"proof mode {body.proof_mode} needs initial_weights_commitment: "
                             "the commitment of the client's initial weights, which step 0's "
                             "weightsCommitment must equal")
        body.within(limits)
        if mode.commits or body.client_identity is not None:
            # the client's statements and contributions are checked against this address
            body = body.model_copy(update={"client_identity": check_address(
                body.client_identity, "the client's (client_identity)")})
        address = request.client.host if request.client else "unknown"
        wait = creation_rate.admit(address)
        if wait:
            retry = str(int(wait) + 1)
            return _error(429, f"{address} has created {limits.client_sessions} sessions in "
                               f"{limits.client_window} s, the most this server allows "
                               f"(--client-sessions); retry in {retry} s",
                          headers={"Retry-After": retry})
        if mode.proves:                      # before anything is compiled or set up
            kind, constraints = largest_circuit(body.spec())
            if constraints > limits.constraints:
                raise InputError(f"this model's {kind} circuit needs about {constraints:,} "
                                 f"constraints; this server sets up at most "
                                 f"{limits.constraints:,} (--max-constraints): use a smaller "
                                 "model or batch, or proof_mode 'off'")
        sweep_expired()
        with creating:
            if len(sessions) >= limits.sessions:
                return _error(429, f"this server holds its limit of {limits.sessions} sessions; "
                                   "no new one until the operator raises it (--max-sessions)")
            session_id = random_field()
            sessions[session_id] = None     # holds its place in the count while it is made
        try:
            session, token = new_session(body, session_id)
        except BaseException:
            del sessions[session_id]
            raise
        session.last_request = time.time()  # idle from now: making it may have taken a while
        sessions[session_id] = session
        pending = session.ptau and not session.ptau.get("ready", True)
        return SessionCreated(session_id=session_id, token=token,
                              spec=describe(session.party.spec),
                              proof_mode=session.party.mode,
                              ceremony=bool(session.keys) or bool(pending),
                              idle_expiry_s=limits.idle_seconds,
                              server_identity=identity.address,
                              ptau=({"origin": "two-party", "phase1": True,
                                     "power": session.ptau["power"]} if pending
                                    else session.ptau.get("record")),
                              server_party=server_party)

    def new_session(body: SessionCreate, session_id: int) -> tuple[_Session, str]:
        """The session (stored) and its bearer token."""
        party = new_party(body, session_id)
        token = secrets.token_urlsafe(32)
        session = _Session(token_digest(token), body.model_dump(), party)
        if ceremony and party.mode.proves:   # the server's half of each key's ceremony
            session.ptau = choose_ptau(body, party, session_id)
            if session.ptau.get("ready", True):
                contribute_keys(session)
        else:
            start_transcript(session)
        persist(session)
        return session, token

    def choose_ptau(body: SessionCreate, party: ServerParty, session_id: int) -> dict:
        """The session's powers of tau under the server's policy, checked against the one the
        client announced; a two-party phase 1 not yet made with this client is started."""
        circuits = party.prover.circuits
        if ptau is None:
            return {}
        if body.ptau is not None:
            powersoftau.check_same(ptau.announce(), body.ptau, "client")
        if ptau.origin == "published":
            circuits.ptau = ptau.file
            return {"record": powersoftau.ptau_record(ptau.file, "published", ptau.file.path.name)}
        if ptau.origin == "development":
            return {}
        client = powersoftau.check_party_id(body.party_id, "the session request's party_id "
                                            "(needed for the two-party phase 1)")
        if client != body.client_identity:
            raise InputError(f"the session request's party_id {client} is not its client_identity "
                             f"{body.client_identity}: the two-party phase 1 is shared by identity "
                             "keys, so a client's party id is its identity address")
        needed = powersoftau.needed_power(circuits)
        found = powersoftau.cached(phase1_cache, server_party, client, needed)
        if found is not None:
            return use_phase1(party, found)
        power = max(needed, powersoftau.MIN_TWO_PARTY_POWER)
        path, contribution = powersoftau.server_start(server_party, power, key_folder(session_id))
        return {"ready": False, "client": client, "power": power, "server_file": str(path),
                "server_hash": contribution}

    def use_phase1(party: ServerParty, prepared: zk.PtauFile) -> dict:
        party.prover.circuits.ptau = prepared
        return {"ready": True, "file": str(prepared.path), "blake2b": prepared.blake2b,
                "record": powersoftau.ptau_record(prepared, "two-party")}

    def contribute_keys(session: _Session) -> None:
        folder = key_folder(session.party.session_id)
        for kind in KINDS:
            key, contribution = server_contribute(session.party.prover.circuits, kind, folder)
            session.keys[kind] = {"server": str(key.zkey), "server_hash": contribution,
                                  "server_signature": sign_contribution(
                                      identity, session.party.session_id, kind, 1, "server",
                                      contribution),
                                  "final": None}

    def ceremony_of(request: Request, session_id: int, kind: str
                    ) -> tuple[_Session, dict] | JSONResponse:
        session = session_of(request, session_id)
        if isinstance(session, JSONResponse):
            return session
        if kind not in session.keys:
            return _error(404, f"no key ceremony for {kind!r} in this session (circuits: "
                               f"{sorted(session.keys) or 'none: keys are the operator’s'})")
        return session, session.keys[kind]

    def phase1_of(request: Request, session_id: int) -> tuple[_Session, dict] | JSONResponse:
        session = session_of(request, session_id)
        if isinstance(session, JSONResponse):
            return session
        if "server_file" not in session.ptau:
            return _error(404, "no two-party phase 1 in this session (the server uses "
                               f"{(session.ptau.get('record') or {}).get('origin', 'its own keys')})")
        return session, session.ptau

    @app.get("/sessions/{session_id}/phase1", response_class=Response,
             responses={200: {"content": BINARY, "description": "The server's ptau."},
                        **errors(*SESSION_ERRORS)})
    def server_phase1(session_id: SessionId, request: Request):
        """The server's powers of tau (its contribution to the pair's phase 1), for the client
        to check and contribute to."""
        found = phase1_of(request, session_id)
        if isinstance(found, JSONResponse):
            return found
        _, record = found
        return _file_response(record["server_file"], record["server_hash"])

    @app.put("/sessions/{session_id}/phase1", response_model=Phase1Accepted,
             responses=errors(*SESSION_ERRORS),
             openapi_extra={"requestBody": {"required": True, "content": BINARY}})
    async def client_phase1(session_id: SessionId, request: Request):
        """The client's contribution to the phase 1: checked against the server's file, then
        prepared for phase 2 and cached for this pair of parties; the server's phase-2 key
        contributions follow."""
        found = phase1_of(request, session_id)
        if isinstance(found, JSONResponse):
            return found
        session, record = found
        body = await request.body()
        with session.lock:
            if record.get("ready"):
                return _error(409, "the phase 1 of this session is already done")
            folder = key_folder(session_id)
            try:
                prepared = powersoftau.server_accept(phase1_cache, server_party, record["client"],
                                                     Path(record["server_file"]), body, folder)
            except SplitverifyError as exc:
                return _error(422, f"the client's phase-1 contribution is refused: {exc}")
            record.update(use_phase1(session.party, prepared))
            contribute_keys(session)
            persist(session)
        return {"sha256": record["record"]["sha256"], "power": prepared.power}

    @app.get("/sessions/{session_id}/keys/{kind}", response_class=Response,
             responses={200: {"content": BINARY, "description": "The key (.zkey)."},
                        **errors(*SESSION_ERRORS)})
    def server_key(session_id: SessionId, kind: str, request: Request):
        """The circuit's key with the server's contribution, for the client to contribute to."""
        found = ceremony_of(request, session_id, kind)
        if isinstance(found, JSONResponse):
            return found
        _, record = found
        return _file_response(record["server"], record["server_hash"],
                              record["server_signature"])

    @app.put("/sessions/{session_id}/keys/{kind}", response_model=KeyAccepted,
             responses=errors(*SESSION_ERRORS),
             openapi_extra={"requestBody": {"required": True, "content": BINARY}})
    async def final_key(session_id: SessionId, kind: str, request: Request):
        """The client's final key: checked against our initial key, with our contribution in
        it, it becomes the session's key for ``kind``."""
        found = ceremony_of(request, session_id, kind)
        if isinstance(found, JSONResponse):
            return found
        session, record = found
        if record["final"]:
            return _error(409, f"the {kind} key is already final; start a new session to redo "
                               "the ceremony")
        folder = key_folder(session_id)
        body = await request.body()
        # the client's contribution: its hash, signed by the client's pinned identity
        client_hash = request.headers.get("x-contribution-hash", "")
        client_signature = request.headers.get("x-contribution-signature")
        if not contribution_signed(session.party.peer, session_id, kind, 2, "client",
                                   client_hash, client_signature):
            return _error(422, f"the {kind} key is refused: its contribution hash "
                               "(X-Contribution-Hash) is not signed (X-Contribution-Signature) "
                               f"by the client's pinned identity {session.party.peer}")
        with session.lock:
            if session.removed:              # deleted while the key was uploaded: write nothing
                return _error(404, f"session {session_id} was deleted or expired meanwhile")
            if record["final"]:              # a concurrent upload finished first
                return _error(409, f"the {kind} key is already final")
            try:
                key = server_accept(session.party.prover.circuits, kind, body,
                                    record["server_hash"], folder, client_hash)
            except SplitverifyError as exc:
                return _error(422, f"the {kind} key is refused: {without_paths(str(exc))}")
            record.update(final=str(key.zkey), blake2b=key.blake2b,
                          transcript=[asdict(c) for c in key.transcript],
                          client_signature=client_signature)
            if session.keys_ready:
                start_transcript(session)
            persist(session)
        return {"kind": kind, "accepted": True,
                "contributions": [c.name for c in key.transcript]}

    def not_ready(session: _Session) -> JSONResponse | None:
        if session.keys_ready:
            return None
        if not session.ptau.get("ready", True):
            return _error(425, "the two-party phase 1 is not finished: the client's "
                               "contribution is missing (PUT /sessions/{id}/phase1)")
        missing = sorted(k for k, record in session.keys.items() if not record.get("final"))
        return _error(425, f"the key ceremony is not finished: {missing} still need the "
                           "client's contribution (PUT /sessions/{id}/keys/{kind})")

    def handled_again(session: _Session, kind: str, msg: BaseModel) -> dict | None:
        """The stored answer if ``msg`` states exactly what the last message of this kind
        stated (re-sent because its answer was lost; its proof bytes may differ, since a
        Groth16 proof can be re-randomized) and the session has not moved past it."""
        last = session.replies.get(kind)
        if (last is None or last["step"] != msg.step
                or last["digest"] != statement_digest(msg)):
            return None
        return last["response"] if session.party.handles_now(kind, msg.step) else None

    def handle(session: _Session, kind: str, msg: BaseModel, run: Callable[[], dict]):
        """Run one message against the party; commit the outcome before answering."""
        with session.lock:
            return handle_alone(session, kind, msg, run)

    def handle_alone(session: _Session, kind: str, msg: BaseModel, run: Callable[[], dict]):
        if (early := not_ready(session)) is not None:
            return early
        if (again := handled_again(session, kind, msg)) is not None:
            return again
        if kind == "forward" and session.party.next_step >= limits.steps:
            return _error(422, f"the session has made the {limits.steps} steps this server "
                               "allows per session (--max-steps); start a new session")
        try:
            response = run()
        except ProofRequired as exc:
            # the draw and the statement it binds are stored before the 428 reveals them
            persist(session)
            return _error(428, str(exc), challenge=exc.kind, step=exc.step)
        except TamperDetected as exc:
            return stop(session, exc)
        except Exception:
            roll_back(session)
            raise
        session.replies[kind] = {"step": msg.step, "digest": statement_digest(msg),
                                 "response": response}
        persist(session, checkpoint=kind == "backward")
        return response

    def roll_back(session: _Session) -> None:
        """Undo a message that was refused part-way: the party and the stored answers are
        reloaded from the store and the transcript cut back to its stored entries. The store is
        what a restart would load, so after a refusal live and stored state cannot differ (a
        snapshot kept in memory would be a second copy to keep in step)."""
        stored = store.load(session.party.session_id)
        session.party.restore(stored.state)
        session.replies = stored.replies
        if session.party.transcript is not None:
            del session.party.transcript.entries[session.saved_entries:]

    step_errors = errors(*SESSION_ERRORS, 425, 428)

    @app.post("/sessions/{session_id}/forward", response_model=GradientMessage,
              responses=step_errors)
    def forward(session_id: SessionId, msg: ForwardMessage, request: Request):
        session = session_of(request, session_id)
        if isinstance(session, JSONResponse):
            return session
        return handle(session, "forward", msg,
                      lambda: session.party.receive_forward(msg, need_proof).model_dump())

    @app.post("/sessions/{session_id}/backward", response_model=StepDone, responses=step_errors)
    def backward(session_id: SessionId, msg: BackwardMessage, request: Request):
        session = session_of(request, session_id)
        if isinstance(session, JSONResponse):
            return session

        def run() -> dict:
            session.party.receive_backward(msg, need_proof)
            return {"step": msg.step}
        return handle(session, "backward", msg, run)

    @app.post("/sessions/{session_id}/prove", response_model=ProofBody,
              responses=errors(*SESSION_ERRORS))
    def prove(session_id: SessionId, body: ProveRequest, request: Request):
        session = session_of(request, session_id)
        if isinstance(session, JSONResponse):
            return session
        if body.kind not in KINDS:
            raise InputError(f"unknown circuit {body.kind!r}")
        with session.lock:
            proof, signature = session.party.signed_proof(body.kind, body.step)
            persist(session)                 # the prove time joins the recorded figures
        return {"proof": proof, "signature": signature}

    @app.get("/sessions/{session_id}", response_model=SessionStatus,
             responses=errors(*SESSION_ERRORS))
    def status(session_id: SessionId, request: Request):
        session = session_of(request, session_id, stopped_ok=True)
        if isinstance(session, JSONResponse):
            return session
        party = session.party
        return {"session_id": session_id, "next_step": party.next_step,
                "stopped": session.stopped,
                "proof_mode": party.mode, "proofs_verified": party.verifier.verified,
                "challenged": party.verifier.challenged, "losses": party.losses,
                "prove_s": party.prover.prove_seconds, "verify_s": party.verifier.verify_seconds,
                "idle_expiry_s": limits.idle_seconds}

    @app.delete("/sessions/{session_id}", response_model=SessionDeleted,
                responses=errors(*SESSION_ERRORS))
    def delete_session(session_id: SessionId, request: Request):
        """End the session now (its owner only): its state, transcript and keys are removed
        from the server; a step in flight finishes first."""
        session = session_of(request, session_id, stopped_ok=True)
        if isinstance(session, JSONResponse):
            return session
        if not remove(session_id, session, wait=True):
            return _error(404, f"no session {session_id} (it was removed meanwhile)")
        return {"session_id": session_id, "deleted": True}

    @app.post("/sessions/{session_id}/predict", response_model=Predictions,
              responses=errors(*SESSION_ERRORS))
    def predict(session_id: SessionId, body: PredictRequest, request: Request):
        """The server half's predictions for cut-layer activations (evaluation: nothing is
        learned or proven)."""
        session = session_of(request, session_id)
        if isinstance(session, JSONResponse):
            return session
        spec = session.party.spec
        try:
            acts = torch.tensor(body.activations, dtype=torch.int64)
        except (ValueError, TypeError, RuntimeError) as exc:
            raise InputError(f"activations must be an integer matrix: {exc}") from exc
        if acts.ndim != 2 or acts.shape[1] != spec.cut_width or len(acts) == 0:
            raise InputError(f"activations must be n×{spec.cut_width} (1 ≤ n ≤ "
                             f"{MAX_PREDICT_ROWS}); got {tuple(acts.shape)}")
        spec.quant.check_range(acts, "the activations")
        full = SplitSpec(spec.client, spec.server, len(acts), spec.quant)
        logits = model.forward(full, spec.server, session.party.params, acts).output
        return {"classes": logits.argmax(1).tolist()}

    @app.get("/sessions/{session_id}/transcript", response_model=Transcript,
             responses=errors(*SESSION_ERRORS, 425))
    def transcript(session_id: SessionId, request: Request):
        session = session_of(request, session_id, stopped_ok=True)
        if isinstance(session, JSONResponse):
            return session
        if (early := not_ready(session)) is not None:
            return early
        return session.party.transcript.model_dump()

    return app


__all__ = ["create_app", "ErrorBody", "Limits", "SessionCreate", "SessionCreated"]
