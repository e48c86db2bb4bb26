"""The splitverify client SDK (``splitverify_client``): a small surface over the
protocol — create a session on a server, then ``train`` on your data; every server message is
verified before the client goes on.

    client = SplitClient("http://127.0.0.1:8000", proof_mode="every", state_dir="run1")
    client.create_session(seed=0)
    result = client.train(batches, steps=20)
    # … killed? SplitClient.resume("run1").train(batches, steps=20) goes on where it stopped

Your own client half and data: ``SplitClient(url, model=nn.Sequential(...), server_layers=
nn.Sequential(...) or its layers, batch=8)``, then ``train(data_loader, steps)`` and
``trained_model()`` (the half as trained, an ``nn.Sequential``).

Transient HTTP failures (connection refused or reset, timeouts, 502/503/504 — e.g. a server
restarting) are retried with back-off for up to ``retry_seconds``; a step is never applied
twice: the client re-sends the very same message, and the server answers a message it already
handled with the answer it gave (any other message for that step is a replay). With
``state_dir`` the client survives its own crash too (:mod:`splitverify_client.state`).

In ``audit:P`` the client's draw whether to challenge a server step is saved before the
challenge leaves (a resumed client challenges the same steps), and a server that does not answer
a challenge — an error status, a refusal, no answer within ``retry_seconds`` — fails it:
``TamperDetected`` at that step, not a ``ServerError`` to retry later.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Literal, TypeVar

import httpx
import torch
from pydantic import BaseModel, ValidationError

from splitverify.aggregate_ceremony import check_aggregate_key
from splitverify.circuitgen import AGGREGATE, KINDS, SplitCircuits
from splitverify.keyexchange import client_contribute, initial, load_final
from splitverify import keycache, powersoftau, zk
from splitverify.powersoftau import PtauPolicy
from splitverify.errors import (InputError, IntegrityError, MalformedAnswer, SetupError,
                               SplitverifyError, TamperDetected)
from splitverify.identity import Identity, check_address
from splitverify.keyorigin import KeyRefused, contribution_signed, sign_contribution
from splitverify.label_table import label_mode
from splitverify import model
from splitverify.model import Layer, SplitSpec, torch_io
from splitverify.pool import ProverPool
from splitverify.pool.threads import background_pool
from splitverify.shared_chain import check_served
from splitverify.protocol import (ClientParty, SessionResult, new_transcript,
                                  params_from_lists, params_to_lists, policy, scenarios)
from splitverify.protocol.aggregation import AverageMessage, RoundRecord, adopt_average
from splitverify.protocol.local import rollback_step
from splitverify.protocol.wire import (MAX_OFFERS_PER_KIND, AverageAnswer, ErrorBody,
                                       GradientMessage, HalfSubmission, KeyAccepted,
                                       KeyReuseOffer, LabelTableInfo, Phase1Accepted,
                                       Predictions, ProofBody, ProofExchange, ProofMode,
                                       PublishedRound,
                                       SessionCreate,
                                       SessionCreated, SessionStatus, StepDone, StopRecord,
                                       _Message, parse_answer)
from splitverify.refnet import initial_params
from splitverify.transcript import Transcript
from splitverify.tempfolders import owned_temp_folder
from .state import StateFolder

RETRY_STATUS = (502, 503, 504)
_Answer = TypeVar("_Answer", bound=BaseModel)


class ServerError(SplitverifyError):
    """The server answered with an error that is not tampering."""


class ServerUnreachable(ServerError):
    """The server did not answer within the retry window (down, or answering 5xx)."""


class SplitClient:
    def __init__(self, url: str, *, proof_mode: ProofMode | str = "every", batch: int = 16,
                 spec: SplitSpec | None = None,
                 circuits_for: Callable[[SplitSpec], SplitCircuits] | None = None,
                 backend: str | None = None, malicious: str | None = None,
                 timeout: float = 600.0, retry_seconds: float = 60.0,
                 state_dir: str | Path | None = None,
                 transport: httpx.BaseTransport | None = None, ptau: PtauPolicy | None = None,
                 identity: Identity | None = None, model: torch.nn.Sequential | None = None,
                 server_layers: torch.nn.Sequential | tuple[Layer, ...] | None = None,
                 prover_pool: Callable[[SplitCircuits], ProverPool] | None = None,
                 fresh_keys: bool = False, server_identity: str | None = None,
                 labels: Literal["client", "server"] = "client",
                 aggregate_every: int = 0,
                 aggregate_circuits: Callable[[int], SplitCircuits] | None = None,
                 round_wait_seconds: float = 600.0,
                 aggregate_ceremony: Callable[[int], dict] | None = None):
        """``model``: the client's half as an ``nn.Sequential`` with its own weights (else
        ``spec``'s, seeded); ``server_layers``: then the server half's shape (an
        ``nn.Sequential`` whose weights are not read, or its layers): the server's weights
        are its own; ``prover_pool(circuits)``: the pool the client proves on (default: its
        own thread, or a background thread in ``pipelined:W``). Finished ceremony keys are
        reused between the same two identities (:mod:`splitverify.keycache`) unless
        ``fresh_keys``; ``server_identity``: the server's address when known in advance (the
        keys offered are this server's; otherwise those of the server last met at ``url``);
        ``aggregate_every`` R ≥ 1: the server averages the client halves every R steps
        (SplitFed-V1, ``create_app(shared_model=True, aggregate=…)``): after every R
        steps the client hands its half over, waits up to ``round_wait_seconds`` for the
        round's average and goes on from it once checked; ``aggregate_circuits(K)``: the
        Aggregate circuit of K halves it verifies with (default ``SplitCircuits(spec,
        aggregate_clients=K)``); ``aggregate_ceremony(K)``: that key's ceremony record
        (``splitverify.aggregate_ceremony``), checked before the first round is trusted (the
        key must follow from it, with this client's own signed contribution in it) and kept
        in the transcript; without it the key's origin is unchecked and ``audit`` says
        "consistency only";
        ``labels``: who holds the labels — 'client' (each batch's labels are sent) or 'server'
        (a vertical split: the server holds them in a label table it commits to when the
        session is created; each batch's second element is then its rows' sample ids, which
        are sent instead, and every ServerStep proof shows its loss used the committed
        table's labels at those ids)."""
        self.labels = label_mode(labels)
        # labels 'server': what the server told of its committed table (never a label)
        self.label_table: LabelTableInfo | None = None
        self.url = url.rstrip("/")
        # which powers of tau this client accepts (None: whatever the server's keys use)
        self.ptau_policy = ptau
        # the session's: {"record"} and, for a file of ours, {"file", "blake2b"}
        self.ptau: dict = {}
        self.mode = ProofMode.of(proof_mode)       # text from the SDK's caller: parsed once
        scenarios.require_side(malicious, "client")
        self.model = model
        self.spec = (torch_io.split_spec(model, server_layers, batch)
                     if model is not None and server_layers is not None
                     else spec or SplitSpec.refnet(batch=batch))
        if model is not None and torch_io.half_layers(model) != self.spec.client:
            raise InputError("the client model's layers are not the spec's client layers: give "
                             "model with server_layers (and no spec)")
        # encoded now: a weight the fixed point cannot hold is refused before any session
        self.model_params = (None if model is None
                             else torch_io.encode_half(self.spec.quant, model))
        self.circuits_for = circuits_for or (lambda spec: SplitCircuits(spec))
        if aggregate_every < 0:
            raise InputError(f"aggregate_every is the steps between two averages (≥ 1), or 0 "
                             f"for none; got {aggregate_every}")
        self.aggregate_every, self.round_wait_seconds = aggregate_every, round_wait_seconds
        self.aggregate_circuits = aggregate_circuits or (
            lambda clients: SplitCircuits(self.spec, aggregate_clients=clients))
        self.aggregate_ceremony = aggregate_ceremony
        self._aggregate_circuits: dict[int, SplitCircuits] = {}
        self.rounds_done = 0                 # rounds whose average this client went on from
        self.backend, self.malicious = backend, malicious
        # where the party proves (default: its own thread); its pool is closed after ``train``
        self.prover_pool = prover_pool
        self.http = httpx.Client(timeout=timeout, transport=transport)
        self.retry_seconds = retry_seconds
        self.retries = 0                     # transient failures survived (for the summary)
        self.state = None if state_dir is None else StateFolder(state_dir)
        # this client's signing key (``identity``, e.g. the organisation's key that its two-party
        # phase 1 with a server is cached under; kept in the state folder too, so that a resumed
        # client is the same party) and the server's address, pinned when the session is created
        self.identity = self._identity(identity)
        # a key made here and lost with the process: its finished keys are never cached
        self.lasting_identity = identity is not None or self.state is not None
        self.server_identity: str | None = None
        self.party: ClientParty | None = None
        self.session_id, self.token, self.seed = 0, "", 0
        self.initial_weights_commitment: int | None = None   # declared at the session's start
        self.request: dict | None = None     # the session-creation request, as sent
        self.ceremony = False                # the server runs a key ceremony per session
        self.idle_expiry_s = 0               # the server removes the session after this idle
        self.keys: dict[str, dict] = {}      # per circuit: our final key (path, blake2b, …)
        self.fresh_keys = fresh_keys
        self.expected_server = (None if server_identity is None else
                                check_address(server_identity, "server_identity"))
        # what became of key reuse: kind → origin session ("reused"), or why not ("declined" by
        # the server, "not_offered" by us)
        self.key_reuse: dict[str, dict] = {"reused": {}, "declined": {}, "not_offered": {}}
        self.next_step = 0
        # the message being delivered ({kind, body}), kept until the server's answer is handled
        self.outbox: dict | None = None
        self.detected: StopRecord | None = None    # where tampering stopped the session

    def _identity(self, given: Identity | None) -> Identity:
        """The given key (saved into a new state folder), the state folder's own (a resumed
        session), or a fresh one; a state folder of another identity is refused."""
        if self.state is None:
            return given or Identity.generate()
        if given is None:
            return Identity.load_or_create(self.state.identity)
        if not Path(self.state.identity).exists():
            given.save(self.state.identity)
            return given
        kept = Identity.load_or_create(self.state.identity)
        if given.address != kept.address:
            raise InputError(f"the state folder {self.state.folder} belongs to identity "
                             f"{kept.address}, not {given.address}: resume it with its own "
                             "identity, or use another state folder")
        return kept

    # -- state on disk --------------------------------------------------------------------
    def _save(self) -> None:
        if self.state is None:
            return
        party = self.party
        self.state.save({
            "url": self.url, "request": self.request, "session_id": self.session_id,
            "token": self.token, "server_identity": self.server_identity,
            "ceremony": self.ceremony, "keys": self.keys, "next_step": self.next_step, "outbox": self.outbox,
            "label_table": None if self.label_table is None else self.label_table.model_dump(),
            "ptau": self.ptau, "key_reuse": self.key_reuse, "rounds_done": self.rounds_done,
            "detected": None if self.detected is None else self.detected.model_dump(),
            "party": None if party is None else party.snapshot(),
            "transcript": (None if party is None or party.transcript is None
                           else party.transcript.model_dump())})

    @classmethod
    def resume(cls, state_dir: str | Path, *,
               circuits_for: Callable[[SplitSpec], SplitCircuits] | None = None,
               backend: str | None = None, timeout: float = 600.0,
               retry_seconds: float = 60.0, url: str | None = None,
               transport: httpx.BaseTransport | None = None,
               malicious: str | None = None,
               model: torch.nn.Sequential | None = None,
               prover_pool: Callable[[SplitCircuits], ProverPool] | None = None,
               aggregate_circuits: Callable[[int], SplitCircuits] | None = None,
               aggregate_ceremony: Callable[[int], dict] | None = None
               ) -> "SplitClient":
        """The client of the session saved in ``state_dir``, where it stopped (a ceremony that
        was cut short is finished here). ``url``: the server's address if it moved;
        ``malicious``: the tamper scenario the resumed client plays; ``model``: the client
        half the session started from (for :meth:`trained_model`)."""
        state = StateFolder(state_dir)
        data = state.load()
        request = SessionCreate.model_validate(data["request"])
        client = cls(url or data["url"], proof_mode=request.proof_mode, spec=request.spec(),
                     circuits_for=circuits_for, backend=backend, timeout=timeout,
                     retry_seconds=retry_seconds, state_dir=state_dir, transport=transport,
                     malicious=malicious, model=model, prover_pool=prover_pool,
                     labels=request.labels, aggregate_every=request.aggregate_every or 0,
                     aggregate_circuits=aggregate_circuits,
                     aggregate_ceremony=aggregate_ceremony)
        client.rounds_done = data.get("rounds_done", 0)   # absent in states from before rounds
        client.session_id, client.token, client.seed = (data["session_id"], data["token"],
                                                        request.seed)
        if data.get("label_table") is not None:
            client.label_table = LabelTableInfo.model_validate(data["label_table"])
        client.initial_weights_commitment = request.initial_weights_commitment
        client.request = data["request"]
        client.ceremony, client.keys = data["ceremony"], data["keys"]
        client.key_reuse = data.get("key_reuse", client.key_reuse)
        client.server_identity = data["server_identity"]
        client.next_step = data["next_step"]
        client.outbox = data["outbox"]
        client.detected = (None if data["detected"] is None
                           else StopRecord.model_validate(data["detected"]))
        party = client._new_party()
        if data["party"] is not None:
            party.restore(data["party"])
        client.ptau = data["ptau"]
        if client.ptau.get("file"):
            party.prover.circuits.ptau = zk.PtauFile.open(
                client.ptau["file"], expected_blake2b=client.ptau["blake2b"])
        for kind, record in client.keys.items():
            load_final(party.prover.circuits, kind, Path(record["path"]), record["blake2b"],
                       record["transcript"])
        if data["transcript"] is None:          # stopped before the session was ready
            if "announced" in client.ptau and "record" not in client.ptau:
                policy = client.ptau["policy"]
                if policy is not None:
                    client.ptau_policy = PtauPolicy(policy["origin"], policy["file"] and
                                                    zk.PtauFile.open(policy["file"]))
                client._agree_ptau(client.ptau["announced"], client.ptau["server_party"])
                client._save()
            if client.ceremony:
                client._key_ceremony()
            client._start_transcript()
            client._save()
        else:
            party.transcript = Transcript.model_validate(data["transcript"])
        return client

    # -- transport ------------------------------------------------------------------------
    def _request(self, method: str, path: str, *, auth: bool = True, **kwargs) -> httpx.Response:
        headers = {**kwargs.pop("headers", {}),
                   **({"Authorization": f"Bearer {self.token}"} if auth else {})}
        deadline = time.monotonic() + self.retry_seconds
        pause = 0.2
        while True:
            try:
                response = self.http.request(method, f"{self.url}{path}", headers=headers,
                                             **kwargs)
                if response.status_code not in RETRY_STATUS:
                    return response
                failure = f"HTTP {response.status_code}"
            except httpx.TransportError as exc:
                failure = f"{type(exc).__name__}: {exc}"
            if time.monotonic() + pause > deadline:
                raise ServerUnreachable(f"{path}: the server did not answer within "
                                  f"{self.retry_seconds:g} s ({failure}); the session can be "
                                  "resumed when it is back")
            self.retries += 1
            time.sleep(pause)
            pause = min(pause * 2, 2.0)

    def _post(self, path: str, body: dict, *, auth: bool = True) -> httpx.Response:
        return self._request("POST", path, json=body, auth=auth)

    def _send(self, kind: str, msg: _Message) -> None:
        """Make ``msg`` the message in flight: saved before it leaves (write-ahead)."""
        self.outbox = {"kind": kind, "body": msg.model_dump()}
        self._save()

    def _deliver(self) -> dict:
        """POST the message in flight; answer a 428 challenge by re-sending it with its proof
        (saved first, as any message)."""
        kind, body = self.outbox["kind"], self.outbox["body"]
        path = f"/sessions/{self.session_id}/{kind}"
        response = self._post(path, body)
        if response.status_code == 428:
            challenge = self._answer(ErrorBody, response, path)
            if challenge.challenge is None or challenge.step is None:
                raise MalformedAnswer(f"{path}: the server's challenge (428) names no circuit "
                                      "and step (fields challenge, step)")
            body["proof"], body["signature"] = self.party.signed_proof(challenge.challenge,
                                                                       challenge.step)
            self._save()
            response = self._post(path, body)
        if response.status_code == 409:
            info = self._answer(ErrorBody, response, path)
            raise TamperDetected(body["step"] if info.detected_step is None
                                 else info.detected_step,
                                 info.detected_by or "server", info.reason or "",
                                 info.rolled_back_to)
        if response.status_code >= 400:
            raise ServerError(f"{path}: HTTP {response.status_code}: {response.text[:500]}")
        return response.json()

    @staticmethod
    def _answer(model: type[_Answer], response: httpx.Response, what: str) -> _Answer:
        """The server's answer as the contract's ``model`` (MalformedAnswer otherwise)."""
        try:
            data = response.json()
        except ValueError as exc:
            raise MalformedAnswer(f"{what}: the server's answer (HTTP {response.status_code}) "
                                  f"is not JSON: {response.text[:200]!r}") from exc
        return parse_answer(model, data, what)

    def _server_proof(self, kind: str, step: int) -> tuple[str, str | None]:
        """The server's proof (and its signature) of a statement this client challenged. The
        draw is saved before the challenge leaves (a resumed client challenges the same steps,
        whatever the server did meanwhile); a server that does not answer — an error status, a
        refusal, no answer within the retry window — fails the challenge, which is tampering,
        not an outage."""
        self._save()
        failed = f"the server did not answer the challenge of its {kind} of step {step}"
        try:
            response = self._post(f"/sessions/{self.session_id}/prove",
                                  {"kind": kind, "step": step})
        except ServerError as exc:
            raise TamperDetected(step, "client", f"{failed}: {exc}") from exc
        if response.status_code >= 400:
            raise TamperDetected(step, "client", f"{failed}: HTTP {response.status_code}: "
                                 f"{response.text[:300]}")
        try:
            answer = self._answer(ProofBody, response, "the challenge's answer")
        except MalformedAnswer as exc:
            raise TamperDetected(step, "client", f"{failed}: its answer holds no proof "
                                 f"({exc})") from exc
        return answer.proof, answer.signature

    # -- the surface ------------------------------------------------------------------------
    def _new_party(self) -> ClientParty:
        client_params = (self.model_params if self.model_params is not None
                         else initial_params(self.spec, self.seed)[0])
        table = self.label_table
        circuits = self.circuits_for(self.spec).with_label_table(0 if table is None
                                                                 else table.depth)
        self.party = scenarios.party_class("client", self.malicious)(
            self.spec, self.session_id, self.mode, client_params, circuits,
            backend=self.backend, identity=self.identity, peer=self.server_identity,
            pool=(self.prover_pool(circuits) if self.prover_pool is not None
                  else background_pool(self.mode, circuits, self.backend)),
            label_table=None if table is None else (table.commitment, table.depth))
        return self.party

    def _take_label_table(self, info: SessionCreated) -> ClientParty:
        """labels 'server': the table the server committed to for the session (its commitment,
        depth and size) becomes the party's; the party is made again on circuits of that depth
        (its ids committed in that many bits), with the weights and salt whose commitment the
        session's creation declared."""
        if info.label_table is None:
            raise MalformedAnswer("the session was asked with labels 'server', but the server's "
                                  "answer announces no label table (label_table): is it a "
                                  "splitverify server of this version?")
        self.label_table = info.label_table.check()
        declared = self.party
        party = self._new_party()
        party.params, party.weights_salt = declared.params, declared.weights_salt
        declared.prover.pool.close()
        return party

    def _request_body(self) -> dict:
        """The session-creation request, built once (``create_session``) and kept as sent: the
        state file holds it, and a resumed client rebuilds its spec and seed from it."""
        request = SessionCreate.of(self.spec, self.mode, self.seed,
                                   self.initial_weights_commitment,
                                   client_identity=self.identity.address, labels=self.labels)
        if self.ptau_policy is not None:
            request.ptau = self.ptau_policy.announce()
        if self.ptau_policy is None or self.ptau_policy.origin == "two-party":
            request.party_id = self.identity.address
        request.key_offers = self._key_offers()
        if self.aggregate_every:
            request.aggregate_every = self.aggregate_every
        return request.model_dump(exclude_none=True)

    def _key_offers(self) -> KeyReuseOffer | None:
        """The finished keys this client holds with the server (``server_identity``, or the
        one it last met at this URL) for this model's circuits, each checked against its
        recorded blake2b first: a changed one is removed and not offered (said in
        ``key_reuse["not_offered"]``); its circuit then gets a fresh ceremony."""
        if self.fresh_keys or not self.mode.proves or not self.lasting_identity:
            return None
        cache = self._cache()
        held = keycache.held_by_client(cache, self.identity.address)
        server = self.expected_server or next(
            (key.pair.server for key in held if key.url == self.url), None)
        if server is None:
            return None
        circuits = self.party.prover.circuits
        offers: dict[str, list[dict]] = {}
        for key in held:
            kind = key.pair.kind
            if (key.pair.server != server or kind not in KINDS
                    or len(offers.get(kind, ())) >= MAX_OFFERS_PER_KIND
                    or key.pair.circuit != circuits.circuit(kind).key):
                continue
            try:
                key.check_integrity()
            except IntegrityError as exc:
                keycache.forget(key)
                self.key_reuse["not_offered"][kind] = f"{exc}; removed, the ceremony runs"
                continue
            offers.setdefault(kind, []).append({"blake2b": key.blake2b,
                                                "origin_session": key.origin_session})
        return KeyReuseOffer(server_identity=server, keys=offers) if offers else None

    def _contribution_signatures(self) -> dict[str, dict[str, str]]:
        return {kind: record["signatures"] for kind, record in self.keys.items()}

    def create_session(self, seed: int = 0) -> int:
        if self.state is not None and self.state.exists():
            raise InputError(f"{self.state.folder} already holds session "
                             f"{self.state.load()['session_id']}: resume it "
                             "(SplitClient.resume, or `train --state` again) or use another "
                             "folder")
        self.seed = seed
        # the party (its weights and their salt) exists before the session, whose creation
        # binds the commitment of its initial weights
        party = self._new_party()
        if self.mode.commits:
            self.initial_weights_commitment = party.weights_commitment()
        self.request = self._request_body()
        response = self._post("/sessions", self.request, auth=False)
        if response.status_code == 422 and "key_offers" in self.request and (
                "key_offers" in response.text):
            # a server from before key reuse forbids the field: ask it again without
            self.key_reuse["declined"] = {kind: "the server does not know key reuse" for kind
                                          in self.request.pop("key_offers")["keys"]}
            response = self._post("/sessions", self.request, auth=False)
        if response.status_code != 201:
            raise ServerError(f"creating a session failed: HTTP {response.status_code}: "
                              f"{response.text[:500]}")
        info = self._answer(SessionCreated, response, "creating a session")
        self.server_identity = check_address(info.server_identity,
                                             "the server's (server_identity)")
        self.session_id, self.token = info.session_id, info.token
        if self.labels == "server":
            party = self._take_label_table(info)
        party.session_id, party.peer = self.session_id, self.server_identity
        party.shared_server_model = info.shared_model
        self.ceremony = info.ceremony
        self.idle_expiry_s = info.idle_expiry_s
        self.key_reuse["reused"] = dict(info.reused_keys)
        self.key_reuse["declined"].update(info.key_reuse_declined)
        self._save()
        if self.mode.proves and (self.ptau_policy is not None or info.ptau):
            # kept first: a client restarted in the middle of the phase 1 picks it up again
            self.ptau = {"announced": info.ptau, "server_party": info.server_party,
                         "policy": None if self.ptau_policy is None else {
                             "origin": self.ptau_policy.origin,
                             "file": self.ptau_policy.file and str(self.ptau_policy.file.path)}}
            self._save()
            self._agree_ptau(info.ptau, info.server_party)
            self._save()
        if self.ceremony:
            self._key_ceremony()
        self._start_transcript()
        self._save()
        return self.session_id

    def _cache(self) -> zk.ArtifactCache:
        circuits = self.party.prover.circuits if self.party is not None else None
        return (circuits.cache if circuits is not None and circuits.cache is not None
                else zk.ArtifactCache())

    def _agree_ptau(self, theirs: dict | None, server_party: str | None) -> None:
        """Use the powers of tau the server announced if it is the one we were told to use:
        the published file we hold, or the two-party phase 1 we share with this server (made
        now if the server asks for it). Refused (SetupError) otherwise. Without a policy of
        our own we follow the server's, except a published file we were not given."""
        policy, circuits = self.ptau_policy, self.party.prover.circuits
        if policy is None:
            if theirs["origin"] == "published":
                raise SetupError(f"the server uses the published powers of tau "
                                 f"{theirs.get('name')} (sha256 {theirs.get('sha256')}): get "
                                 "that file and pass it (train --ptau FILE)")
            policy = PtauPolicy(theirs["origin"])
        powersoftau.check_same(policy.announce(), theirs or {"origin": "not announced"},
                               "server")
        if policy.origin == "published":
            circuits.ptau = policy.file
            self.ptau.update(record=powersoftau.ptau_record(policy.file, "published",
                                                            policy.file.path.name),
                             file=str(policy.file.path), blake2b=policy.file.blake2b)
            return
        if policy.origin == "development":
            self.ptau["record"] = None           # each side's own: see record_of
            return
        server = powersoftau.check_party_id(server_party, "the server's party id")
        if server != self.server_identity:
            raise SetupError(f"the server's party id {server} is not its identity "
                             f"{self.server_identity}: the two-party phase 1 is shared by "
                             "identity keys; refuse this server")
        me = self.identity.address
        needed = powersoftau.needed_power(circuits)
        if theirs.get("phase1"):
            prepared = self._phase1(server, me, needed, circuits)
        else:
            prepared = powersoftau.cached(self._cache(), server, me, needed)
            if prepared is None or powersoftau.sha256_file(prepared.path) != theirs.get("sha256"):
                raise SetupError(f"the server uses the two-party phase 1 {theirs.get('sha256')} "
                                 f"with this party, which holds "
                                 f"{'none' if prepared is None else prepared.path}: the two "
                                 "caches disagree; the server's operator deletes its phase-1 "
                                 "entry for this party to make a new one")
        circuits.ptau = prepared
        self.ptau.update(record=powersoftau.ptau_record(prepared, "two-party"),
                         file=str(prepared.path), blake2b=prepared.blake2b)

    def _phase1(self, server: str, me: str, needed: int, circuits: SplitCircuits
                ) -> zk.PtauFile:
        """The client's half of the two-party phase 1: check the server's powers of tau, add
        ours, upload it; the server's prepared file must equal ours."""
        path = f"/sessions/{self.session_id}/phase1"
        response = self._request("GET", path)
        if response.status_code != 200:
            raise ServerError(f"fetching the server's powers of tau: HTTP "
                              f"{response.status_code}: {response.text[:300]}")
        folder = (self.state.folder / "phase1" if self.state is not None
                  else owned_temp_folder(circuits, "sv-client-phase1-"))
        upload, prepared = powersoftau.client_contribute(self._cache(), server, me,
                                                         response.content, needed, folder)
        done = self._request("PUT", path, content=upload,
                             headers={"content-type": "application/octet-stream"})
        if done.status_code != 200:
            raise ServerError(f"the server refused our phase-1 contribution: HTTP "
                              f"{done.status_code}: {done.text[:300]}")
        mine = powersoftau.sha256_file(prepared.path)
        theirs = self._answer(Phase1Accepted, done, "the phase-1 contribution").sha256
        if theirs != mine:
            raise SetupError(f"the server's prepared powers of tau has sha256 "
                             f"{theirs}, ours {mine}: the two differ, so no "
                             "key made from them would be shared; refused")
        return prepared

    def _start_transcript(self) -> None:
        party = self.party
        party.transcript = new_transcript(party, self._contribution_signatures(), {
            kind: record["reused_from"] for kind, record in self.keys.items()
            if record.get("reused_from") is not None})
        if party.mode.proves:
            powersoftau.record_in(party.transcript, self.ptau.get("record")
                                  or powersoftau.record_of(party.prover.circuits))

    def _key_ceremony(self) -> None:
        """Per circuit: fetch the server's key, check it, contribute, check, send it back (see
        :mod:`splitverify.keyexchange`). Each final key is saved before it is uploaded, so a
        restarted client re-sends that key rather than making another."""
        # without a state folder the keys live as long as the circuits that prove with them
        # (a party may outlive this client object)
        folder = (self.state.keys if self.state is not None
                  else owned_temp_folder(self.party.prover.circuits, "sv-client-keys-"))
        for kind in KINDS:
            path = f"/sessions/{self.session_id}/keys/{kind}"
            record = self.keys.get(kind)
            if record is None and kind in self.key_reuse["reused"]:
                self._reuse_key(kind, folder)
                continue
            if record is None:
                response = self._request("GET", path)
                if response.status_code != 200:
                    raise ServerError(f"fetching the server's {kind} key: HTTP "
                                      f"{response.status_code}: {response.text[:300]}")
                server_hash = response.headers.get("X-Contribution-Hash", "")
                server_signature = response.headers.get("X-Contribution-Signature")
                if not contribution_signed(self.server_identity, self.session_id, kind, 1,
                                           "server", server_hash, server_signature):
                    raise SetupError(f"the server's {kind} contribution is not signed by its "
                                     f"pinned identity {self.server_identity}: refuse the key "
                                     "and start a new session")
                key, mine = client_contribute(self.party.prover.circuits, kind,
                                              response.content, server_hash, folder)
                record = self.keys[kind] = {
                    "path": str(key.zkey), "blake2b": key.blake2b,
                    "transcript": [asdict(c) for c in key.transcript], "accepted": False,
                    "signatures": {"server": server_signature, "client": sign_contribution(
                        self.identity, self.session_id, kind, 2, "client", mine)}}
                self._save()
            if record["accepted"]:
                continue
            done = self._request("PUT", path, content=Path(record["path"]).read_bytes(),
                                 headers={"content-type": "application/octet-stream",
                                          "X-Contribution-Hash": record["transcript"][-1]["hash"],
                                          "X-Contribution-Signature":
                                              record["signatures"]["client"]})
            # 409 "already final": the server took this very key before we saw its answer (only
            # this session's token can upload, and we make one key per circuit)
            if done.status_code not in (200, 409):
                raise ServerError(f"the server refused the {kind} key: HTTP "
                                  f"{done.status_code}: {done.text[:300]}")
            if done.status_code == 200:
                self._answer(KeyAccepted, done, f"the {kind} key's upload")
            record["accepted"] = True
            self._save()
            if self.lasting_identity:
                self._keep_key(kind, record["signatures"])

    def _keep_key(self, kind: str, signatures: dict[str, str]) -> None:
        """Our final key, verified by us (``client_contribute``) and taken by the server:
        cached for the pair's later sessions."""
        circuits = self.party.prover.circuits
        keycache.store(self._cache(), "client",
                       keycache.KeyPair.of(self.server_identity, self.identity.address,
                                           initial(circuits, kind), kind),
                       circuits.key(kind), self.session_id, signatures, self.url)

    def _reuse_key(self, kind: str, folder: Path) -> None:
        """The server took our offer for ``kind``: use our own cached copy of that key (under
        the session's ptau, from the origin session the server names; its bytes checked
        against the blake2b recorded when we verified it)."""
        origin = self.key_reuse["reused"][kind]
        offered = ((self.request or {}).get("key_offers") or {}).get("keys", {}).get(kind, [])
        if origin not in [offer["origin_session"] for offer in offered]:
            raise SetupError(f"the server says it reuses the {kind} key of session {origin}, "
                             "which this client did not offer: refuse the session")
        circuits = self.party.prover.circuits
        pair = keycache.KeyPair.of(self.server_identity, self.identity.address,
                                   initial(circuits, kind), kind)
        mine = keycache.lookup(self._cache(), "client", pair)
        if mine is None or mine.origin_session != origin:
            raise SetupError(f"the server reuses the {kind} key of session {origin}, which this "
                             "client does not hold for this session's ptau (its cache changed "
                             "meanwhile?): start a new session, or pass --fresh-keys")
        key_path = keycache.use_in(mine, folder / f"{kind}_final.zkey")
        load_final(circuits, kind, key_path, mine.blake2b, mine.transcript)
        self.keys[kind] = {"path": str(key_path), "blake2b": mine.blake2b,
                           "transcript": mine.transcript, "accepted": True,
                           "signatures": mine.signatures, "reused_from": origin}
        self._save()

    def step(self, step: int, x: torch.Tensor, labels: torch.Tensor) -> None:
        """One training step. After a restart the step in flight is finished with the data it
        started with (already committed to); ``x`` and ``labels`` are then not used."""
        party = self.party
        if party is None:
            raise InputError("create_session() first")
        if step != self.next_step:
            raise InputError(f"the session is at step {self.next_step}, not {step}")
        self._take_round_average()          # a round left unfinished by a restart
        if self.outbox is None:
            if policy.proves_later(self.mode):
                self._exchange_proofs(step - self.mode.lag)
            self._send("forward", party.forward(step, x, labels))
        if self.outbox["kind"] == "forward":
            try:
                gradient = GradientMessage.model_validate(self._deliver())
            except ValidationError as exc:
                raise TamperDetected(step, "client", "the server's answer is not a gradient "
                                     f"message: {exc.errors()[:3]}") from exc
            backward = party.receive_gradient(gradient, self._server_proof)
            if party.shared_server_model and party.mode.commits:
                self._check_published_chain(step, gradient.public)
            self._send("backward", backward)
        parse_answer(StepDone, self._deliver(), f"the backward message of step {step}")
        self.next_step, self.outbox = step + 1, None
        self._save()
        self._take_round_average()

    def _take_round_average(self) -> None:
        """SplitFed-V1 (``aggregate_every`` R), once every R steps: hand the half over, wait
        for the round's average, check it against the round the server published (its
        statement with this client's commitments, the server's signature, the Aggregate proof:
        ``aggregation.adopt_average``) and go on from it. A check that fails is tampering at
        the round's last step."""
        every, done = self.aggregate_every, self.next_step
        if not every or done == 0 or done % every or self.rounds_done >= done // every:
            return
        party, round_, step = self.party, done // every - 1, done - 1
        path = f"/sessions/{self.session_id}/rounds"
        half = HalfSubmission(session_id=self.session_id, round=round_, step=step,
                              params=params_to_lists(party.params),
                              weights_salt=party.weights_salt)
        self._round_answer(self._post(f"{path}/half", half.model_dump()), step, "the half")
        deadline = time.monotonic() + self.round_wait_seconds
        while (response := self._request("GET", f"{path}/{round_}")).status_code == 425:
            if time.monotonic() > deadline:
                raise ServerError(f"round {round_}: the server did not average it within "
                                  f"{self.round_wait_seconds:g} s (other clients' halves "
                                  "missing?); the session can be resumed")
            time.sleep(0.2)
        self._round_answer(response, step, f"round {round_}'s average")
        try:
            answer = self._answer(AverageAnswer, response, f"round {round_}'s average")
            message = AverageMessage(answer.session_id, answer.round,
                                     params_from_lists(answer.average), answer.public,
                                     answer.proof, answer.signature)
        except (MalformedAnswer, ValueError, TypeError, RuntimeError, OverflowError) as exc:
            raise TamperDetected(step, "client", f"round {round_}: the server's average is "
                                 f"malformed: {exc}") from exc
        record = self._published_round(round_, step)
        clients = len(record.sessions)
        if clients not in self._aggregate_circuits:
            self._aggregate_circuits[clients] = self._checked_aggregate_key(clients, step)
        adopt_average(party, message,
                      RoundRecord(record.round, record.public, record.proof),
                      self._aggregate_circuits[clients], answer.slot, step)
        self.rounds_done = round_ + 1
        self._save()

    def _checked_aggregate_key(self, clients: int, step: int) -> SplitCircuits:
        """The Aggregate circuit of ``clients`` halves, its key checked against its ceremony
        (when one is given and the session proves) before any round is trusted: a key that
        does not follow from it, or lacks this client's signed contribution, is tampering at
        ``step``."""
        circuits = self.aggregate_circuits(clients)
        if self.aggregate_ceremony is None or not self.party.mode.proves:
            return circuits
        record = self.aggregate_ceremony(clients)
        vk = circuits.verification_key(AGGREGATE).to_snarkjs()
        try:
            check_aggregate_key(vk, record, self.party.peer, self.identity.address)
        except KeyRefused as exc:
            raise TamperDetected(step, "client", f"{exc} (client {self.identity.address})"
                                 ) from exc
        if self.party.transcript is not None:
            self.party.transcript.aggregate_ceremony = record
        return circuits

    def _round_answer(self, response: httpx.Response, step: int, what: str) -> None:
        """An answer about a round: 409 is tampering (the session stopped), other errors are
        the server's refusal."""
        if response.status_code == 409:
            info = self._answer(ErrorBody, response, what)
            raise TamperDetected(step if info.detected_step is None else info.detected_step,
                                 info.detected_by or "server", info.reason or info.error)
        if response.status_code >= 400:
            raise ServerError(f"{what}: HTTP {response.status_code}: {response.text[:500]}")

    def _published_round(self, round_: int, step: int) -> PublishedRound:
        """Round ``round_`` as the server publishes it beside its chain (``GET /chain``)."""
        response = self._request("GET", "/chain", auth=False)
        try:
            published = response.json().get("rounds", []) if response.status_code == 200 else []
            found = [PublishedRound.model_validate(r) for r in published
                     if isinstance(r, dict) and r.get("round") == round_]
        except (ValueError, AttributeError, ValidationError) as exc:
            raise TamperDetected(step, "client", f"round {round_}: the server's published "
                                 f"rounds are malformed: {exc}") from exc
        if len(found) != 1:
            raise TamperDetected(step, "client", f"round {round_} is not published once beside "
                                 f"the server's chain (GET /chain: HTTP {response.status_code})")
        return found[0]

    def _check_published_chain(self, step: int, public: dict[str, int]) -> None:
        """A shared server half: the ServerStep just received (checked and verified) must be in
        the server's published chain, starting from the head published before it, and that
        chain must extend the one seen before (``shared_chain.check_served``)."""
        response = self._request("GET", "/chain", auth=False)
        if response.status_code != 200:
            raise TamperDetected(step, "client", "the server trains a shared server half but "
                                 f"does not publish its chain (GET /chain: HTTP "
                                 f"{response.status_code})")
        try:
            chain = response.json()
        except ValueError as exc:
            raise TamperDetected(step, "client", "the server's published chain is not JSON"
                                 ) from exc
        self.party.chain_seen = check_served(chain, self.party.chain_seen, self.session_id,
                                             step, public)

    def train(self, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], steps: int,
              on_step: Callable[[int], None] = lambda _s: None) -> SessionResult:
        """Steps ``next_step`` … ``steps − 1`` on the matching batches (a resumed session skips
        the batches of the steps it has made). ``batches``: any iterable of ``(x, y)`` or a
        ``DataLoader``; float features are quantized by the spec, int64 ones are fixed point."""
        start = time.perf_counter()
        detected = None if self.detected is None else self.detected.error()
        fixed_point = torch_io.fixed_point_batches(self.spec.quant, self.spec.batch, batches)
        try:
            for step, (x, labels) in enumerate(fixed_point):
                if step >= steps or detected is not None:
                    break
                if step < self.next_step:
                    continue
                self.step(step, x, labels)
                on_step(self.next_step)
            if detected is None:
                self._take_round_average()          # the round the last step ended
            if detected is None and policy.proves_later(self.mode):
                self._exchange_proofs(self.next_step - 1)   # every proof, verified both ways
                self._exchange_proofs(self.next_step - 1)   # our last acknowledgements
        except TamperDetected as exc:
            detected = exc
            if policy.proves_later(self.mode):
                self._roll_back(exc)
            self.detected = StopRecord.of(exc)
            self._save()
        if self.party is not None:                 # the signed end: a cut is then visible
            self.party.end_session(self.next_step)
            self._save()
            self.party.prover.pool.close()         # its workers, until a later train needs them
        return SessionResult(self.next_step, [], detected, self.party, None,
                             time.perf_counter() - start, self.party.transcript)

    # -- pipelined:W ----------------------------------------------------------------------
    def _exchange_proofs(self, through_step: int) -> None:
        """Deliver our proofs made so far (waiting for those of steps up to ``through_step``)
        with our acknowledgements of the server's, and verify the server's in its answer; the
        server's proofs up to ``through_step`` must all be verified then. A server that does
        not deliver a proof that is due — an error status, a refusal, no answer within
        ``retry_seconds`` — fails it: tampering at that proof's step. While none is due, a
        server that does not answer only postpones the exchange (its proofs and our
        acknowledgements go with the next one): stopping then would let a cheater that goes
        silent end the session before any of its proofs could expose it."""
        party, path = self.party, f"/sessions/{self.session_id}/proofs"
        body = ProofExchange(proofs=party.late_proofs(through_step),
                             verified=party.verifier.inbound.announce(),
                             through_step=through_step)
        self._save()       # what we announced is not announced again (it is re-sent if lost)
        try:
            response = self._post(path, body.model_dump())
            if response.status_code == 409:
                info = self._answer(ErrorBody, response, path)
                raise TamperDetected(info.detected_step if info.detected_step is not None
                                     else through_step, info.detected_by or "server",
                                     info.reason or "", info.rolled_back_to)
            if response.status_code >= 400:
                raise ServerError(f"{path}: HTTP {response.status_code}: {response.text[:300]}")
            answer = self._answer(ProofExchange, response, "the proof exchange")
        except (ServerError, MalformedAnswer) as exc:
            overdue = party.verifier.inbound.overdue(through_step)
            if overdue is None and isinstance(exc, ServerUnreachable):
                return
            if overdue is None:
                raise
            raise TamperDetected(overdue[1], "client", f"the server did not deliver its proof "
                                 f"of its {overdue[0]} statement of step {overdue[1]} when it "
                                 f"was due: {exc}") from exc
        party.acknowledged(answer.verified)
        party.receive_late_proofs(answer.proofs)
        self._save()
        party.require_proofs_through(through_step)

    def _roll_back(self, exc: TamperDetected) -> None:
        """Tampering in ``pipelined:W``: back to the last step whose proofs all verified —
        the step the server named when it detected it, or the one we know of, which we then
        tell the server (it stops the session and goes back there too)."""
        party = self.party
        told_by_server = exc.rolled_back_to is not None
        if not told_by_server:
            exc.rolled_back_to = rollback_step(exc.step, party)
        party.roll_back_to(exc.rolled_back_to)
        self._save()
        if told_by_server:
            return
        report = ProofExchange(stopped=StopRecord.of(exc))
        try:
            self._post(f"/sessions/{self.session_id}/proofs", report.model_dump())
        except ServerError as failed:
            # the session stops here all the same; the summary says the server was not told
            exc.reason += f" (the server could not be told: {failed})"

    def trained_model(self) -> torch.nn.Sequential:
        """The client's half as trained so far: a copy of the ``model`` given, holding the
        session's weights decoded from fixed point."""
        if self.model is None or self.party is None:
            raise InputError("trained_model() needs the client half given as model= and a "
                             "session (create_session() first)")
        return torch_io.decode_half(self.spec.quant, self.model, self.party.params)

    def _get(self, what: str) -> dict:
        response = self.http.get(f"{self.url}/sessions/{self.session_id}{what}",
                                 headers={"Authorization": f"Bearer {self.token}"})
        if response.status_code >= 400:
            raise ServerError(f"GET {what or 'status'}: HTTP {response.status_code}: "
                              f"{response.text[:300]}")
        return response.json()

    def server_transcript(self) -> dict:
        """What the server received and checked (its half of the session's transcript)."""
        return self.transcript_of_server().model_dump()

    def transcript_of_server(self) -> Transcript:
        """The server's half of the session's transcript, parsed."""
        return parse_answer(Transcript, self._get("/transcript"), "the server's transcript")

    def delete_session(self) -> None:
        """End the session on the server now: it removes the session's state and keys (this
        client's state folder is left as it is)."""
        response = self._request("DELETE", f"/sessions/{self.session_id}")
        if response.status_code != 200:
            raise ServerError(f"deleting session {self.session_id}: HTTP "
                              f"{response.status_code}: {response.text[:300]}")

    def server_status(self) -> dict:
        """The server's figures: steps, losses, proofs verified, prove/verify seconds."""
        return self.status().model_dump()

    def status(self) -> SessionStatus:
        """The server's figures of this session, parsed (``GET /sessions/{id}``)."""
        return parse_answer(SessionStatus, self._get(""), "the session's status")

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
            predicted = torch.tensor(self._answer(Predictions, response, "predict").classes)
            correct += int((predicted == y[i:i + rows]).sum())
        return correct / len(x)
