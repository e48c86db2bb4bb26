"""SplitFed-V1's rounds (``--aggregate every:R``, :mod:`..rounds`): a client hands its half over
at a round's end and takes the round's average, both with its session's token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from splitverify.protocol.wire import AverageAnswer, HalfSubmission, RoundStatus

from ..deps import Addressed, RunningSession, Service, with_message
from ..responses import SESSION_ERRORS, errors

router = APIRouter()


@router.post("/sessions/{session_id}/rounds/half", response_model=RoundStatus,
             responses=errors(*SESSION_ERRORS, 425))
def half(sent: Annotated[Addressed[HalfSubmission], with_message(HalfSubmission)],
         service: Service):
    """The client half and its weights salt after the round's last step; the K-th half of a
    round averages it (proven, signed, published at ``GET /chain``)."""
    return service.submit_half(sent.session, sent.message)


@router.get("/sessions/{session_id}/rounds/{round_}", response_model=AverageAnswer,
            responses=errors(*SESSION_ERRORS, 425))
def average(round_: Annotated[int, Path(ge=0, lt=1 << 31)], session: RunningSession,
            service: Service):
    """What this session was sent of round ``round_``: the average, the Aggregate statement,
    proof and signature (425 until the round is averaged)."""
    return service.round_average(session, round_)
