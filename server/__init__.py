"""The splitverify server (installed as ``splitverify.server``): a FastAPI app that holds the
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
:mod:`splitverify.server.store`) before it is answered, so a restarted server resumes every
session. A message re-sent because its answer was lost (same step, same statement: public
values, tensors and salts — never the proof bytes, since a Groth16 proof can be re-randomized)
gets the same answer again and changes nothing; any other message for a step already handled
is a replay.

The code: :mod:`.service` holds the server's state and does what the routes ask
(:class:`~.service.SessionService`, in ``app.state.service``); :mod:`.deps` gives the routes the
service and the session a request names, its token checked; :mod:`.routes` has one router per
concern; :mod:`.refusals` turns what is refused into the answers above; :mod:`.session` is a
session's typed state; :mod:`.bodylimit` and :mod:`.guard` bound what a request can cost.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from ..circuits import SplitCircuits
from ..identity import Identity
from ..limits import Limits
from ..model import SplitSpec
from ..powersoftau import PtauPolicy
from ..protocol import ServerParty, SessionCreate
from .guard import NestingLimit

MAX_PREDICT_ROWS = 4096
SESSION_ID_BITS = 250            # session ids are random field elements (protocol.random_field)


class ErrorBody(BaseModel):
    """Every 4xx answer. ``error`` says what was wrong; a 409 adds where the session stopped
    (``detected_step``, ``detected_by``, ``reason``), a 428 what to prove (``challenge``,
    ``step``)."""
    error: str
    detected_step: int | None = None
    detected_by: str | None = None
    reason: str | None = None
    challenge: str | None = None
    step: int | None = None


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


class SessionCreated(BaseModel):
    session_id: int
    token: str
    spec: str
    proof_mode: str
    ceremony: bool = False       # the client must contribute to the keys before the first step
    idle_expiry_s: int = 0       # the session is removed after this long without a request
    server_identity: str | None = None   # the server's address: its signatures recover to it
    # the session's powers of tau (the transcript's ``ptau`` record), or, while a two-party
    # phase 1 is to be made, {"origin": "two-party", "phase1": true, "power": p}
    ptau: dict | None = None
    server_party: str | None = None   # the server's party id (two-party phase 1): its address


class ProveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str
    step: int


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    activations: list[list[int]] = Field(..., max_length=MAX_PREDICT_ROWS)


class StopRecord(BaseModel):
    detected_step: int
    detected_by: str
    reason: str


class SessionStatus(BaseModel):
    session_id: int
    next_step: int
    stopped: StopRecord | None
    proof_mode: str
    proofs_verified: int
    challenged: int
    losses: list[int]
    prove_s: dict[str, list[float]]
    verify_s: dict[str, list[float]]
    idle_expiry_s: int = 0       # the session is removed after this long without a request


class StepDone(BaseModel):
    step: int


class ProofBody(BaseModel):
    proof: str = Field(description="256-byte Groth16 proof (EIP-197 order), hex")
    signature: str | None = Field(None, description="The server's signature of the statement "
                                  "with this proof (splitverify.identity).")


class Predictions(BaseModel):
    classes: list[int]


class SessionDeleted(BaseModel):
    session_id: int
    deleted: bool


class Phase1Accepted(BaseModel):
    sha256: str = Field(description="sha256 of the prepared ptau: the client's must be equal")
    power: int


class KeyAccepted(BaseModel):
    kind: str
    accepted: bool
    contributions: list[str]


# after the wire models above: these modules read them from this package (until the models
# move to the protocol package, issue 16)
from .bodylimit import BodyLimit, is_key_upload  # noqa: E402
from .refusals import error_response, register_handlers  # noqa: E402
from .routes import ROUTERS  # noqa: E402
from .service import SessionService  # noqa: E402


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
    service = SessionService(circuits_for, backend=backend, malicious=malicious, limits=limits,
                             db=db, ceremony=ceremony, ptau=ptau, on_party=on_party,
                             identity=identity)
    app = FastAPI(title="splitverify server", version="0.1.0")
    app.state.service = service
    app.state.sessions, app.state.store = service.sessions, service.store
    app.state.identity = service.identity
    # the nesting check runs inside the body limit (the middleware added last runs first)
    app.add_middleware(NestingLimit, limit=limits.nesting, is_binary=is_key_upload,
                       refuse=error_response)
    app.add_middleware(BodyLimit, limits=limits, key_owner=service.key_owner)
    register_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    return app


__all__ = ["create_app", "ErrorBody", "Limits", "SessionCreate", "SessionCreated"]
