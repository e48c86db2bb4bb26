"""What the server's answers mean, for the OpenAPI document and the routers: each error status
(every one an :class:`~splitverify.protocol.wire.ErrorBody`) and the session id of a path."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path as PathParam

from splitverify.protocol.wire import ErrorBody

SESSION_ID_BITS = 250            # session ids are random field elements (protocol.random_field)

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
