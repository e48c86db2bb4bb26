"""``GET /chain``: the shared server half's chain of ServerSteps (``serve --shared-model``),
public and append-only: per entry its index, the session and step that caused it, the weights'
commitments before and after, and the SHA-256 of the ServerStep's statement (its public
values as canonical JSON); with ``--aggregate``, ``rounds``: each averaged round's Aggregate
statement and proof (``PublishedRound``). Only commitments, digests and proofs: no weights,
data or token."""

from __future__ import annotations

from fastapi import APIRouter

from ..deps import Service
from ..refusals import Refusal
from ..responses import errors

router = APIRouter()


class NoSharedModel(Refusal):
    status = 404


@router.get("/chain", responses=errors(404))
def chain(service: Service):
    if service.shared is None:
        raise NoSharedModel("this server trains one server half per session; it publishes a "
                            "chain only when it trains one shared half (serve --shared-model)")
    with service.shared.lock:        # a consistent copy: no step half-appended
        published = service.shared.published()
    if service.rounds is not None:
        published["rounds"] = service.rounds.published()
    return published
