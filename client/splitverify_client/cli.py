"""`splitverify train`: the client's command, registered into the `splitverify` command through
the entry-point group ``splitverify.commands`` (see ``client/pyproject.toml``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from platformdirs import user_data_path

from splitverify.cli_shared import (PROOF_MODE_HELP, FreshKeysOpt, InsecureDevPtauOpt,
                                    LabelsOpt, MaliciousOpt, OutOpt,
                                    ProversOpt, PtauOpt, RayOpt, VerifyOnChainOpt, console, fail,
                                    finish_session, pool_choice, ptau_policy)
from splitverify.errors import InputError, SplitverifyError

# the client's identity key when `train --identity` is not given: one per user of a machine
DEFAULT_IDENTITY = user_data_path("splitverify") / "client.identity"


def register(app: typer.Typer) -> None:
    app.command()(train)


def train(server: Annotated[str, typer.Option(help="The server's URL, e.g. "
                                              "http://127.0.0.1:8000.")],
          steps: Annotated[int, typer.Option(help="Training steps.")] = 20,
          proof_mode: Annotated[str, typer.Option(help=PROOF_MODE_HELP)] = "every",
          malicious: MaliciousOpt = None,
          chain: Annotated[str, typer.Option(
              help="Log the client's own statements (client_forward, client_backward) on an "
                   "Ethereum ledger: none, embedded, anvil or an http(s):// node URL. Only the "
                   "client's side logs: the remote server's statements are not recorded.")]
          = "none",
          verify_on_chain: VerifyOnChainOpt = False,
          seed: Annotated[int, typer.Option(help="Initial weights' seed.")] = 0,
          retry_seconds: Annotated[float, typer.Option(
              help="How long to keep retrying an unreachable server.")] = 60.0,
          state: Annotated[Optional[Path], typer.Option(
              help="Keep the client's session in this folder (weights, keys, the message in "
                   "flight, the bearer token: keep it private). If it already holds a "
                   "session, that session resumes where it stopped (after a crash, run the "
                   "same command again).")] = None,
          out: OutOpt = Path("splitverify-train"),
          ptau: PtauOpt = None, insecure_dev_ptau: InsecureDevPtauOpt = False,
          client_layers: Annotated[Optional[list[str]], typer.Option(
              help="Train a 'layers' model instead of RefNet: a client layer N_IN:N_OUT or "
                   "N_IN:N_OUT:relu (repeat, in order; with --server-layers). 64 inputs and "
                   "10 classes train on the digits, other sizes on seeded random data.")] = None,
          server_layers: Annotated[Optional[list[str]], typer.Option(
              help="A server layer of the 'layers' model (repeat, in order).")] = None,
          batch: Annotated[int, typer.Option(help="Batch size.")] = 16,
          identity: Annotated[Optional[Path], typer.Option(
              help="The client's identity key file (made there on first use; keep it "
                   "private): it signs every message, and the two-party phase 1 made with a "
                   "server is cached under it and reused by the pair's later sessions. Default: "
                   "client.identity in the user's data folder (splitverify).")] = None,
          model: Annotated[Optional[Path], typer.Option(
              help="Train your own client half: a torch.save-d nn.Sequential of Linear and "
                   "ReLU modules, its weights the starting point (with --server-layers, the "
                   "server half's shape). The trained half is written to OUT/client_model.pt. "
                   "Or a reference model by name: refnet, cnn.")]
          = None,
          data: Annotated[Optional[Path], typer.Option(
              help="Train on this data instead of the digits: FILE.npz (arrays x, y; "
                   "optionally x_test, y_test, for the test accuracy) or FILE.csv (features, "
                   "then the class index, per row).")] = None,
          provers: ProversOpt = 0, ray: RayOpt = None,
          fresh_keys: FreshKeysOpt = False, labels: LabelsOpt = "client") -> None:
    """The client: train RefNet (or a --client-layers/--server-layers model, or your own
    --model) with a splitverify server over HTTP; with --labels server the server holds the
    labels (serve --labels) and the client sends each row's sample id (its row in the digits
    or in --data, whose labels are then not used). Exit codes as demo."""
    from rich.progress import Progress

    from splitverify.identity import Identity
    from splitverify.label_table import label_mode
    from splitverify.ledger.sink import chain_log, check_chain_options, parse_chain
    from splitverify.protocol import ProofMode

    from splitverify.protocol import scenarios

    from .training import run_training

    try:
        client_half, spec = _client_model(model, client_layers, server_layers, batch)
        dataset = None
        if data is not None:
            from splitverify.model.torch_io import load_dataset
            dataset = load_dataset(data)
        backend = parse_chain(chain)
        mode = ProofMode.parse(proof_mode)
        check_chain_options(backend, verify_on_chain, mode)
        scenarios.require_side(malicious, "client")
        pools = pool_choice(provers, ray)
        with Progress(console=console, transient=True) as bar, \
                chain_log(backend, verify_on_chain) as log:
            task = bar.add_task("training", total=steps)
            summary = run_training(server, steps, mode, out,
                                   lambda done: bar.update(task, completed=done),
                                   malicious=malicious, seed=seed, retry_seconds=retry_seconds,
                                   chain=log, state_dir=state,
                                   spec=spec, ptau=ptau_policy(ptau, insecure_dev_ptau),
                                   identity=Identity.load_or_create(identity or DEFAULT_IDENTITY),
                                   model=client_half, dataset=dataset, prover_pool=pools.factory,
                                   fresh_keys=fresh_keys, labels=label_mode(labels))
    except SplitverifyError as exc:
        fail(exc)
    finish_session(summary, out, f"splitverify train against {server}")


def _client_model(model: Optional[Path], client: Optional[list[str]],
                  server: Optional[list[str]], batch: int):
    """(the client half of --model or None, the spec to train)."""
    if model is None:
        return None, _layers_spec(client, server, batch)
    from splitverify.model import NAMED_MODELS, named_spec

    if str(model) in NAMED_MODELS and not model.exists():     # a reference model by name
        if client or server:
            raise InputError(f"--model {model} is a whole reference model: leave out "
                             "--client-layers and --server-layers")
        return None, named_spec(str(model), batch)
    from splitverify.model.torch_io import load_half, split_spec

    if client:
        raise InputError("--model is the client half: leave out --client-layers")
    if not server:
        raise InputError("--model needs --server-layers, the server half's shape (e.g. "
                         "--server-layers 16:3)")
    half = load_half(model)
    return half, split_spec(half, tuple(map(_layer, server)), batch)


def _layers_spec(client: Optional[list[str]], server: Optional[list[str]], batch: int):
    """RefNet at ``batch``, or the 'layers' model of ``--client-layers``/``--server-layers``."""
    from splitverify.model import SplitSpec

    if not client and not server:
        return SplitSpec.refnet(batch=batch)
    if not client or not server:
        raise InputError("a 'layers' model needs both --client-layers and --server-layers")

    return SplitSpec(tuple(map(_layer, client)), tuple(map(_layer, server)), batch)


def _layer(text: str):
    """A Dense layer written N_IN:N_OUT or N_IN:N_OUT:relu."""
    from splitverify.model import Dense

    parts = text.split(":")
    try:
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "relu"):
            raise ValueError
        return Dense(int(parts[0]), int(parts[1]), len(parts) == 3)
    except ValueError:
        raise InputError(f"layer {text!r}: write N_IN:N_OUT or N_IN:N_OUT:relu, e.g. "
                         "4:3:relu") from None
