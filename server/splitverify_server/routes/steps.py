"""The training steps: the client's forward and backward messages, each handled as one
transaction, and the server's proofs the client challenges."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from splitverify.protocol.wire import (BackwardMessage, ForwardMessage, GradientMessage, ProofBody,
                                       ProofExchange, ProveRequest, StepDone)

from ..responses import SESSION_ERRORS, errors
from ..deps import Addressed, Service, with_message

router = APIRouter()
STEP_ERRORS = errors(*SESSION_ERRORS, 425, 428)


@router.post("/sessions/{session_id}/forward", response_model=GradientMessage,
             responses=STEP_ERRORS)
def forward(sent: Annotated[Addressed[ForwardMessage], with_message(ForwardMessage)],
            service: Service):
    return service.forward(sent.session, sent.message)


@router.post("/sessions/{session_id}/backward", response_model=StepDone, responses=STEP_ERRORS)
def backward(sent: Annotated[Addressed[BackwardMessage], with_message(BackwardMessage)],
             service: Service):
    return service.backward(sent.session, sent.message)


@router.post("/sessions/{session_id}/prove", response_model=ProofBody,
             responses=errors(*SESSION_ERRORS))
def prove(sent: Annotated[Addressed[ProveRequest], with_message(ProveRequest)],
          service: Service):
    return service.prove(sent.session, sent.message.kind, sent.message.step)


@router.post("/sessions/{session_id}/proofs", response_model=ProofExchange,
             responses=errors(*SESSION_ERRORS, 425))
def proofs(sent: Annotated[Addressed[ProofExchange], with_message(ProofExchange)],
           service: Service):
    """``pipelined:W``: the client's late proofs and acknowledgements in, the server's proofs
    made so far (those of steps up to ``through_step`` waited for) and acknowledgements out;
    a proof that fails stops the session (409, with the step both parties roll back to)."""
    return service.exchange_proofs(sent.session, sent.message)
