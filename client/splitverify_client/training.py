"""The client's side of a training session over HTTP (`splitverify train`, and the client of
`splitverify demo`): the session, the data it trains on, the merged transcript and the summary."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from splitverify import refnet
from splitverify.ledger.sink import ChainLog
from splitverify.identity import Identity
from splitverify.circuitgen import KINDS, SplitCircuits
from splitverify.errors import InputError
from splitverify.model import SplitSpec, torch_io
from splitverify.pool import ProverPool
from splitverify.powersoftau import PtauPolicy
from splitverify.protocol import PartyFigures, ProofMode, scenarios, session_summary
from splitverify.protocol.local import loss_per_logit
from splitverify.session_report import proofs_by_kind
from splitverify.transcript import Transcript


def refnet_batches(spec: SplitSpec, shard: tuple[int, int] = (0, 1),
                   sample_ids: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """RefNet's training set in order, batch by batch, epoch after epoch (loaded now, so
    loading is not counted as training time); ``shard`` (i, n): the rows i, i + n, i + 2n, …
    only (client i of n training one shared server half, each on its own rows);
    ``sample_ids``: each batch's rows named by their sample ids (their rows in the digits, as
    the server's ``--labels digits`` table holds them) instead of their labels."""
    index, count = shard
    xtr, ytr, _, _ = refnet.load_digits_split()
    if sample_ids:
        ytr = torch.arange(len(ytr))
    xtr, ytr = xtr[index::count], ytr[index::count]
    if len(xtr) < spec.batch:
        raise InputError(f"shard {index} of {count} holds {len(xtr)} training rows, fewer than "
                         f"a batch of {spec.batch}: use fewer clients")
    q = spec.quant.encode(xtr, data=True)

    def batches():
        while True:
            for i in range(0, len(q) - spec.batch + 1, spec.batch):
                yield q[i:i + spec.batch], ytr[i:i + spec.batch]
    return batches()


