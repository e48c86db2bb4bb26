"""The splitverify server (installed as ``splitverify.server``): a FastAPI app that holds the
server's half of each session and speaks the protocol of :mod:`splitverify.protocol`.

    POST /sessions                      create a session → id, bearer token
    POST /sessions/{id}/forward         ForwardMessage → GradientMessage
    POST /sessions/{id}/backward        BackwardMessage → {"step": t}
    POST /sessions/{id}/prove           {"kind", "step"} → {"proof"}   (the client's challenge)
    GET  /sessions/{id}                 status
    GET  /sessions/{id}/transcript      what the server received and checked

A message the server challenges in audit mode is answered 428 with ``{"challenge": kind}``:
the client re-sends it with the proof (the draw is made once per step). Tampering detected →
409 with the step, the detecting party and the reason; the session is stopped. Bad input →
4xx with a message. Sessions live in memory (persistence across restarts is not built yet).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from ..circuits import KINDS, SplitCircuits
from ..errors import InputError, SplitverifyError, TamperDetected
from ..model import Dense, SplitSpec
from ..protocol import (BackwardMessage, ForwardMessage, GradientMessage, ProofMode, ServerParty,
                        new_transcript, random_field)
from ..refnet import initial_params

MAX_BODY = 8 << 20


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


class ProveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str
    step: int


class ProofRequired(SplitverifyError):
    def __init__(self, kind: str, step: int):
        super().__init__(f"step {step}: the server challenges this {kind} message; re-send it "
                         "with its proof")
        self.kind, self.step = kind, step


@dataclass
class _Session:
    token: str
    party: ServerParty
    stopped: dict | None = None


def _error(status: int, message: str, **extra) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": message, **extra})


def create_app(circuits_for: Callable[[SplitSpec], SplitCircuits] | None = None, *,
               backend: str | None = None, malicious: str | None = None,
               max_body: int = MAX_BODY) -> FastAPI:
    """``circuits_for(spec)`` gives the circuits and keys a session uses (the demo shares them
    with its client); ``malicious`` makes this server cheat (tamper scenarios)."""
    app = FastAPI(title="splitverify server", version="0.1.0")
    sessions: dict[int, _Session] = {}
    app.state.sessions = sessions
    circuits_for = circuits_for or (lambda spec: SplitCircuits(spec))

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if length is not None and int(length) > max_body:
            return _error(413, f"request body of {length} bytes exceeds {max_body}")
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

    def session_of(request: Request, session_id: int) -> _Session | JSONResponse:
        session = sessions.get(session_id)
        if session is None:
            return _error(404, f"no session {session_id}")
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return _error(401, "missing bearer token")
        if not secrets.compare_digest(auth[7:], session.token):
            return _error(403, "wrong token for this session")
        if session.stopped:
            return _error(409, "the session was stopped", **session.stopped)
        return session

    def stop(session: _Session, exc: TamperDetected) -> JSONResponse:
        session.stopped = {"detected_step": exc.step, "detected_by": exc.detected_by,
                           "reason": exc.reason}
        if session.party.transcript is not None:
            session.party.transcript.detected = session.stopped
        return _error(409, str(exc), **session.stopped)

    def need_proof(kind: str, step: int) -> str:
        raise ProofRequired(kind, step)

    @app.post("/sessions", response_model=SessionCreated, status_code=201)
    def create_session(body: SessionCreate) -> SessionCreated:
        spec = body.spec()
        mode = ProofMode.parse(body.proof_mode)
        _, server_params = initial_params(spec, body.seed)
        session_id = random_field()
        party = ServerParty(spec, session_id, mode, server_params, circuits_for(spec),
                            backend=backend, malicious=malicious)
        party.transcript = new_transcript(party)
        token = secrets.token_urlsafe(32)
        sessions[session_id] = _Session(token, party)
        return SessionCreated(session_id=session_id, token=token, spec=party.transcript.spec,
                              proof_mode=str(mode))

    @app.post("/sessions/{session_id}/forward", response_model=GradientMessage)
    def forward(session_id: int, msg: ForwardMessage, request: Request):
        session = session_of(request, session_id)
        if isinstance(session, JSONResponse):
            return session
        try:
            return session.party.receive_forward(msg, need_proof)
        except ProofRequired as exc:
            return _error(428, str(exc), challenge=exc.kind, step=exc.step)
        except TamperDetected as exc:
            return stop(session, exc)

    @app.post("/sessions/{session_id}/backward")
    def backward(session_id: int, msg: BackwardMessage, request: Request):
        session = session_of(request, session_id)
        if isinstance(session, JSONResponse):
            return session
        try:
            session.party.receive_backward(msg, need_proof)
        except ProofRequired as exc:
            return _error(428, str(exc), challenge=exc.kind, step=exc.step)
        except TamperDetected as exc:
            return stop(session, exc)
        return {"step": msg.step}

    @app.post("/sessions/{session_id}/prove")
    def prove(session_id: int, body: ProveRequest, request: Request):
        session = session_of(request, session_id)
        if isinstance(session, JSONResponse):
            return session
        if body.kind not in KINDS:
            raise InputError(f"unknown circuit {body.kind!r}")
        return {"proof": session.party.prove(body.kind, body.step)}

    @app.get("/sessions/{session_id}")
    def status(session_id: int, request: Request):
        session = session_of(request, session_id)
        if isinstance(session, JSONResponse):
            return session
        party = session.party
        return {"session_id": session_id, "next_step": party.next_step,
                "proof_mode": str(party.mode), "proofs_verified": party.verifier.verified,
                "losses": party.losses}

    @app.get("/sessions/{session_id}/transcript")
    def transcript(session_id: int, request: Request):
        session = sessions.get(session_id)
        if session is None:
            return _error(404, f"no session {session_id}")
        checked = session_of(request, session_id)
        if isinstance(checked, JSONResponse) and checked.status_code != 409:
            return checked
        return session.party.transcript.model_dump()

    return app


__all__ = ["create_app", "SessionCreate", "SessionCreated"]
