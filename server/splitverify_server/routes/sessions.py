"""A session's life: made, asked about, used for predictions, ended."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request

from splitverify.protocol.wire import (Predictions, PredictRequest, SessionCreate,
                                       SessionCreated, SessionDeleted, SessionStatus)
from splitverify.transcript import Transcript

from ..responses import COMMON, SESSION_ERRORS, errors
from ..deps import Addressed, OwnedSession, Service, SessionWithKeys, with_message

router = APIRouter()


@router.post("/sessions", response_model=SessionCreated, status_code=201,
             responses=errors(*COMMON, 429))
def create_session(body: SessionCreate, request: Request, service: Service):
    return service.create_session(body, request.client.host if request.client else "unknown")


@router.get("/sessions/{session_id}", response_model=SessionStatus,
            responses=errors(*SESSION_ERRORS))
def status(session: OwnedSession, service: Service):
    return service.status(session)


@router.delete("/sessions/{session_id}", response_model=SessionDeleted,
               responses=errors(*SESSION_ERRORS))
def delete_session(session: OwnedSession, service: Service):
    """End the session now (its owner only): its state, transcript and keys are removed
    from the server; a step in flight finishes first."""
    return service.delete(session)


@router.post("/sessions/{session_id}/predict", response_model=Predictions,
             responses=errors(*SESSION_ERRORS))
def predict(sent: Annotated[Addressed[PredictRequest], with_message(PredictRequest)],
            service: Service):
    """The server half's predictions for cut-layer activations (evaluation: nothing is
    learned or proven)."""
    return service.predict(sent.session, sent.message.activations)


@router.get("/sessions/{session_id}/transcript", response_model=Transcript,
            responses=errors(*SESSION_ERRORS, 425))
def transcript(session: SessionWithKeys):
    return session.party.transcript.model_dump()
