"""The splitverify server (installed as ``splitverify.server``): a FastAPI app that holds the
server's half of each session and speaks the protocol of :mod:`splitverify.protocol`.

    POST /sessions                      create a session → id, bearer token
    GET  /sessions/{id}/keys/{kind}     the key with the server's phase-2 contribution
    PUT  /sessions/{id}/keys/{kind}     the client's final key (checked, then the session's key)
    POST /sessions/{id}/forward         ForwardMessage → GradientMessage
    POST /sessions/{id}/backward        BackwardMessage → {"step": t}
    POST /sessions/{id}/prove           {"kind", "step"} → {"proof"}   (the client's challenge)
    POST /sessions/{id}/predict         {"activations"} → {"classes"}  (evaluation, no proof)
    GET  /sessions/{id}                 status
    GET  /sessions/{id}/transcript      what the server received and checked

With ``ceremony=True`` (``serve``, ``demo``) every session's keys come from a two-party
ceremony (:mod:`splitverify.keyexchange`); steps are refused (425) until the three keys are
final. With ``ceremony=False`` the operator's ``circuits_for`` keys are used as they are.

A message the server challenges in audit mode is answered 428 with ``{"challenge": kind}``:
the client re-sends it with the proof (the draw is made once per step). Tampering detected →
409 with the step, the detecting party and the reason; the session is stopped. Bad input →
4xx with a message, and nothing changes.

Every handled message is committed to the session store (SQLite with ``--db``, see
:mod:`splitverify.server.store`) before it is answered, so a restarted server resumes every
session. A message re-sent because its answer was lost (same step, same bytes) gets the same
answer again; any other message for a step already handled is a replay.
"""

from __future__ import annotations

import hashlib
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from ..circuits import KINDS, SplitCircuits
from ..circuits.generator import describe
from ..errors import InputError, SplitverifyError, TamperDetected
from ..keyexchange import load_final, server_accept, server_contribute
from .. import model
from ..model import Dense, SplitSpec
from ..protocol import (BackwardMessage, ForwardMessage, GradientMessage, ProofMode, ServerParty,
                        new_transcript, params_to_lists, random_field)
from ..refnet import initial_params
from ..transcript import ORDER, TranscriptEntry
from .store import SessionStore, token_digest

MAX_BODY = 8 << 20
MAX_KEY_BODY = 1 << 30      # an uploaded proving key (~100 MB for RefNet's 2^18 circuit)
MAX_PREDICT_ROWS = 4096


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = Field("refnet", description="'refnet' (REFERENCE.md) or 'layers'")
    client_layers: list[tuple[int, int, bool]] | None = None   # (n_in, n_out, relu) for 'layers'
    server_layers: list[tuple[int, int, bool]] | None = None
    batch: int = Field(16, ge=1, le=1024)
    proof_mode: str = "every"
    seed: int = 0

    def spec(self) -> SplitSpec:
        if self.model == "refnet":
            return SplitSpec.refnet(batch=self.batch)
        if self.model == "layers" and self.client_layers and self.server_layers:
            return SplitSpec(tuple(Dense(*d) for d in self.client_layers),
                             tuple(Dense(*d) for d in self.server_layers), self.batch)
        raise InputError("model must be 'refnet', or 'layers' with client_layers and "
                         "server_layers")


class SessionCreated(BaseModel):
    session_id: int
    token: str
    spec: str
    proof_mode: str
    ceremony: bool = False       # the client must contribute to the keys before the first step


class ProveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str
    step: int


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    activations: list[list[int]] = Field(..., max_length=MAX_PREDICT_ROWS)


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
    stopped: dict | None = None
    # the last answer per message kind, for a client re-sending a message whose answer was lost
    replies: dict[str, dict] = field(default_factory=dict)
    # per circuit: the server's contribution (path, hash) and, once accepted, the final key
    keys: dict[str, dict] = field(default_factory=dict)
    saved_entries: int = 0                       # transcript entries already in the store

    @property
    def keys_ready(self) -> bool:
        return all(self.keys[kind].get("final") for kind in self.keys)


