"""The splitverify client SDK (installed as ``splitverify.client``): a small surface over the
protocol — create a session on a server, then ``train`` on your data; every server message is
verified before the client goes on.

    client = SplitClient("http://127.0.0.1:8000", proof_mode="every")
    client.create_session(seed=0)
    result = client.train(batches, steps=20)

Transient HTTP failures are retried; a step is never applied twice (the server checks the
step number of every message and the client re-sends the same message).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import httpx
import torch

from ..circuits import SplitCircuits
from ..errors import InputError, SplitverifyError, TamperDetected
from ..model import SplitSpec
from ..protocol import (BackwardMessage, ClientParty, ForwardMessage, GradientMessage,
                        ProofMode, SessionResult, new_transcript)
from ..refnet import initial_params

RETRIES = 3


class ServerError(SplitverifyError):
    """The server answered with an error that is not tampering."""


class SplitClient:
    def __init__(self, url: str, *, proof_mode: str = "every", batch: int = 16,
                 spec: SplitSpec | None = None,
                 circuits_for: Callable[[SplitSpec], SplitCircuits] | None = None,
                 backend: str | None = None, malicious: str | None = None,
                 timeout: float = 600.0):
        self.url = url.rstrip("/")
        self.mode = ProofMode.parse(proof_mode)
        self.spec = spec or SplitSpec.refnet(batch=batch)
        self.circuits_for = circuits_for or (lambda spec: SplitCircuits(spec))
        self.backend, self.malicious = backend, malicious
        self.http = httpx.Client(timeout=timeout)
        self.party: ClientParty | None = None
        self.token = ""

    # -- transport ------------------------------------------------------------------------
    def _post(self, path: str, body: dict, *, auth: bool = True) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if auth else {}
        for attempt in range(RETRIES):
            try:
                return self.http.post(f"{self.url}{path}", json=body, headers=headers)
            except httpx.TransportError:
                if attempt == RETRIES - 1:
                    raise
                time.sleep(0.5 * (attempt + 1))
        raise AssertionError("unreachable")

    def _exchange(self, path: str, msg, kind_step: tuple[int, int]) -> dict:
        """POST a message; answer a 428 challenge by re-sending it with its proof."""
        body = msg.model_dump()
        response = self._post(path, body)
        if response.status_code == 428:
            challenge = response.json()
            body["proof"] = self.party.prove(challenge["challenge"], challenge["step"])
            response = self._post(path, body)
        if response.status_code == 409:
            info = response.json()
            raise TamperDetected(info.get("detected_step", kind_step[0]),
                                 info.get("detected_by", "server"), info.get("reason", ""))
        if response.status_code >= 400:
            raise ServerError(f"{path}: HTTP {response.status_code}: {response.text[:500]}")
        return response.json()


    def _server_proof(self, kind: str, step: int) -> str:
        response = self._post(f"/sessions/{self.session_id}/prove", {"kind": kind, "step": step})
        if response.status_code >= 400:
            raise ServerError(f"the server did not prove {kind} of step {step}: "
                              f"{response.text[:300]}")
        return response.json()["proof"]

    # -- the surface ------------------------------------------------------------------------
    def create_session(self, seed: int = 0) -> int:
        spec = self.spec
        body = {"batch": spec.batch, "proof_mode": str(self.mode), "seed": seed}
        if spec == SplitSpec.refnet(batch=spec.batch):
            body["model"] = "refnet"
        else:
            body.update(model="layers",
                        client_layers=[[d.n_in, d.n_out, d.relu] for d in spec.client],
                        server_layers=[[d.n_in, d.n_out, d.relu] for d in spec.server])
        response = self._post("/sessions", body, auth=False)
        if response.status_code != 201:
            raise ServerError(f"creating a session failed: HTTP {response.status_code}: "
                              f"{response.text[:500]}")
        info = response.json()
        self.session_id, self.token = info["session_id"], info["token"]
        client_params, _ = initial_params(self.spec, seed)
        self.party = ClientParty(self.spec, self.session_id, self.mode, client_params,
                                 self.circuits_for(self.spec), backend=self.backend,
                                 malicious=self.malicious)
        self.party.transcript = new_transcript(self.party)
        return self.session_id

    def step(self, step: int, x: torch.Tensor, labels: torch.Tensor) -> None:
        party = self.party
        if party is None:
            raise InputError("create_session() first")
        forward: ForwardMessage = party.forward(step, x, labels)
        gradient = GradientMessage.model_validate(
            self._exchange(f"/sessions/{self.session_id}/forward", forward, (step, 0)))
        backward: BackwardMessage = party.receive_gradient(gradient, self._server_proof)
        self._exchange(f"/sessions/{self.session_id}/backward", backward, (step, 2))

    def train(self, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], steps: int,
              on_step: Callable[[int], None] = lambda _s: None) -> SessionResult:
        start = time.perf_counter()
        done, detected = 0, None
        try:
            for step, (x, labels) in enumerate(batches):
                if step >= steps:
                    break
                self.step(step, x, labels)
                done = step + 1
                on_step(done)
        except TamperDetected as exc:
            detected = exc
        return SessionResult(done, [], detected, self.party, None,
                             time.perf_counter() - start, self.party.transcript)

    def server_transcript(self) -> dict:
        response = self.http.get(f"{self.url}/sessions/{self.session_id}/transcript",
                                 headers={"Authorization": f"Bearer {self.token}"})
        if response.status_code >= 400:
            raise ServerError(f"transcript: HTTP {response.status_code}: {response.text[:300]}")
        return response.json()
