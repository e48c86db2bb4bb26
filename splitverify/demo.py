"""`splitverify demo`: RefNet split training between a server (uvicorn on a free loopback port,
in a thread) and a client, over real HTTP, with proofs as the proof mode says."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import uvicorn

from . import refnet
from .circuits import KINDS, SplitCircuits
from .errors import InputError
from .model import SplitSpec
from .protocol import SCENARIOS, ProofMode
from .transcript import Transcript


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerThread:
    """uvicorn serving ``app`` on 127.0.0.1 in a daemon thread."""

    def __init__(self, app, port: int | None = None):
        self.port = port or free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "ServerThread":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise InputError(f"the demo server did not start on port {self.port}")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def refnet_batches(spec: SplitSpec) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """RefNet's training set in order, batch by batch, epoch after epoch (loaded now, so
    loading is not counted as training time)."""
    xtr, ytr, _, _ = refnet.load_digits_split()
    q = spec.quant.encode(xtr, data=True)

    def batches():
        while True:
            for i in range(0, len(q) - spec.batch + 1, spec.batch):
                yield q[i:i + spec.batch], ytr[i:i + spec.batch]
    return batches()


def merged_transcript(client: Transcript, server: Transcript) -> Transcript:
    """The client's record (server steps it verified) and the server's (client messages it
    verified) as one transcript, in protocol order."""
    order = {kind: i for i, kind in enumerate(KINDS)}
    entries = sorted([*client.entries, *server.entries], key=lambda e: (e.step, order[e.kind]))
    return client.model_copy(update={"entries": entries,
                                     "detected": client.detected or server.detected})


def run_demo(steps: int, proof_mode: str, malicious: str | None, out: Path,
             progress: Callable[[str], None], on_step: Callable[[int], None],
             backend: str | None = None) -> dict:
    from .client import SplitClient
    from .server import create_app

    mode = ProofMode.parse(proof_mode)
    if steps < 1:
        raise InputError("--steps must be at least 1")
    if malicious is not None and malicious not in SCENARIOS:
        raise InputError(f"unknown scenario {malicious!r}; one of {list(SCENARIOS)}")
    spec = SplitSpec.refnet()
    start = time.perf_counter()
    # One key per circuit, made with a "server" and a "client" phase-2 contribution; both sides
    # of this one-machine demo use it (the exchange of keys between machines is not built yet).
    shared = SplitCircuits(spec, contributors=("server", "client"))
    if mode.commits:
        for kind in KINDS:
            progress(f"{kind}: compile and development setup (both cached after the first "
                     "run), then the server's and the client's phase-2 contributions (fresh)")
            shared.key(kind)
    setup_s = time.perf_counter() - start
    server_bad = malicious if malicious and malicious.startswith("server:") else None
    client_bad = malicious if malicious and malicious.startswith("client:") else None
    app = create_app(lambda _spec: shared, backend=backend, malicious=server_bad)
    with ServerThread(app) as server:
        progress(f"server on {server.url}; training RefNet for {steps} steps ({mode})")
        client = SplitClient(server.url, proof_mode=str(mode), batch=spec.batch,
                             circuits_for=lambda _spec: shared, backend=backend,
                             malicious=client_bad)
        client.create_session(seed=0)
        data = refnet_batches(spec)
        train_start = time.perf_counter()
        result = client.train(data, steps, on_step)
        train_s = time.perf_counter() - train_start
        server_side = app.state.sessions[client.session_id]
    party = server_side.party
    transcript = merged_transcript(client.party.transcript, party.transcript)
    out.mkdir(parents=True, exist_ok=True)
    transcript.save(out / "transcript.json")
    det = result.detected
    _, _, xte, yte = refnet.load_digits_split()
    accuracy = refnet.accuracy(spec, client.party.params, party.params, xte, yte)

    def means(d: dict[str, list[float]]) -> dict[str, float]:
        return {k: round(sum(v) / len(v), 4) for k, v in d.items() if v}

    return {
        "steps": result.steps, "proof_mode": str(mode), "malicious": malicious,
        "verified": det is None and mode.kind != "off",
        "detected": det is not None, "detected_step": det.step if det else None,
        "detected_by": det.detected_by if det else None, "reason": det.reason if det else None,
        # mean squared error per logit of the last step (the loss the server proved)
        "final_loss": (round(party.losses[-1] / spec.quant.scale / (spec.batch * spec.classes), 6)
                       if party.losses else None),
        "test_accuracy": round(accuracy, 4),
        "proofs_verified": {"client": client.party.verifier.verified,
                            "server": party.verifier.verified},
        "prove_s": {**means(client.party.prover.prove_seconds),
                    **means(party.prover.prove_seconds)},
        "verify_s": {**means(client.party.verifier.verify_seconds),
                     **means(party.verifier.verify_seconds)},
        "setup_s": round(setup_s, 2), "train_s": round(train_s, 2),
        "seconds": round(time.perf_counter() - start, 2),
        "insecure_dev_setup": True,
    }
