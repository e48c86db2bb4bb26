"""`splitverify demo`: RefNet (or the reference CNN) split training between a server (uvicorn on
a free loopback port, in a thread) and a client, over real HTTP, with proofs as the proof mode
says; with ``--clients K`` (:func:`run_shared_demo`), K clients at once, each its own client
half, identity and transcript, training one shared server half whose chain the server
publishes."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from splitverify.aggregate_ceremony import client_contributes, server_begins
from splitverify.circuitgen import KINDS, SplitCircuits
from splitverify.circuitgen.generator import cost_breakdown
from splitverify.errors import InputError
from splitverify.identity import Identity
from splitverify.keyexchange import initial
from splitverify.label_table import held_labels, label_mode, table_depth
from splitverify.ledger.sink import ChainLog, chain_log, check_chain_options
from splitverify.model import SplitSpec, named_spec
from splitverify.pool import ProverPool
from splitverify.protocol import ProofMode, scenarios
from splitverify.protocol.aggregation import require_rounds
from splitverify.shared_chain import chain_errors
from splitverify.tempfolders import owned_temp_folder
from splitverify.zk.cache import ArtifactCache
from splitverify_client.training import key_ceremony_line, run_training

from ..app import create_app
from ..loopback import ServerThread
from ..rounds import RoundPlan


def demo_identity(party: str) -> Identity:
    """The demo's ``party`` ("server" or "client") keeps its identity from run to run, in
    ``$SPLITVERIFY_CACHE/demo/`` beside the keys: so a second demo reuses the first one's
    finished key ceremony (sound between the same two identities: README, "Reusing a finished
    key ceremony"). Both are this machine's, as the demo's development ptau is."""
    return Identity.load_or_create(ArtifactCache().root / "demo" / f"{party}.identity")


def initial_keys(circuits: SplitCircuits, progress: Callable[[str], None]) -> None:
    """Every circuit compiled and given its development initial key, two circuits at a time,
    the largest first: the compiler is a separate process and the setup's curve work runs in C
    without the GIL, so on two cores one circuit's compile overlaps another's setup."""
    progress(f"compile and development setup of {', '.join(KINDS)}, two at a time (cached "
             "after the first run)")
    by_size = sorted(KINDS, key=lambda kind: sum(cost_breakdown(circuits.spec, kind).values()),
                     reverse=True)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="sv-setup") as workers:
        for kind, done in zip(by_size, [workers.submit(initial, circuits, kind)
                                        for kind in by_size]):
            done.result()
            progress(f"{kind}: compiled, development key ready")


def run_demo(steps: int, mode: ProofMode, malicious: str | None, out: Path,
             progress: Callable[[str], None], on_step: Callable[[int], None],
             backend: str | None = None, chain: str | None = None,
             verify_on_chain: bool = False, evaluate_every: int = 0,
             on_evaluate: Callable[[dict], None] = lambda _point: None,
             prover_pool: Callable[[SplitCircuits], ProverPool] | None = None,
             model: str = "refnet", fresh_keys: bool = False, labels: str = "client") -> dict:
    """``splitverify demo``: the server in a thread on a free loopback port, the client against
    it over HTTP (``run_training``); with ``chain`` both parties log the statements they send
    on one ledger (``verify_on_chain``: with their proofs, verified by the chain);
    ``evaluate_every``: the test accuracy every that many steps too (``on_evaluate``);
    ``prover_pool(circuits)`` gives each party the pool it proves on (default: its thread);
    ``model``: the reference model trained (``splitverify.model.NAMED_MODELS``);
    ``fresh_keys``: run the key ceremony even when an earlier demo's finished keys could be
    reused (the demo's two parties keep their identities: :func:`demo_identity`);
    ``labels``: 'server' gives the server the digits' labels (a label table committed for the
    session) and the client sends sample ids."""
    if steps < 1:
        raise InputError("--steps must be at least 1")
    if malicious is not None:
        scenarios.get(malicious)            # an unknown scenario is refused before anything runs
    check_chain_options(chain, verify_on_chain, mode)
    spec = named_spec(model)
    with chain_log(chain, verify_on_chain) as log:
        if log is not None:
            progress(f"ledger: SplitLedger deployed on the {chain} chain at {log.ledger.address}")
        return _demo_session(spec, steps, mode, malicious, out, progress, on_step, backend,
                             log, evaluate_every, on_evaluate, prover_pool, fresh_keys,
                             labels)