def random_batches(spec: SplitSpec, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Seeded random data (features in [0, 1), random labels) for a model the digits do not
    fit."""
    g = torch.Generator().manual_seed(seed)
    while True:
        yield (spec.quant.encode(torch.rand(spec.batch, spec.features, generator=g), data=True),
               torch.randint(0, spec.classes, (spec.batch,), generator=g))


def key_ceremony_summary(reuse: dict, mode: ProofMode) -> dict | None:
    """The summary's record of the session's keys: reused from which earlier session of the
    same two identities, or made by this session's ceremony (and why an offer was not
    taken)."""
    if not mode.proves:
        return None
    reused = {kind: str(session) for kind, session in reuse["reused"].items()}
    return {"reused_from": reused, "ceremony": [kind for kind in KINDS if kind not in reused],
            "declined": {**reuse["not_offered"], **reuse["declined"]}}


def key_ceremony_line(reuse: dict) -> str:
    """The progress line saying whether the key ceremony ran or was reused."""
    reused = reuse["reused"]
    if reused and set(reused) == set(KINDS):
        origins = ", ".join(sorted({f"{str(s)[:12]}…" for s in reused.values()}))
        return ("key ceremony: reused from an earlier session between the same identities "
                f"(session {origins}; no contribution made or checked now)")
    ran = [kind for kind in KINDS if kind not in reused]
    line = ("key ceremony: ran (the server's and the client's phase-2 contributions to the "
            f"{', '.join(ran)} keys, each checked by both sides)")
    if reused:
        line += f"; {', '.join(reused)} reused from an earlier session between the same identities"
    return line


def merged_transcript(client: Transcript, server: Transcript) -> Transcript:
    """The client's record (server steps it verified) and the server's (client messages it
    verified) as one transcript, in protocol order."""
    order = {kind: i for i, kind in enumerate(KINDS)}
    entries = sorted([*client.entries, *server.entries], key=lambda e: (e.step, order[e.kind]))
    return client.model_copy(update={"entries": entries,
                                     "detected": client.detected or server.detected})


def run_training(url: str, steps: int, mode: ProofMode, out: Path,
                 on_step: Callable[[int], None], *, malicious: str | None = None,
                 circuits_for: Callable[[SplitSpec], SplitCircuits] | None = None,
                 backend: str | None = None, seed: int = 0,
                 retry_seconds: float = 60.0, chain: ChainLog | None = None,
                 state_dir: Path | None = None, spec: SplitSpec | None = None,
                 ptau: PtauPolicy | None = None, identity: Identity | None = None,
                 evaluate_every: int = 0,
                 on_evaluate: Callable[[dict], None] = lambda _point: None,
                 model: torch.nn.Sequential | None = None,
                 dataset: torch_io.Dataset | None = None,
                 prover_pool: Callable[[SplitCircuits], ProverPool] | None = None,
                 shard: tuple[int, int] = (0, 1),
                 fresh_keys: bool = False, server_identity: str | None = None,
                 on_keys: Callable[[dict], None] = lambda _reuse: None,
                 labels: str = "client", aggregate_every: int = 0,
                 aggregate_circuits: Callable[[int], SplitCircuits] | None = None,
                 aggregate_ceremony: Callable[[int], dict] | None = None) -> dict:
    """The client's side of a RefNet session against the server at ``url``: train, then
    evaluate through the server's half, write transcript.json (both sides' records merged) and
    return the summary (REFERENCE.md's summary.json). With ``chain`` the client logs its own
    statements on that ledger (the server's are logged only where its sink shares ``chain``:
    the demo). With ``state_dir`` the client's session lives in that folder: a folder that holds
    one resumes it (after a crash, run the same command again). ``spec``: another model than
    RefNet (trained on the digits when it has their 64 features and 10 classes, else on seeded
    random data, and then not evaluated); ``ptau``: the powers of tau this client accepts;
    ``identity``: the client's signing key (default: one per session); ``evaluate_every``: on
    the digits, also the test accuracy every that many steps (the summary's ``accuracy_curve``,
    each point handed to ``on_evaluate`` as it is measured); ``model``: the client's own half
    (``spec``'s client layers, its weights the starting point; the trained half is written to
    ``out``/client_model.pt); ``dataset``: the data to train on instead (evaluated on its test
    part, if it has one); ``prover_pool``: where the client proves (``PoolChoice.make``;
    default: its own thread); ``shard`` (i, n): on the digits, train on every n-th row from
    row i (one of n clients of a shared server half); ``fresh_keys``: run the key ceremony
    even where a finished key of an earlier session with the same server identity could be
    reused; ``server_identity``: the server's address when known (the keys offered for reuse
    are that server's); ``on_keys``: told, once the session's keys are final, what became of
    key reuse (``SplitClient.key_reuse``); ``labels``: 'client' (the batches' labels are sent)
    or 'server' (the server's label table holds them: each batch names its rows by sample id,
    their row in the digits or in ``dataset``, whose labels are then not used);
    ``aggregate_every`` R: the server averages the client halves every R steps
    (``SplitClient(aggregate_every=R)``), whose proofs the client verifies with
    ``aggregate_circuits(K)``'s Aggregate key, checked against its ceremony record
    ``aggregate_ceremony(K)`` when given."""
    from .sdk import SplitClient
    from .state import StateFolder

    if steps < 1:
        raise InputError("--steps must be at least 1")
    spec = spec or SplitSpec.refnet()
    digits = dataset is None and (spec.features, spec.classes) == (64, 10)
    if dataset is not None:
        dataset.check(spec.features, spec.classes, spec.quant)
    if labels == "server" and dataset is None and not digits:
        raise InputError("--labels server names each row by its sample id, rows aligned with "
                         "the server's labels: train on the digits or on --data FILE, not on "
                         "seeded random data")
    malicious = scenarios.played_by(malicious, "client")
    start = time.perf_counter()
    if state_dir is not None and StateFolder(state_dir).exists():
        client = SplitClient.resume(state_dir, circuits_for=circuits_for, backend=backend,
                                    retry_seconds=retry_seconds, url=url, malicious=malicious,
                                    model=model, prover_pool=prover_pool,
                                    aggregate_circuits=aggregate_circuits,
                                    aggregate_ceremony=aggregate_ceremony)
        if client.labels != labels:
            raise InputError(f"--state {state_dir} holds session {client.session_id} with "
                             f"labels {client.labels}: run with --labels {client.labels}, or "
                             "another --state folder for a new session")
        if identity is not None and identity.address != client.identity.address:
            raise InputError(f"--state {state_dir} holds session {client.session_id} of identity "
                             f"{client.identity.address}, not {identity.address}: resume it with "
                             "that identity, or use another --state folder")
        if (str(client.mode), client.seed, client.spec) != (str(mode), seed, spec):
            raise InputError(f"--state {state_dir} holds session {client.session_id} "
                             f"(RefNet: {client.spec == spec}, proof mode {client.mode}, seed "
                             f"{client.seed}): run with those options, or another --state "
                             "folder for a new session")
    else:
        client = SplitClient(url, proof_mode=mode, batch=spec.batch,
                             circuits_for=circuits_for, backend=backend, malicious=malicious,
                             retry_seconds=retry_seconds, state_dir=state_dir, spec=spec,
                             ptau=ptau, identity=identity, model=model,
                             prover_pool=prover_pool, fresh_keys=fresh_keys,
                             server_identity=server_identity, labels=labels,
                             aggregate_every=aggregate_every,
                             aggregate_circuits=aggregate_circuits,
                             aggregate_ceremony=aggregate_ceremony)
        client.create_session(seed=seed)      # with the key ceremony when the server runs one
    on_keys(client.key_reuse)
    session_s = time.perf_counter() - start
    if chain is not None:
        # the client's identity owns its ledger slots (a sink made earlier keeps its account)
        chain.accounts.setdefault("client", client.identity.private_key)
        chain.sink("client").attach(client.party)
    if dataset is not None:
        if labels == "server":          # the rows' ids go instead of their labels
            dataset = torch_io.Dataset(dataset.x, torch.arange(len(dataset.x)), dataset.x_test,
                                       dataset.y_test, dataset.source)
        data = torch_io.epochs_of(dataset, spec.batch)
        test_set = None if dataset.x_test is None else (dataset.x_test, dataset.y_test)
        rows = len(dataset.x)
    else:
        data = (refnet_batches(spec, shard, labels == "server") if digits
                else random_batches(spec, seed))
        test_set = refnet.load_digits_split()[2:] if digits else None
        rows = refnet.N_TRAIN
    curve: list[dict] = []

    def evaluated(done: int) -> dict:
        """The test accuracy after ``done`` steps (both halves as trained so far)."""
        point = {"step": done, "epoch": round(done / (rows // spec.batch), 2),
                 "test_accuracy": round(client.evaluate(*test_set), 4)}
        curve.append(point)
        on_evaluate(point)
        return point

    def stepped(done: int) -> None:
        on_step(done)
        if (evaluate_every and test_set is not None and done % evaluate_every == 0
                and done < steps and client.detected is None):
            evaluated(done)

    if evaluate_every and test_set is not None and client.detected is None:
        evaluated(client.next_step)             # where the curve starts
    start = time.perf_counter()
    result = client.train(data, steps, stepped)
    train_s = time.perf_counter() - start
    server = client.status()
    transcript = merged_transcript(client.party.transcript, client.transcript_of_server())
    out.mkdir(parents=True, exist_ok=True)
    transcript.save(out / "transcript.json")
    det = result.detected
    accuracy = (None if det is not None or test_set is None
                else evaluated(result.steps)["test_accuracy"])
    if model is not None:
        torch.save(client.trained_model(), out / "client_model.pt")
    return {
        **session_summary(result.steps, mode, det, server.losses, spec,
                          PartyFigures.of_party(client.party), PartyFigures.of_status(server)),
        "malicious": malicious, "labels": labels,
        **({"label_table": {"commitment": str(client.label_table.commitment),
                            "depth": client.label_table.depth, "size": client.label_table.size}}
           if client.label_table is not None else {}),
        "test_accuracy": accuracy,
        "accuracy_curve": curve, "loss_curve": [loss_per_logit(loss, spec) for loss in server.losses],
        "proofs_by_kind": proofs_by_kind(transcript),
        "session_s": round(session_s, 2), "train_s": round(train_s, 2), "step_s": round(train_s / max(result.steps, 1), 4),
        "retries": client.retries, "session_id": str(client.session_id), "server": url,
        "rounds_adopted": client.rounds_done,
        "key_ceremony": key_ceremony_summary(client.key_reuse, mode),
        "insecure_dev_setup": mode.proves and any(
            origin["ptau"].get("origin") == "development"
            for origin in transcript.key_origin.values()),
        "ptau": transcript.ptau or {kind: origin["ptau"]
                                    for kind, origin in transcript.key_origin.items()},
        **({"chain": chain.summary()} if chain is not None else {}),
    }
