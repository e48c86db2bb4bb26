"""What the attacks of issue 13 need, written against the wire format (no access to the parties'
insides): a re-randomized Groth16 proof, a consistently cheating forward message, ASGI wrappers
that make a real server answer like a cheating or failing one, and the check that a server's
live state equals what a restart from its store would load."""

from __future__ import annotations

import json

import torch
from py_ecc import bn128
from py_ecc.fields import bn128_FQ as FQ, bn128_FQ2 as FQ2

from splitverify.circuitgen import statements as st
from splitverify.model import SplitSpec
from splitverify.identity import Identity
from splitverify.protocol import ClientParty, ForwardMessage
from splitverify.zk import Proof
from splitverify.zk.curve import R


def rerandomize(proof_hex: str, r: int) -> str:
    """Groth16's malleability: (A·r⁻¹, B·r, C) verifies whenever (A, B, C) does, for the same
    statement, since e(A·r⁻¹, B·r) = e(A, B). Anyone holding a proof can make new ones."""
    proof = Proof.from_bytes(bytes.fromhex(proof_hex))
    (ax, ay), ((bx0, bx1), (by0, by1)) = proof.pi_a, proof.pi_b
    a = bn128.multiply((FQ(ax), FQ(ay)), pow(r, -1, R))
    b = bn128.multiply((FQ2([bx0, bx1]), FQ2([by0, by1])), r)
    fresh = Proof(pi_a=(int(a[0]), int(a[1])),
                  pi_b=((int(b[0].coeffs[0]), int(b[0].coeffs[1])),
                        (int(b[1].coeffs[0]), int(b[1].coeffs[1]))),
                  pi_c=proof.pi_c)
    return fresh.to_bytes().hex()


def poisoned(spec: SplitSpec, honest: ForwardMessage, signer: Identity) -> ForwardMessage:
    """``honest`` with one activation changed and the statement made to match it (a consistent
    cheat, no proof: only a proof of the challenged statement can tell), signed by the cheating
    client (``signer``) as its own."""
    acts = torch.tensor(honest.activations)
    acts[0, 0] += spec.quant.scale
    labels = torch.tensor(honest.labels)
    public = {**honest.public, "messageCommitment": st.message_commitment(
        spec, acts, labels, honest.message_salt)}
    return honest.model_copy(update={
        "activations": acts.tolist(), "public": public, "proof": None,
        "signature": signer.sign_statement(honest.session_id, honest.step, "client_forward",
                                           public, None)})


def proven(party: ClientParty, msg: ForwardMessage) -> ForwardMessage:
    """``msg`` re-sent with its proof on challenge, signed together with it."""
    proof, signature = party.signed_proof("client_forward", msg.step)
    return msg.model_copy(update={"proof": proof, "signature": signature})


class AnswerOnPath:
    """ASGI wrapper: requests whose path ends in ``suffix`` get the next status of ``answers``
    (an int: that status, always) instead of reaching the app — a gateway in front of a
    restarting server, or a server that will not answer some requests."""

    def __init__(self, app, suffix: str, answers: int | list[int]):
        self.app, self.suffix = app, suffix
        self.answers = answers if isinstance(answers, int) else list(answers)
        self.answered: list[int] = []

    def _next(self) -> int | None:
        if isinstance(self.answers, int):
            return self.answers
        return self.answers.pop(0) if self.answers else None

    async def __call__(self, scope, receive, send) -> None:
        status = (self._next() if scope["type"] == "http" and scope["path"].endswith(self.suffix)
                  else None)
        if status is None:
            await self.app(scope, receive, send)
            return
        self.answered.append(status)
        body = json.dumps({"error": f"HTTP {status} from the gateway"}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})


def assert_live_equals_stored(app, session_id: int) -> None:
    """The session as the server holds it equals what a restart would load from its store:
    the party's state, the stored answers, the stop record and the transcript, entry by entry."""
    session = app.state.sessions[session_id]
    stored = app.state.store.load(session_id)
    assert json.loads(json.dumps(session.party.snapshot())) == stored.state
    assert json.loads(json.dumps(session.replies)) == stored.replies
    assert (None if session.stopped is None else session.stopped.model_dump()) == stored.stopped
    live = [] if session.party.transcript is None else [
        e.model_dump() for e in session.party.transcript.entries]
    assert live == stored.entries
