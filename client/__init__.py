"""The splitverify client SDK (installed as ``splitverify.client``): a small surface over the
protocol — create a session on a server, then ``train`` on your data; every server message is
verified before the client goes on.

    client = SplitClient("http://127.0.0.1:8000", proof_mode="every")
    client.create_session(seed=0)
    result = client.train(batches, steps=20)

Transient HTTP failures (connection refused or reset, timeouts, 502/503/504 — e.g. a server
restarting) are retried with back-off for up to ``retry_seconds``; a step is never applied
twice: the client re-sends the very same message, and the server answers a message it already
handled with the answer it gave (any other message for that step is a replay).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import httpx
import torch

from ..circuits import KINDS, SplitCircuits
from ..keyexchange import client_contribute
from ..errors import InputError, SplitverifyError, TamperDetected
from .. import model
from ..model import SplitSpec
from ..protocol import (BackwardMessage, ClientParty, ForwardMessage, GradientMessage,
                        ProofMode, SessionResult, new_transcript)
from ..refnet import initial_params

RETRY_STATUS = (502, 503, 504)


class ServerError(SplitverifyError):
    """The server answered with an error that is not tampering."""


class SplitClient:
    def __init__(self, url: str, *, proof_mode: str = "every", batch: int = 16,
                 spec: SplitSpec | None = None,
                 circuits_for: Callable[[SplitSpec], SplitCircuits] | None = None,
                 backend: str | None = None, malicious: str | None = None,
                 timeout: float = 600.0, retry_seconds: float = 60.0):
        self.url = url.rstrip("/")
        self.mode = ProofMode.parse(proof_mode)
        self.spec = spec or SplitSpec.refnet(batch=batch)
        self.circuits_for = circuits_for or (lambda spec: SplitCircuits(spec))
        self.backend, self.malicious = backend, malicious
        self.http = httpx.Client(timeout=timeout)
        self.retry_seconds = retry_seconds
        self.retries = 0                     # transient failures survived (for the summary)
        self.party: ClientParty | None = None
        self.token = ""

    # -- transport ------------------------------------------------------------------------
    def _post(self, path: str, body: dict, *, auth: bool = True) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if auth else {}
        deadline = time.monotonic() + self.retry_seconds
        pause = 0.2
        while True:
            try:
                response = self.http.post(f"{self.url}{path}", json=body, headers=headers)
                if response.status_code not in RETRY_STATUS:
                    return response
                failure = f"HTTP {response.status_code}"
            except httpx.TransportError as exc:
                failure = f"{type(exc).__name__}: {exc}"
            if time.monotonic() + pause > deadline:
                raise ServerError(f"{path}: the server did not answer within "
                                  f"{self.retry_seconds:g} s ({failure}); the session can be "
                                  "resumed when it is back")
            self.retries += 1
            time.sleep(pause)
            pause = min(pause * 2, 2.0)

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
        if info.get("ceremony"):
            self._key_ceremony()
        self.party.transcript = new_transcript(self.party)
        return self.session_id

    def _key_ceremony(self) -> None:
        """Per circuit: fetch the server's key, check it, contribute, check, send it back (see
        :mod:`splitverify.keyexchange`). The keys stay in a folder of this client."""
        folder = Path(tempfile.mkdtemp(prefix="sv-client-keys-"))
        auth = {"Authorization": f"Bearer {self.token}"}
        for kind in KINDS:
            url = f"{self.url}/sessions/{self.session_id}/keys/{kind}"
            response = self.http.get(url, headers=auth)
            if response.status_code != 200:
                raise ServerError(f"fetching the server's {kind} key: HTTP "
                                  f"{response.status_code}: {response.text[:300]}")
            key, _ = client_contribute(self.party.prover.circuits, kind, response.content,
                                       response.headers.get("X-Contribution-Hash", ""), folder)
            done = self.http.put(url, content=key.zkey.read_bytes(),
                                 headers={**auth, "content-type": "application/octet-stream"})
            if done.status_code != 200:
                raise ServerError(f"the server refused the {kind} key: HTTP "
                                  f"{done.status_code}: {done.text[:300]}")

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

    def _get(self, what: str) -> dict:
        response = self.http.get(f"{self.url}/sessions/{self.session_id}{what}",
                                 headers={"Authorization": f"Bearer {self.token}"})
        if response.status_code >= 400:
            raise ServerError(f"GET {what or 'status'}: HTTP {response.status_code}: "
                              f"{response.text[:300]}")
        return response.json()

    def server_transcript(self) -> dict:
        """What the server received and checked (its half of the session's transcript)."""
        return self._get("/transcript")

    def server_status(self) -> dict:
        """The server's figures: steps, losses, proofs verified, prove/verify seconds."""
        return self._get("")

    def evaluate(self, x: torch.Tensor, y: torch.Tensor, rows: int = 1024) -> float:
        """Test accuracy of the jointly trained model: the client's half here, the server's
        half over HTTP (``/predict``)."""
        party = self.party
        if party is None:
            raise InputError("create_session() first")
        spec = party.spec
        correct = 0
        for i in range(0, len(x), rows):
            xs = spec.quant.encode(x[i:i + rows], data=True)
            full = SplitSpec(spec.client, spec.server, len(xs), spec.quant)
            acts = model.forward(full, spec.client, party.params, xs).output
            response = self._post(f"/sessions/{self.session_id}/predict",
                                  {"activations": acts.tolist()})
            if response.status_code != 200:
                raise ServerError(f"predict: HTTP {response.status_code}: {response.text[:300]}")
            predicted = torch.tensor(response.json()["classes"])
            correct += int((predicted == y[i:i + rows]).sum())
        return correct / len(x)
