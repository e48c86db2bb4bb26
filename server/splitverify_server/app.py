"""The splitverify server (``splitverify_server``): a FastAPI app that holds the
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
    GET  /chain                         the shared server half's chain of ServerSteps (public;
                                        with ``shared_model=True``, ``serve --shared-model``),
                                        and its averaged rounds (``aggregate``)
    POST /sessions/{id}/rounds/half     HalfSubmission → RoundStatus (``aggregate``: the
                                        client's half at a round's end)
    GET  /sessions/{id}/rounds/{r}      → AverageAnswer (425 until round r is averaged)
    GET  /                              the live dashboard (public values only; see
                                        :mod:`.routes.dashboard`)

With ``labels`` (``serve --labels``) the server holds the labels: a session created with
``labels: "server"`` reads them from a label table committed for it (``SessionCreated.
label_table``: commitment, depth, size; never a label), its forward messages carry sample ids.

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

The code: :mod:`.service` holds the server's state and does what the routes ask
(:class:`~.service.SessionService`, in ``app.state.service``); :mod:`.deps` gives the routes the
service and the session a request names, its token checked; :mod:`.routes` has one router per
concern; :mod:`.responses` documents what each status means; :mod:`.refusals` turns what is refused into the answers above; :mod:`.session` is a
session's typed state; :mod:`.bodylimit` and :mod:`.guard` bound what a request can cost.
"""


from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI

from splitverify.circuitgen import SplitCircuits
from splitverify.errors import InputError
from splitverify.identity import Identity
from splitverify.limits import Limits
from splitverify.model import SplitSpec
from splitverify.pool import ProverPool
from splitverify.powersoftau import PtauPolicy
from splitverify.protocol import ServerParty

from .bodylimit import BodyLimit, is_key_upload
from .dashboard import Dashboard
from .guard import NestingLimit
from .refusals import error_response, register_handlers
from .rounds import RoundPlan
from .routes import ROUTERS
from .service import SessionService

if TYPE_CHECKING:
    import torch


def create_app(circuits_for: Callable[[SplitSpec], SplitCircuits] | None = None, *,
               backend: str | None = None, malicious: str | None = None,
               limits: Limits = Limits(), db: str | Path = ":memory:",
               ceremony: bool = True, ptau: PtauPolicy | None = None,
               on_party: Callable[[ServerParty], object] | None = None,
               identity: Identity | None = None,
               dashboard_token: str | None = None,
               server_model: torch.nn.Sequential | None = None,
               prover_pool: Callable[[SplitCircuits], ProverPool] | None = None,
               shared_model: bool = False, labels: torch.Tensor | None = None,
               aggregate: RoundPlan | None = None,
               aggregate_circuits_for: Callable[[SplitSpec, int], SplitCircuits] | None = None
               ) -> FastAPI:
    """``circuits_for(spec)`` gives a session's circuits (a fresh ``SplitCircuits`` by default;
    with ``ceremony=False`` its keys are used as they are); ``malicious`` makes this server
    cheat (tamper scenarios); ``limits`` bounds what clients can make it hold; ``db`` is the
    SQLite file sessions persist in (reloaded at start; ceremony keys are kept next to it, in
    ``<db>.keys/``); ``on_party`` sees each session's party as it is made or resumed (e.g.
    ``LedgerSink.attach``, to log its statements); ``ptau`` which powers of tau the
    session keys come from (None: the operator's circuits decide, as in tests and the demo);
    ``identity`` signs what the server sends (default: kept next to the database in
    ``<db>.identity``, or one per process for ``:memory:``); ``dashboard_token``: the token
    the dashboard at ``/`` requires (None: its pages, public values only, need none);
    ``server_model``: the server's own half as an ``nn.Sequential`` (its weights start every
    session; None: seeded weights, as the client's request says); ``prover_pool(circuits)``
    gives each session's party the pool it proves on (default: its own thread), closed when
    the session is removed; ``shared_model``: one server half trained by every session in
    turn, its chain of ServerSteps published at ``GET /chain`` (:mod:`.shared_model`);
    ``aggregate``: with a shared model, the client halves averaged with a proof every R steps
    of K clients (:mod:`.rounds`; ``aggregate_circuits_for(spec, K)`` gives the Aggregate
    circuit, by default ``SplitCircuits(spec, aggregate_clients=K)``);
    ``labels``: the labels this server holds by sample id (class indices; ``--labels server``):
    a session asking for labels 'server' reads them from a Poseidon Merkle table committed
    for it (one table for every session of a shared model), the client sending sample ids;
    without ``labels`` such a session is refused (422)."""
    if dashboard_token is not None and not dashboard_token.strip():
        raise InputError("--dashboard-token is empty: give a token, or leave the option out "
                         "for a dashboard without one")
    dashboard = Dashboard(token=dashboard_token)
    # the dashboard's event log sees each party after ``on_party`` (it wraps the party's hook)
    service = SessionService(circuits_for, backend=backend, malicious=malicious, limits=limits,
                             db=db, ceremony=ceremony, ptau=ptau,
                             on_party=dashboard.events.watching(on_party), identity=identity,
                             server_model=server_model, prover_pool=prover_pool,
                             shared_model=shared_model, labels=labels,
                             aggregate=aggregate, aggregate_circuits_for=aggregate_circuits_for)
    app = FastAPI(title="splitverify server", version="0.1.0")
    app.state.service = service
    app.state.sessions, app.state.store = service.sessions, service.store
    app.state.identity = service.identity
    app.state.dashboard = dashboard
    # the nesting check runs inside the body limit (the middleware added last runs first)
    app.add_middleware(NestingLimit, limit=limits.nesting, is_binary=is_key_upload,
                       refuse=error_response)
    app.add_middleware(BodyLimit, limits=limits, key_owner=service.key_owner)
    register_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    return app
