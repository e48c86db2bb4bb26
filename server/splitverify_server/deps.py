"""The routes' dependencies: the app's :class:`SessionService`, and the session a request names
by its path, with its bearer token checked (401, 403), found (404), its idle clock restarted,
and, unless the route reads stopped sessions too, not stopped (409). Failures raise the typed
refusals of :mod:`.refusals`.

A route with a JSON body gets its session through :func:`with_message`: the body is validated
first, so a body that does not parse is a 422 before anything about the session is said or
changed (as FastAPI answers a route's own parameters before it runs the route).

(No ``from __future__ import annotations`` here: :func:`with_message` annotates a parameter with
the model it is given, which FastAPI must see as a class, not as a name to look up.)"""

from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Request, params
from pydantic import BaseModel

from .responses import SessionId
from .guard import bearer_token
from .refusals import MissingToken, NoSuchSession, SessionStopped, WrongToken
from .service import SessionService
from .session import Session

M = TypeVar("M", bound=BaseModel)


def app_service(request: Request) -> SessionService:
    return request.app.state.service


Service = Annotated[SessionService, Depends(app_service)]


def checked_session(service: SessionService, request: Request, session_id: int, *,
                    stopped_ok: bool) -> Session:
    service.sweep_expired()
    session = service.sessions.get(session_id)
    if session is None:
        raise NoSuchSession(f"no session {session_id} (a session is removed when its owner "
                            f"deletes it or after {service.limits.idle_seconds} s without a "
                            "request)")
    token = bearer_token(request.headers)
    if token is None:
        raise MissingToken("missing bearer token (Authorization: Bearer <token>)")
    if not service.holds_token(session, token):
        raise WrongToken("wrong token for this session")
    service.touch(session)
    if session.stopped and not stopped_ok:
        raise SessionStopped("the session was stopped", **session.stopped.model_dump())
    return session


def running_session(session_id: SessionId, request: Request, service: Service) -> Session:
    """The session, refused (409) once stopped."""
    return checked_session(service, request, session_id, stopped_ok=False)


def owned_session(session_id: SessionId, request: Request, service: Service) -> Session:
    """The session, stopped or not (status, transcript, delete)."""
    return checked_session(service, request, session_id, stopped_ok=True)


RunningSession = Annotated[Session, Depends(running_session)]
OwnedSession = Annotated[Session, Depends(owned_session)]


def session_with_keys(session: OwnedSession) -> Session:
    """The session, stopped or not, refused (425) until its keys are final."""
    session.require_keys()
    return session


SessionWithKeys = Annotated[Session, Depends(session_with_keys)]


@dataclass
class Addressed(Generic[M]):
    """A request's body and the running session it is addressed to."""
    session: Session
    message: M


def with_message(model: type[M]) -> params.Depends:
    """A dependency: the body as ``model``, then the running session it is sent to."""
    def addressed(session_id: SessionId, message: model, request: Request,
                  service: Service) -> Addressed[M]:
        return Addressed(checked_session(service, request, session_id, stopped_ok=False),
                         message)
    return Depends(addressed)