def server_labels(labels: str) -> torch.Tensor | None:
    """The demo server's labels: the digits' under --labels server (None: the client's)."""
    return held_labels("digits") if label_mode(labels) == "server" else None


def prepare_keys(spec: SplitSpec, mode: ProofMode, progress: Callable[[str], None],
                 labels: torch.Tensor | None = None) -> None:
    """What every party's key ceremony starts from (cached after one run); ``labels``: the
    server's, whose table's depth the circuits read."""
    if mode.proves:
        depth = 0 if labels is None else table_depth(len(labels))
        initial_keys(SplitCircuits(spec, label_table_depth=depth), progress)


def _demo_session(spec: SplitSpec, steps: int, mode: ProofMode, malicious: str | None,
                  out: Path,
                  progress: Callable[[str], None], on_step: Callable[[int], None],
                  backend: str | None, chain: ChainLog | None, evaluate_every: int,
                  on_evaluate: Callable[[dict], None],
                  prover_pool: Callable[[SplitCircuits], ProverPool] | None,
                  fresh_keys: bool, labels: str) -> dict:
    start = time.perf_counter()
    held = server_labels(labels)
    prepare_keys(spec, mode, progress, held)
    setup_s = time.perf_counter() - start
    # each party has its own SplitCircuits: its keys come out of the session's ceremony; the
    # server's identity signs its messages and owns its ledger slots
    identity, client_identity = demo_identity("server"), demo_identity("client")
    if chain is not None:
        chain.accounts.setdefault("server", identity.private_key)
    app = create_app(backend=backend, malicious=scenarios.played_by(malicious, "server"),
                     on_party=chain.sink("server").attach if chain is not None else None,
                     identity=identity, prover_pool=prover_pool, labels=held)
    with ServerThread(app) as server:
        progress(f"server on {server.url} (live dashboard at {server.url}/ while the demo "
                 "runs)")
        summary = run_training(server.url, steps, mode, out, on_step, malicious=malicious,
                               backend=backend, chain=chain, evaluate_every=evaluate_every,
                               on_evaluate=on_evaluate, prover_pool=prover_pool, spec=spec,
                               identity=client_identity, server_identity=identity.address,
                               fresh_keys=fresh_keys,
                               on_keys=lambda reuse: progress(key_ceremony_line(reuse))
                               if mode.proves else None, labels=labels)
    return {**summary, "setup_s": round(setup_s, 2),
            "seconds": round(time.perf_counter() - start, 2)}


def rounds_summary(chain: dict, every: int, summaries: list[dict]) -> dict:
    """``--aggregate every:R``: the rounds the server averaged (and proved), and how many of
    them each client checked and went on from."""
    rounds = chain.get("rounds", [])
    return {"every": every, "averaged": len(rounds),
            "proven": sum(r["proof"] is not None for r in rounds),
            "adopted_per_client": [s["rounds_adopted"] for s in summaries]}


def aggregate_key_ceremony(aggregate: SplitCircuits, server: Identity,
                           clients: list[Identity], progress: Callable[[str], None]) -> dict:
    """The run's one Aggregate key (``splitverify.aggregate_ceremony``): the server's
    contribution, then each client's in turn, each signed by its party; ``aggregate`` uses the
    final key. Returns the ceremony record every client checks before it trusts a round."""
    progress(f"Aggregate key: phase-2 contributions of the server and the {len(clients)} "
             "clients in turn, each signed")
    ceremony = server_begins(aggregate, server,
                             owned_temp_folder(aggregate, "sv-aggregate-ceremony-"))
    for identity in clients:
        client_contributes(ceremony, identity)
    return ceremony.record()