def _digest(msg: BaseModel) -> str:
    return hashlib.sha256(msg.model_dump_json().encode()).hexdigest()


def _error(status: int, message: str, **extra) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": message, **extra})


def create_app(circuits_for: Callable[[SplitSpec], SplitCircuits] | None = None, *,
               backend: str | None = None, malicious: str | None = None,
               max_body: int = MAX_BODY, db: str | Path = ":memory:",
               ceremony: bool = True,
               on_party: Callable[[ServerParty], object] | None = None) -> FastAPI:
    """``circuits_for(spec)`` gives a session's circuits (a fresh ``SplitCircuits`` by default;
    with ``ceremony=False`` its keys are used as they are); ``malicious`` makes this server
    cheat (tamper scenarios); ``db`` is the SQLite file sessions persist in (reloaded at start;
    ceremony keys are kept next to it, in ``<db>.keys/``); ``on_party`` sees each session's
    party as it is made or resumed (e.g. ``LedgerSink.attach``, to log its statements)."""
    app = FastAPI(title="splitverify server", version="0.1.0")
    sessions: dict[int, _Session] = {}
    store = SessionStore(db)
    app.state.sessions, app.state.store = sessions, store
    circuits_for = circuits_for or (lambda spec: SplitCircuits(spec))
    key_root = (Path(tempfile.mkdtemp(prefix="sv-server-keys-")) if str(db) == ":memory:"
                else Path(f"{db}.keys"))

    def new_party(request: SessionCreate, session_id: int) -> ServerParty:
        spec = request.spec()
        _, server_params = initial_params(spec, request.seed)
        party = ServerParty(spec, session_id, ProofMode.parse(request.proof_mode), server_params,
                            circuits_for(spec), backend=backend, malicious=malicious)
        if on_party is not None:
            on_party(party)
        return party

    def persist(session: _Session, checkpoint: bool = False) -> None:
        party = session.party
        entries = party.transcript.entries if party.transcript is not None else []
        store.save(party.session_id, token_sha256=session.token_sha256,
                   request=session.request, state=party.snapshot(), replies=session.replies,
                   keys=session.keys, stopped=session.stopped,
                   entries=[e.model_dump() for e in entries[session.saved_entries:]],
                   checkpoint=((party.next_step - 1, params_to_lists(party.params))
                               if checkpoint else None))
        session.saved_entries = len(entries)

    def resume(stored) -> _Session:
        request = SessionCreate.model_validate(stored.request)
        party = new_party(request, stored.session_id)
        party.restore(stored.state)
        session = _Session(stored.token_sha256, stored.request, party, stored.stopped,
                           stored.replies, stored.keys, len(stored.entries))
        for kind, record in stored.keys.items():
            if record.get("final"):
                load_final(party.prover.circuits, kind, Path(record["final"]),
                           record["blake2b"], record["transcript"])
        if not session.keys_ready:
            return session
        party.transcript = new_transcript(party)
        order = {kind: i for i, kind in enumerate(ORDER)}
        party.transcript.entries = [TranscriptEntry(**e) for e in sorted(
            stored.entries, key=lambda e: (e["step"], order[e["kind"]]))]
        party.transcript.detected = stored.stopped
        return session

    for stored in store.load_all():
        sessions[stored.session_id] = resume(stored)

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        limit = MAX_KEY_BODY if "/keys/" in request.url.path else max_body
        if length is not None and (not length.isdigit() or int(length) > limit):
            return _error(413, f"request body of {length} bytes exceeds {limit}")
        return await call_next(request)

    @app.exception_handler(InputError)
    async def input_error(_request: Request, exc: InputError):
        return _error(422, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_body(_request: Request, exc: RequestValidationError):
        # never echo the input back: it may hold NaN/inf, which JSON cannot carry
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}"
                             for e in exc.errors()[:5])
        return _error(422, f"invalid request: {problems}")

    def session_of(request: Request, session_id: int, *, stopped_ok: bool = False
                   ) -> _Session | JSONResponse:
        session = sessions.get(session_id)
        if session is None:
            return _error(404, f"no session {session_id}")
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return _error(401, "missing bearer token")
        if not secrets.compare_digest(token_digest(auth[7:]), session.token_sha256):
            return _error(403, "wrong token for this session")
        if session.stopped and not stopped_ok:
            return _error(409, "the session was stopped", **session.stopped)
        return session

    def stop(session: _Session, exc: TamperDetected) -> JSONResponse:
        session.stopped = {"detected_step": exc.step, "detected_by": exc.detected_by,
                           "reason": exc.reason}
        if session.party.transcript is not None:
            session.party.transcript.detected = session.stopped
        persist(session)
        return _error(409, str(exc), **session.stopped)

    def need_proof(kind: str, step: int) -> str:
        raise ProofRequired(kind, step)

    @app.post("/sessions", response_model=SessionCreated, status_code=201)
    def create_session(body: SessionCreate) -> SessionCreated:
        ProofMode.parse(body.proof_mode)        # a bad mode is a 422 before anything is made
        session_id = random_field()
        party = new_party(body, session_id)
        token = secrets.token_urlsafe(32)
        session = _Session(token_digest(token), body.model_dump(), party)
        if ceremony and party.mode.proves:   # the server's half of each key's ceremony
            folder = key_root / str(session_id)
            for kind in KINDS:
                key, contribution = server_contribute(party.prover.circuits, kind, folder)
                session.keys[kind] = {"server": str(key.zkey), "server_hash": contribution,
                                      "final": None}
        else:
            party.transcript = new_transcript(party)
        persist(session)
        sessions[session_id] = session
        return SessionCreated(session_id=session_id, token=token, spec=describe(party.spec),
                              proof_mode=str(party.mode), ceremony=bool(session.keys))

    def ceremony_of(request: Request, session_id: int, kind: str
                    ) -> tuple[_Session, dict] | JSONResponse:
        session = session_of(request, session_id)
        if isinstance(session, JSONResponse):
            return session
        if kind not in session.keys:
            return _error(404, f"no key ceremony for {kind!r} in this session (circuits: "
                               f"{sorted(session.keys) or 'none: keys are the operator’s'})")
        return session, session.keys[kind]

    @app.get("/sessions/{session_id}/keys/{kind}")
    def server_key(session_id: int, kind: str, request: Request):
        """The circuit's key with the server's contribution, for the client to contribute to."""
        found = ceremony_of(request, session_id, kind)
        if isinstance(found, JSONResponse):
            return found
        _, record = found
        return Response(Path(record["server"]).read_bytes(),
                        media_type="application/octet-stream",
                        headers={"X-Contribution-Hash": record["server_hash"]})

    @app.put("/sessions/{session_id}/keys/{kind}")
    async def final_key(session_id: int, kind: str, request: Request):
        """The client's final key: checked against our initial key, with our contribution in
        it, it becomes the session's key for ``kind``."""
        found = ceremony_of(request, session_id, kind)
        if isinstance(found, JSONResponse):
            return found
        session, record = found
        if record["final"]:
            return _error(409, f"the {kind} key is already final; start a new session to redo "
                               "the ceremony")
        folder = key_root / str(session_id)
        try:
            key = server_accept(session.party.prover.circuits, kind, await request.body(),
                                record["server_hash"], folder)
        except SplitverifyError as exc:
            return _error(422, f"the {kind} key is refused: {exc}")
        record.update(final=str(key.zkey), blake2b=key.blake2b,
                      transcript=[asdict(c) for c in key.transcript])
        if session.keys_ready:
            session.party.transcript = new_transcript(session.party)
        persist(session)
        return {"kind": kind, "accepted": True,
                "contributions": [c.name for c in key.transcript]}

    def not_ready(session: _Session) -> JSONResponse | None:
        if session.keys_ready:
            return None
        missing = sorted(k for k, record in session.keys.items() if not record.get("final"))
        return _error(425, f"the key ceremony is not finished: {missing} still need the "
                           "client's contribution (PUT /sessions/{id}/keys/{kind})")

    def handled_again(session: _Session, kind: str, msg: BaseModel) -> dict | None:
        """The stored answer if ``msg`` is exactly the last message of this kind (re-sent
        because its answer was lost) and the session has not moved past it."""
        last = session.replies.get(kind)
        if last is None or last["step"] != msg.step or last["digest"] != _digest(msg):
            return None
        party = session.party
        pending = party._pending
        current = (pending is not None and pending.step == msg.step) if kind == "forward" \
            else (pending is None and party.next_step == msg.step + 1)
        return last["response"] if current else None

    def handle(session: _Session, kind: str, msg: BaseModel, run: Callable[[], dict]):
        """Run one message against the party; commit the outcome before answering."""
        if (early := not_ready(session)) is not None:
            return early
        if (again := handled_again(session, kind, msg)) is not None:
            return again
        try:
            response = run()
        except ProofRequired as exc:
            persist(session)                 # the audit draw is final, even across restarts
            return _error(428, str(exc), challenge=exc.kind, step=exc.step)
        except TamperDetected as exc:
            return stop(session, exc)
        session.replies[kind] = {"step": msg.step, "digest": _digest(msg), "response": response}
        persist(session, checkpoint=kind == "backward")
        return response

    @app.post("/sessions/{session_id}/forward", response_model=GradientMessage)
    def forward(session_id: int, msg: ForwardMessage, request: Request):
        session = session_of(request, session_id)
        if isinstance(session, JSONResponse):
            return session
        return handle(session, "forward", msg,
                      lambda: session.party.receive_forward(msg, need_proof).model_dump())

    @app.post("/sessions/{session_id}/backward")
    def backward(session_id: int, msg: BackwardMessage, request: Request):
        session = session_of(request, session_id)
        if isinstance(session, JSONResponse):
            return session

        def run() -> dict:
            session.party.receive_backward(msg, need_proof)
            return {"step": msg.step}
        return handle(session, "backward", msg, run)

    @app.post("/sessions/{session_id}/prove")
    def prove(session_id: int, body: ProveRequest, request: Request):
        session = session_of(request, session_id)
        if isinstance(session, JSONResponse):
            return session
        if body.kind not in KINDS:
            raise InputError(f"unknown circuit {body.kind!r}")
        proof = session.party.prove(body.kind, body.step)
        persist(session)                     # the prove time joins the recorded figures
        return {"proof": proof}

    @app.get("/sessions/{session_id}")
    def status(session_id: int, request: Request):
        session = session_of(request, session_id, stopped_ok=True)
        if isinstance(session, JSONResponse):
            return session
        party = session.party
        return {"session_id": session_id, "next_step": party.next_step,
                "stopped": session.stopped,
                "proof_mode": str(party.mode), "proofs_verified": party.verifier.verified,
                "challenged": party.verifier.challenged, "losses": party.losses,
                "prove_s": party.prover.prove_seconds, "verify_s": party.verifier.verify_seconds}

    @app.post("/sessions/{session_id}/predict")
    def predict(session_id: int, body: PredictRequest, request: Request):
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

    @app.get("/sessions/{session_id}/transcript")
    def transcript(session_id: int, request: Request):
        session = session_of(request, session_id, stopped_ok=True)
        if isinstance(session, JSONResponse):
            return session
        if (early := not_ready(session)) is not None:
            return early
        return session.party.transcript.model_dump()

    return app


__all__ = ["create_app", "SessionCreate", "SessionCreated"]
