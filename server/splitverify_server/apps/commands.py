"""The server distribution's commands — `serve`, and `demo`, `compare` and `bench`, which run
both parties — registered into the `splitverify` command through the entry-point group
``splitverify.commands`` (see ``server/pyproject.toml``)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from splitverify.cli_shared import (PROOF_MODE_HELP, ChainOpt, FreshKeysOpt, InsecureDevPtauOpt,
                                    LabelsOpt, MaliciousOpt,
                                    OutOpt, ProversOpt, PtauOpt, RayOpt, VerifyOnChainOpt, console,
                                    fail, finish_session, pool_choice, print_breakdown,
                                    ptau_policy)
from splitverify.errors import InputError, SplitverifyError
from splitverify.limits import Limits


def register(app: typer.Typer) -> None:
    for command in (demo, serve, bench, compare):
        app.command()(command)


# The main job's defaults (README, "The main job"): two epochs and a bit of RefNet reach ≥ 85 %
# test accuracy; audit:P proves the share P of the messages its receiver challenges.
DEMO_STEPS = 200
DEMO_PROOF_MODE = "audit:0.05"


MODEL_HELP = ("The reference model: refnet (Linear 64→32 + ReLU | Linear 32→10) or cnn (Conv2d "
              "1→4, 3×3, stride 2, padding 1 + ReLU + Flatten | Linear 64→10).")


def demo(steps: Annotated[int, typer.Option(
             help="Training steps (89 make an epoch of the digits).")] = DEMO_STEPS,
         proof_mode: Annotated[str, typer.Option(help=PROOF_MODE_HELP)] = DEMO_PROOF_MODE,
         malicious: MaliciousOpt = None, chain: ChainOpt = "none",
         verify_on_chain: VerifyOnChainOpt = False,
         out: OutOpt = Path("splitverify-demo"),
         provers: ProversOpt = 0, ray: RayOpt = None,
         model: Annotated[str, typer.Option(help=MODEL_HELP)] = "refnet",
         clients: Annotated[int, typer.Option(
             help="Clients training one shared server half at once (each its own client "
                  "half, identity, session, shard of the digits and transcript in "
                  "--out/client-i/; the server's chain in --out/chain.json).")] = 1,
         fresh_keys: FreshKeysOpt = False, labels: LabelsOpt = "client",
         aggregate: Annotated[Optional[str], typer.Option(
             help="every:R — with --clients K ≥ 2: after every R steps of each client the "
                  "server averages the K client halves, proves the average (the Aggregate "
                  "circuit) and publishes the round in chain.json; each client checks it and "
                  "goes on from the average (SplitFed-V1). Proof modes every, audit:P, "
                  "commit.")] = None) -> None:
    """RefNet (or --model cnn) split training over HTTP on loopback: the server in a thread, the client against
    it, every message committed and checked, and proven as the proof mode says; with --chain
    both parties log the statements they send on one ledger. Prints the test accuracy each
    epoch and a summary; writes summary.json, transcript.json and training.png to --out. With
    --clients K > 1, K clients train one shared server half (summary.json, chain.json and each
    client's folder). Exit 0 clean, 3 tampering detected."""
    import time

    from rich.progress import Progress

    from splitverify.ledger.sink import parse_chain
    from splitverify.protocol import ProofMode
    from splitverify.refnet import BATCH, N_TRAIN

    from .demo import run_demo
    from .training_plot import plot_training

    started = time.perf_counter()

    def epoch_line(point: dict) -> None:
        console.print(f"epoch {point['epoch']:g} (step {point['step']}): test accuracy "
                      f"{100 * point['test_accuracy']:.1f} % "
                      f"[dim]({time.perf_counter() - started:.0f} s in)[/]")

    if clients != 1 or aggregate is not None:
        _shared_demo(clients, steps, proof_mode, malicious, chain, verify_on_chain, out,
                     provers, ray, model, labels, aggregate)
        return
    try:
        backend = parse_chain(chain)
        mode = ProofMode.parse(proof_mode)
        pools = pool_choice(provers, ray)
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("training", total=steps)
            summary = run_demo(steps, mode, malicious, out,
                               progress=lambda msg: console.print(f"[dim]{msg}…[/]"),
                               on_step=lambda done: bar.update(task, completed=done),
                               chain=backend, verify_on_chain=verify_on_chain,
                               evaluate_every=N_TRAIN // BATCH, on_evaluate=epoch_line,
                               prover_pool=pools.factory, model=model,
                               fresh_keys=fresh_keys, labels=labels)
        if summary["loss_curve"] or summary["accuracy_curve"]:
            plot_training(summary, out / "training.png")
    except SplitverifyError as exc:
        fail(exc)
    finish_session(summary, out, f"splitverify demo: {'RefNet' if model == 'refnet' else model}, "
                   "split at the cut layer, over HTTP")


def _shared_demo(clients: int, steps: int, proof_mode: str, malicious: str | None,
                 chain: str, verify_on_chain: bool, out: Path, provers: int,
                 ray: str | None, model: str, labels: str, aggregate: str | None = None
                 ) -> None:
    """``demo --clients K``: see :func:`.demo.run_shared_demo`."""
    from rich.progress import Progress
    from rich.table import Table

    from splitverify.model import named_spec
    from splitverify.protocol import ProofMode
    from splitverify.protocol.aggregation import parse_every, require_rounds

    from .demo import run_shared_demo

    try:
        if chain != "none" or verify_on_chain:
            raise InputError("--clients K trains a shared server half without --chain or "
                             "--verify-on-chain (not built for several clients): leave those "
                             "out")
        mode = ProofMode.parse(proof_mode)
        every = 0 if aggregate is None else parse_every(aggregate)
        if aggregate is not None:
            require_rounds(every, clients, mode)
        pools = pool_choice(provers, ray)
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("training", total=clients * steps)
            summary = run_shared_demo(clients, steps, mode, out,
                                      progress=lambda msg: console.print(f"[dim]{msg}…[/]"),
                                      on_step=lambda done: bar.update(task, completed=done),
                                      prover_pool=pools.factory, malicious=malicious,
                                      spec=named_spec(model), labels=labels,
                                      aggregate_every=every)
    except SplitverifyError as exc:
        fail(exc)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    table = Table(title=f"splitverify demo: {clients} clients, one shared server half, "
                        f"proof mode {summary['proof_mode']}, labels held by the "
                        f"{summary['labels']}")
    for column in ("client", "session", "steps", "verdict", "test accuracy", "final loss",
                   "step s"):
        table.add_column(column)
    for row in summary["per_client"]:
        detected = next((d for d in summary["detections"] if d["client"] == row["client"]), None)
        verdict = ("clean" if detected is None else
                   f"TAMPERING at step {detected['step']} ({detected['detected_by']})")
        accuracy = row["test_accuracy"]
        table.add_row(str(row["client"]), row["session_id"][:12] + "…", str(row["steps"]),
                      verdict, "-" if accuracy is None else f"{100 * accuracy:.1f} %",
                      "-" if row["final_loss"] is None else f"{row['final_loss']:.4f}",
                      str(row["step_s"]))
    Console().print(table)
    chain_line = summary["chain"]
    console.print(f"server chain: {chain_line['entries']} ServerSteps, "
                  f"{'one linked sequence' if chain_line['linked'] else 'NOT LINKED'}; "
                  f"{summary['steps']} steps in {summary['train_s']} s "
                  f"({summary['steps_per_s']} steps/s for all clients); audit the whole run: "
                  f"splitverify audit --chain {out / 'chain.json'} "
                  f"{out}/client-*/transcript.json")
    if "rounds" in summary:
        rounds = summary["rounds"]
        console.print(f"client halves averaged every {rounds['every']} steps: "
                      f"{rounds['averaged']} rounds averaged, {rounds['proven']} of them "
                      "proven (the Aggregate circuit); each client went on from "
                      f"{', '.join(map(str, rounds['adopted_per_client']))} averages it "
                      "checked")
    for found in summary["detections"]:
        console.print(f"[red]client {found['client']}[/] (session {found['session_id']}) "
                      f"detected tampering at step {found['step']}: {found['reason']}")
    if summary["detected"] or not chain_line["linked"]:
        raise typer.Exit(3)


_LIMITS = Limits()       # the server's defaults, shown by `serve --help`


def serve(host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
          db: Annotated[Path, typer.Option(help="SQLite file the sessions persist in (a "
                                            "restarted server resumes them).")]
          = Path("splitverify-sessions.db"),
          malicious: MaliciousOpt = None,
          max_body: Annotated[int, typer.Option(help="Largest JSON request, bytes.")]
          = _LIMITS.body_bytes,
          max_key_body: Annotated[int, typer.Option(help="Largest uploaded proving key, bytes.")]
          = _LIMITS.key_bytes,
          max_dim: Annotated[int, typer.Option(help="Largest layer width or batch.")]
          = _LIMITS.dim,
          max_params: Annotated[int, typer.Option(help="Most weights and biases in a model.")]
          = _LIMITS.params,
          max_sessions: Annotated[int, typer.Option(help="Most sessions held (stored ones "
                                                    "included).")] = _LIMITS.sessions,
          max_steps: Annotated[int, typer.Option(help="Most training steps per session.")]
          = _LIMITS.steps,
          max_nesting: Annotated[int, typer.Option(help="Deepest JSON nesting of a request.")]
          = _LIMITS.nesting,
          max_constraints: Annotated[int, typer.Option(
              help="Largest circuit a session's model may need (constraints, by the cost "
                   "model; RefNet's largest is 121,121).")] = _LIMITS.constraints,
          client_sessions: Annotated[int, typer.Option(
              help="Sessions one source address may create per --client-window.")]
          = _LIMITS.client_sessions,
          client_window: Annotated[int, typer.Option(help="Seconds, for --client-sessions.")]
          = _LIMITS.client_window,
          idle_timeout: Annotated[int, typer.Option(
              help="Seconds without a request after which a session and its keys are removed.")]
          = _LIMITS.idle_seconds,
          ptau: PtauOpt = None, insecure_dev_ptau: InsecureDevPtauOpt = False,
          dashboard_token: Annotated[Optional[str], typer.Option(
              help="Require this token for the live dashboard at / (open /?token=TOKEN once); "
                   "without it the dashboard, public values only, is open to anyone who can "
                   "reach the server.")] = None,
          model: Annotated[Optional[Path], typer.Option(
              help="The server's own half: a torch.save-d nn.Sequential of Linear and ReLU "
                   "modules. Every session starts from its weights, which never leave the "
                   "server; a client must ask for these server layers. Default: seeded "
                   "weights of the half the client asks for.")] = None,
          provers: ProversOpt = 0, ray: RayOpt = None,
          shared_model: Annotated[bool, typer.Option(
              help="Train ONE server half with every client's session in turn (SplitFed-V2): "
                   "each ServerStep starts from the shared chain's head; the chain is "
                   "published at GET /chain. Proof modes every, audit:P and commit.")] = False,
          labels: Annotated[Optional[str], typer.Option(
              help="Hold the labels (clients may then train with --labels server, sending "
                   "sample ids): digits (the embedded digits' 1,797 labels, id = row in the "
                   "digits), FILE.npz (array y) or FILE.csv (the class index in the last "
                   "column), the label of id i in row i. Each session's table is committed "
                   "with a fresh salt (one table for --shared-model). Default: none held, "
                   "clients send their labels.")] = None
          ) -> None:
    """Run the splitverify server (FastAPI over uvicorn), with its live dashboard at /."""
    import uvicorn
    from splitverify.protocol import scenarios

    from ..app import create_app

    try:
        scenarios.require_side(malicious, "server")
        limits = Limits(body_bytes=max_body, key_bytes=max_key_body, dim=max_dim,
                        params=max_params, sessions=max_sessions, steps=max_steps,
                        nesting=max_nesting, constraints=max_constraints,
                        client_sessions=client_sessions, client_window=client_window,
                        idle_seconds=idle_timeout)
        server_model = None
        if model is not None:
            from splitverify.model.torch_io import load_half
            server_model = load_half(model)
        held = None
        if labels is not None:
            from splitverify.label_table import held_labels
            held = held_labels(labels)
        application = create_app(db=db, malicious=malicious, limits=limits,
                                 ptau=ptau_policy(ptau, insecure_dev_ptau),
                                 dashboard_token=dashboard_token, server_model=server_model,
                                 prover_pool=pool_choice(provers, ray).factory,
                                 shared_model=shared_model, labels=held)
    except SplitverifyError as exc:
        fail(exc)
    console.print(f"splitverify server on http://{host}:{port} (sessions in {db}); dashboard at "
                  f"http://{host}:{port}/" + ("?token=…" if dashboard_token else "")
                  + ("" if held is None else f"; holds {len(held)} labels ({labels}) for "
                     "sessions with --labels server"))
    uvicorn.run(application, host=host, port=port, log_level="warning")


def bench(quick: Annotated[bool, typer.Option(help="Fewer runs (for CI).")] = False,
          as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout only.")] = False,
          plot: Annotated[Optional[Path], typer.Option(
              help="Also draw the figures (prove, witness, step seconds) to this PNG.")] = None,
          from_json: Annotated[Optional[Path], typer.Option(
              help="Use this saved `bench --json` result instead of running the benchmarks "
                   "(with --plot: redraw a figure).")] = None,
          report: Annotated[Optional[Path], typer.Option(
              help="Also write the result as Markdown to this file: the machine, the targets "
                   "met or missed, ratios, seconds, peers (links the --plot figure).")] = None,
          ray: Annotated[str, typer.Option(
              help="The Ray cluster of the pipeline figure: auto (this machine's, started if "
                   "none runs), a cluster's address, or none to leave Ray out.")] = "auto",
          ) -> None:
    """Benchmarks: prove seconds per backend, verify seconds per verifier, dev setup at 2^16."""
    from .bench import plot_bench, run_bench
    from .bench_report import write_report

    try:
        if from_json is not None:
            try:
                text = from_json.read_text()
                try:
                    result = json.loads(text)          # a saved result, pretty-printed or not
                except ValueError:                     # `bench --json` output after progress lines
                    result = json.loads(text.strip().splitlines()[-1])
                if not isinstance(result, dict):
                    raise ValueError("not a JSON object")
            except (OSError, ValueError, IndexError) as exc:
                raise InputError(f"{from_json} is not the output of `splitverify bench --json`: "
                                 f"{exc}") from exc
        else:
            result = run_bench(quick, progress=lambda msg: console.print(f"[dim]{msg}…[/]"),
                               ray_address=None if ray == "none" else ray)
        if plot is not None:
            console.print(f"[dim]figure written to {plot_bench(result, plot)}[/]")
        if report is not None:
            figure = None if plot is None else os.path.relpath(plot, report.parent)
            try:
                written = write_report(result, report, figure)
            except (KeyError, TypeError) as exc:
                raise InputError(f"the bench result lacks field {exc} (is it the output of "
                                 "this version's `splitverify bench --json`?)") from exc
            console.print(f"[dim]report written to {written}[/]")
    except SplitverifyError as exc:
        fail(exc)
    print_breakdown(result["constraint_breakdown"], result["constraints"])
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
        return
    Console().print_json(json.dumps(result))


def compare(quick: Annotated[bool, typer.Option(
                help="2 honest steps per mode, scenarios up to 2 steps (else 5 and 3).")] = False,
            out: Annotated[Path, typer.Option(help="Folder for compare.md, compare.png and "
                                              "compare.json.")] = Path("splitverify-compare"),
            chain: Annotated[str, typer.Option(
                help="The ledger modes' chain: auto (anvil when its binary is installed, "
                     "else embedded), embedded or anvil.")] = "auto",
            model: Annotated[str, typer.Option(help=MODEL_HELP)] = "refnet") -> None:
    """The blockchain baseline vs zk-SNARK proofs on RefNet (or --model cnn): five modes
    (plain, ledger only, zk, zk + ledger, zk + on-chain verification), each honest and under
    each tamper scenario."""
    from .compare import run_named_comparison

    try:
        report = run_named_comparison(model, quick, out, chain,
                                      progress=lambda msg: console.print(f"[dim]{msg}…[/]"))
    except SplitverifyError as exc:
        fail(exc)
    sys.stdout.write((out / "compare.md").read_text())   # markdown as is (not rich markup)
    console.print(f"compare.md, compare.png and compare.json written to {out} "
                  f"({report['seconds']} s)")
