"""What the server refuses, as typed errors, and the one place they become answers: each
refusal carries its HTTP status (and, for a 409 or 428, where the session stopped or what to
prove); the handlers turn it, and the framework's and the library's errors, into an
:class:`ErrorBody` with that status."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from splitverify.errors import InputError, SetupError, SplitverifyError
from splitverify.protocol.wire import ErrorBody
from .guard import without_paths


class Refusal(SplitverifyError):
    """A request the server refuses: answered ``status`` with the message and ``details``
    (ErrorBody's fields) and ``headers``; nothing changed."""
    status = 422

    def __init__(self, message: str, *, headers: dict[str, str] | None = None, **details):
        super().__init__(message)
        self.headers, self.details = headers, details


class Refused(Refusal):
    """Invalid content, or past a limit of the server (422)."""


class MissingToken(Refusal):
    status = 401


class WrongToken(Refusal):
    status = 403


class NoSuchSession(Refusal):
    """No such session: it expired, was deleted or never existed (404)."""
    status = 404


class SessionRemoved(NoSuchSession):
    """The session was deleted or expired while a request to it was in flight."""


class NoSuchCeremony(Refusal):
    """No key ceremony (or two-party phase 1) of that kind in this session (404)."""
    status = 404


class SessionStopped(Refusal):
    """Tampering or a replay was detected: the session is stopped (409, with where)."""
    status = 409


class AlreadyDone(Refusal):
    """A ceremony step already made (409)."""
    status = 409


class CeremonyUnfinished(Refusal):
    status = 425


class ProofRequired(Refusal):
    """The server challenges this message (audit mode): re-send it with its proof (428)."""
    status = 428

    def __init__(self, kind: str, step: int):
        super().__init__(f"step {step}: the server challenges this {kind} message; re-send it "
                         "with its proof", challenge=kind, step=step)
        self.kind, self.step = kind, step


class TooManySessions(Refusal):
    """The server's or this address's session limit (429)."""
    status = 429


def error_response(status: int, message: str, headers: dict[str, str] | None = None,
                   **details) -> JSONResponse:
    return JSONResponse(status_code=status, headers=headers,
                        content=ErrorBody(error=message, **details).model_dump(exclude_none=True))


async def _refusal(_request: Request, exc: Refusal) -> JSONResponse:
    return error_response(exc.status, str(exc), exc.headers, **exc.details)


async def _framework_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
    # the framework's own answers (no such route, method not allowed) as ErrorBody too
    return error_response(exc.status_code, str(exc.detail), headers=exc.headers)


async def _input_error(_request: Request, exc: InputError) -> JSONResponse:
    return error_response(422, without_paths(str(exc)))


async def _setup_error(_request: Request, exc: SetupError) -> JSONResponse:
    # e.g. a session whose client announced another powers of tau than ours
    return error_response(422, str(exc))


async def _invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
    # never echo the input back: it may hold NaN/inf, which JSON cannot carry
    problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}"
                         for e in exc.errors()[:5])
    return error_response(422, f"invalid request: {problems}")


def register_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Refusal, _refusal)
    app.add_exception_handler(StarletteHTTPException, _framework_error)
    app.add_exception_handler(InputError, _input_error)
    app.add_exception_handler(SetupError, _setup_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
