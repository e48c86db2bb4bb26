"""The session's key ceremony: the two-party phase 1 (the server's powers of tau, the client's
contribution) and each circuit's key (the server's contribution, the client's final key)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import Response

from splitverify.protocol.wire import KeyAccepted, Phase1Accepted

from ..responses import SESSION_ERRORS, errors
from ..deps import RunningSession, Service
from ..refusals import AlreadyDone

router = APIRouter()
BINARY = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
BINARY_BODY = {"requestBody": {"required": True, "content": BINARY}}


def file_response(path: str, contribution_hash: str, signature: str | None = None) -> Response:
    """A ceremony file of the server's, with the hash of its contribution (and the server's
    signature of it, for a phase-2 key)."""
    headers = {"X-Contribution-Hash": contribution_hash}
    if signature is not None:
        headers["X-Contribution-Signature"] = signature
    return Response(Path(path).read_bytes(), media_type="application/octet-stream",
                    headers=headers)


@router.get("/sessions/{session_id}/phase1", response_class=Response,
            responses={200: {"content": BINARY, "description": "The server's ptau."},
                       **errors(*SESSION_ERRORS)})
def server_phase1(session: RunningSession):
    """The server's powers of tau (its contribution to the pair's phase 1), for the client
    to check and contribute to."""
    phase1 = session.two_party_phase1()
    return file_response(phase1.server_file, phase1.server_hash)


@router.put("/sessions/{session_id}/phase1", response_model=Phase1Accepted,
            responses=errors(*SESSION_ERRORS), openapi_extra=BINARY_BODY)
async def client_phase1(session: RunningSession, request: Request, service: Service):
    """The client's contribution to the phase 1: checked against the server's file, then
    prepared for phase 2 and cached for this pair of parties; the server's phase-2 key
    contributions follow."""
    session.two_party_phase1()
    return service.accept_phase1(session, await request.body())


@router.get("/sessions/{session_id}/keys/{kind}", response_class=Response,
            responses={200: {"content": BINARY, "description": "The key (.zkey)."},
                       **errors(*SESSION_ERRORS)})
def server_key(session: RunningSession, kind: str):
    """The circuit's key with the server's contribution, for the client to contribute to."""
    ceremony = session.key_ceremony(kind)
    return file_response(ceremony.server, ceremony.server_hash, ceremony.server_signature)


@router.put("/sessions/{session_id}/keys/{kind}", response_model=KeyAccepted,
            responses=errors(*SESSION_ERRORS), openapi_extra=BINARY_BODY)
async def final_key(session: RunningSession, kind: str, request: Request, service: Service):
    """The client's final key: checked against our initial key, with our contribution in
    it, it becomes the session's key for ``kind``."""
    if session.key_ceremony(kind).final:
        raise AlreadyDone(f"the {kind} key is already final; start a new session to redo the "
                          "ceremony")
    # the client's contribution: its hash, signed by the client's pinned identity
    return service.accept_key(session, kind, await request.body(),
                              request.headers.get("x-contribution-hash", ""),
                              request.headers.get("x-contribution-signature"))