def run_shared_demo(clients: int, steps: int, mode: ProofMode, out: Path,
                    progress: Callable[[str], None], on_step: Callable[[int], None],
                    backend: str | None = None,
                    prover_pool: Callable[[SplitCircuits], ProverPool] | None = None,
                    spec: SplitSpec | None = None, malicious: str | None = None,
                    labels: str = "client", aggregate_every: int = 0) -> dict:
    """``splitverify demo --clients K``: one server (a thread, loopback HTTP) training one shared
    server half (``create_app(shared_model=True)``), and K clients at once, each in its own
    thread with its own client half, identity, session (and key ceremony), shard of the digits
    and transcript (``out/client-i/``). The server's chain is written to ``out/chain.json``
    (``splitverify audit --chain out/chain.json out/client-*/transcript.json`` checks the
    whole run). ``on_step`` sees the steps made by all clients together. ``spec``: another
    model than RefNet (random data, as ``train --model``); ``malicious``: a server scenario
    the server plays against every client (e.g. ``server:forked-model``); ``labels``: 'server'
    gives the server the digits' labels, one committed table every client's steps read;
    ``aggregate_every`` R ≥ 1: the client halves are averaged with a proof after every R steps
    of each client (``--aggregate every:R``, :mod:`..rounds`; the rounds are published in
    chain.json), proven under a key from the server's and every client's signed contributions
    (:func:`aggregate_key_ceremony`), which each client checks before it trusts a round."""
    if clients < 1:
        raise InputError("--clients must be at least 1")
    if aggregate_every:
        require_rounds(aggregate_every, clients, mode)
    if malicious is not None:
        scenarios.require_side(malicious, "server")
    if steps < 1:
        raise InputError("--steps must be at least 1")
    spec = spec or SplitSpec.refnet()
    start = time.perf_counter()
    held = server_labels(labels)
    prepare_keys(spec, mode, progress, held)
    setup_s = time.perf_counter() - start
    server_identity = Identity.generate()
    identities = [Identity.generate() for _ in range(clients)]
    aggregate = SplitCircuits(spec, aggregate_clients=clients) if aggregate_every else None
    ceremony = None
    if aggregate is not None and mode.proves:
        ceremony = aggregate_key_ceremony(aggregate, server_identity, identities, progress)
    app = create_app(backend=backend, identity=server_identity, prover_pool=prover_pool,
                     shared_model=True, malicious=malicious, labels=held,
                     aggregate=RoundPlan(aggregate_every, clients) if aggregate_every else None,
                     aggregate_circuits_for=lambda _spec, _clients: aggregate)
    done, counting = [0], threading.Lock()

    def stepped(_done: int) -> None:
        with counting:
            done[0] += 1
            on_step(done[0])

    def client(i: int) -> dict:
        return run_training(server.url, steps, mode, out / f"client-{i}", stepped, seed=i,
                            backend=backend, prover_pool=prover_pool, spec=spec,
                            shard=(i, clients), labels=labels,
                            aggregate_every=aggregate_every, identity=identities[i],
                            aggregate_circuits=lambda _clients: aggregate,
                            aggregate_ceremony=None if ceremony is None
                            else lambda _clients: ceremony)

    with ServerThread(app) as server:
        progress(f"server on {server.url}, one shared server half; {clients} clients at once, "
                 "each with its own session and key ceremony")
        train_start = time.perf_counter()
        with ThreadPoolExecutor(clients, thread_name_prefix="sv-client") as pool:
            summaries = list(pool.map(client, range(clients)))
        train_s = time.perf_counter() - train_start
        chain = app.state.service.shared.published()
        if aggregate_every:
            chain["rounds"] = app.state.service.rounds.published()
    out.mkdir(parents=True, exist_ok=True)
    (out / "chain.json").write_text(json.dumps(chain, indent=1))
    for i, summary in enumerate(summaries):
        (out / f"client-{i}" / "summary.json").write_text(json.dumps(summary, indent=2))
    detected = [{"client": i, "session_id": s["session_id"], "step": s["detected_step"],
                 "detected_by": s["detected_by"], "reason": s["reason"]}
                for i, s in enumerate(summaries) if s["detected"]]
    steps_made = sum(s["steps"] for s in summaries)
    return {
        "clients": clients, "proof_mode": str(mode), "steps_per_client": steps,
        "malicious": malicious, "labels": labels,
        **({"label_table": summaries[0]["label_table"]} if labels == "server" else {}),
        "steps": steps_made, "detected": bool(detected), "detections": detected,
        "chain": {"entries": len(chain["entries"]), "head": str(chain["head"]),
                  "linked": chain_errors(chain) is None, "file": "chain.json"},
        **({"rounds": rounds_summary(chain, aggregate_every, summaries)}
           if aggregate_every else {}),
        "per_client": [{
            "client": i, "session_id": s["session_id"], "steps": s["steps"],
            "detected": s["detected"], "test_accuracy": s["test_accuracy"],
            "final_loss": s["final_loss"], "proofs_verified": s["proofs_verified"],
            "train_s": s["train_s"], "step_s": s["step_s"], "out": f"client-{i}"}
            for i, s in enumerate(summaries)],
        "setup_s": round(setup_s, 2), "train_s": round(train_s, 2),
        # wall time for all clients together: the server takes their steps one at a time
        "steps_per_s": round(steps_made / max(train_s, 1e-9), 4),
        "seconds": round(time.perf_counter() - start, 2),
    }
