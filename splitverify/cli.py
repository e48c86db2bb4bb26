"""The `splitverify` command."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from platformdirs import user_data_path
from rich.console import Console
from rich.table import Table

from . import zk
from .errors import InputError, SplitverifyError
from .limits import Limits
from .protocol import ProofMode, scenarios

app = typer.Typer(help="Verifiable split learning with Groth16 proofs from Circom circuits.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
zk_app = typer.Typer(help="The Circom/Groth16 toolchain: compile, setup, prove, verify, info.",
                     no_args_is_help=True)
app.add_typer(zk_app, name="zk")
console = Console(stderr=True)

EXIT_INVALID = 3
# the client's identity key when `train --identity` is not given: one per user of a machine
DEFAULT_IDENTITY = user_data_path("splitverify") / "client.identity"

SourceArg = Annotated[Path, typer.Argument(help="A .circom file (with a `component main`, "
                                           "or a library file when --template is given).")]
TemplateOpt = Annotated[Optional[str], typer.Option(help="Template to instantiate as main.")]
ParamOpt = Annotated[Optional[list[int]], typer.Option("--param", "-p",
                                                       help="Template parameter (repeat).")]
PublicOpt = Annotated[Optional[list[str]], typer.Option("--public",
                                                        help="Input made public (repeat).")]
IncludeOpt = Annotated[Optional[list[Path]], typer.Option("--include", "-l",
                                                          help="Include folder (repeat).")]


def _fail(exc: SplitverifyError) -> None:
    console.print(f"[bold red]error:[/] {exc}")
    raise typer.Exit(1)


def _compile(source, template, param, public, include) -> zk.CompiledCircuit:
    return zk.compile_circuit(source, template=template, params=tuple(param or ()),
                              public=tuple(public or ()), include_dirs=tuple(include or ()))


def _info_table(circuit: zk.CompiledCircuit) -> Table:
    info = circuit.info
    table = Table(title=f"circuit {circuit.name}", show_header=False)
    for label, value in [("constraints", info.n_constraints), ("wires", info.n_wires),
                         ("public signals", info.n_public),
                         ("  of which outputs", info.n_public_outputs),
                         ("private inputs", info.n_private_inputs),
                         ("ptau power needed", info.ptau_power),
                         ("inputs", ", ".join(f"{k}{list(v) if v else ''}"
                                              for k, v in circuit.input_shapes.items())),
                         ("artifacts", str(circuit.directory)),
                         ("cache", str(zk.ArtifactCache().root))]:
        table.add_row(label, str(value))
    return table


@zk_app.command("compile")
def zk_compile(source: SourceArg, template: TemplateOpt = None, param: ParamOpt = None,
               public: PublicOpt = None, include: IncludeOpt = None) -> None:
    """Compile a circuit to r1cs/wasm/sym (cached by content)."""
    try:
        start = time.perf_counter()
        circuit = _compile(source, template, param, public, include)
    except SplitverifyError as exc:
        _fail(exc)
    Console().print(_info_table(circuit))
    console.print(f"compiled in {time.perf_counter() - start:.2f} s")


@zk_app.command("info")
def zk_info(source: SourceArg, template: TemplateOpt = None, param: ParamOpt = None,
            public: PublicOpt = None, include: IncludeOpt = None) -> None:
    """Constraints, wires, public signals, the ptau power needed, and cache paths."""
    zk_compile(source, template, param, public, include)


@zk_app.command("setup")
def zk_setup(source: SourceArg, out: Annotated[Path, typer.Option(help="Folder for the keys.")],
             template: TemplateOpt = None, param: ParamOpt = None, public: PublicOpt = None,
             include: IncludeOpt = None,
             ptau: Annotated[Optional[Path], typer.Option(
                 help="A prepared powers-of-tau file (default: a development one, insecure).")] = None,
             contributor: Annotated[Optional[list[str]], typer.Option(
                 help="Phase-2 contributor name (repeat; default: one 'splitverify').")] = None,
             beacon: Annotated[Optional[str], typer.Option(help="Final random beacon (hex).")] = None,
             ) -> None:
    """Trusted setup: initial key, phase-2 contributions, optional beacon, verification."""
    try:
        circuit = _compile(source, template, param, public, include)
        ptau_file = zk.PtauFile.open(ptau) if ptau else None
        start = zk.initial_key(circuit, ptau_file)
        ceremony = zk.Ceremony(start, out / "ceremony", ptau_file)
        for name in contributor or ["splitverify"]:
            ceremony.contribute(name, native=True)
        if beacon:
            ceremony.beacon(beacon)
        # native check against our own initial key: `snarkjs zkey verify` rejects development
        # keys from 2^15 constraints up (its H-point hash reads past the ptau's τG1 section)
        zk.phase2.verify_chain(ceremony.key, start)
        key = ceremony.key
        out.mkdir(parents=True, exist_ok=True)
        final = out / f"{circuit.name}.zkey"
        shutil.copyfile(key.zkey, final)
        zk.export_verification_key(key).save_json(out / "verification_key.json")
        (out / "setup.json").write_text(json.dumps({
            "source": str(source.resolve()), "template": template, "params": list(param or []),
            "public": list(public or []), "include": [str(p.resolve()) for p in include or []],
            "zkey": final.name, "zkey_blake2b": key.blake2b, **key.metadata()}, indent=2))
    except SplitverifyError as exc:
        _fail(exc)
    if key.insecure:
        console.print("[yellow]warning:[/] development ptau: INSECURE FOR PRODUCTION")
    console.print(f"setup written to {out} ({len(key.transcript)} contribution(s), verified)")


def _load_setup(setup_dir: Path) -> zk.CircuitKey:
    meta_path = setup_dir / "setup.json"
    if not meta_path.is_file():
        raise InputError(
            f"{setup_dir} has no setup.json: run `splitverify zk setup ... --out {setup_dir}`")
    meta = json.loads(meta_path.read_text())
    circuit = _compile(Path(meta["source"]), meta["template"], meta["params"], meta["public"],
                       [Path(p) for p in meta["include"]])
    key = zk.CircuitKey(setup_dir / meta["zkey"], circuit, meta["ptau_blake2b"],
                        meta["insecure_dev_setup"])
    key.check_integrity(meta["zkey_blake2b"])
    return key


@zk_app.command("prove")
def zk_prove(setup_dir: Annotated[Path, typer.Argument(help="Folder written by `zk setup`.")],
             inputs: Annotated[Path, typer.Argument(help="JSON object of input signals.")],
             proof_out: Annotated[Path, typer.Option("--proof")] = Path("proof.json"),
             public_out: Annotated[Path, typer.Option("--public")] = Path("public.json"),
             backend: Annotated[str, typer.Option(help="mcl, native or snarkjs")] = "mcl"
             ) -> None:
    """Compute the witness and a Groth16 proof."""
    try:
        key = _load_setup(setup_dir)
        try:
            values = json.loads(inputs.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read inputs from {inputs}: {exc}") from exc
        start = time.perf_counter()
        proof, public = zk.prove(key, values, backend)
    except SplitverifyError as exc:
        _fail(exc)
    proof.save_json(proof_out)
    public.save_json(public_out)
    console.print(f"proof written to {proof_out} ({backend}, {time.perf_counter() - start:.2f} s)")


@zk_app.command("verify")
def zk_verify(vk: Path, public: Path, proof: Path,
              verifier: Annotated[str, typer.Option(
                  help="native, snarkjs, py_ecc, or all")] = "native") -> None:
    """Verify a proof. Exit 0 if valid, 3 if not."""
    names = zk.VERIFIER_NAMES if verifier == "all" else (verifier,)
    try:
        key = zk.VerificationKey.load_json(vk)
        pub = zk.PublicSignals.load_json(public)
        prf = zk.Proof.load_json(proof)
        results = {name: zk.get_verifier(name).verify(key, prf, pub) for name in names}
    except SplitverifyError as exc:
        _fail(exc)
    for name, ok in results.items():
        console.print(f"{name}: {'[green]valid[/]' if ok else '[red]INVALID[/]'}")
    if not all(results.values()):
        raise typer.Exit(EXIT_INVALID)


PtauOpt = Annotated[Optional[Path], typer.Option(
    help="A published, prepared powers-of-tau file (e.g. powersOfTau28_hez_final_12.ptau) for "
         "every session's keys; the other party must use the same file. Default: a two-party "
         "phase 1 with each peer (made once per pair of parties, cached, reused).")]
InsecureDevPtauOpt = Annotated[bool, typer.Option(
    "--insecure-dev-ptau",
    help="Use development powers of tau made on this machine (one-machine tests only: whoever "
         "makes it knows τ and can forge proofs).")]


def _ptau_policy(ptau: Optional[Path], insecure_dev_ptau: bool):
    from .powersoftau import DEV_REFUSED, PtauPolicy

    policy = PtauPolicy.of_options(ptau, insecure_dev_ptau)
    if policy.origin == "development":
        console.print(f"[yellow]warning:[/] --insecure-dev-ptau: {DEV_REFUSED}")
    return policy


PROOF_MODE_HELP = ("every (every message proven), audit:P (a share P challenged), commit "
                   "(statements without proofs: the blockchain baseline) or off.")
MaliciousOpt = Annotated[Optional[str], typer.Option(help=scenarios.help_text())]
ChainOpt = Annotated[str, typer.Option(
    help="Log each statement a party sends on an Ethereum ledger: none, embedded (an "
         "in-process chain), anvil (a local anvil node) or an http(s):// node URL. A fresh "
         "SplitLedger is deployed per run; summary.json gets its gas and seconds.")]
VerifyOnChainOpt = Annotated[bool, typer.Option(
    "--verify-on-chain",
    help="With --chain and --proof-mode every: record each statement with its proof "
         "(recordVerified: the chain runs the Groth16 verifier; ~3-5 s per record on the "
         "embedded chain, whose pairing check is pure Python).")]
OutOpt = Annotated[Path, typer.Option(help="Folder for summary.json and transcript.json.")]


def _finish_session(summary: dict, out: Path, title: str) -> None:
    """summary.json, the summary table, and exit 3 if tampering was detected."""
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    table = Table(title=title)
    table.add_column("")
    table.add_column("")
    for key in ("steps", "proof_mode", "final_loss", "test_accuracy", "proofs_verified",
                "prove_s", "verify_s", "setup_s", "train_s", "step_s", "detected",
                "detected_step", "detected_by", "reason"):
        if key in summary:
            table.add_row(key, json.dumps(summary[key]))
    if "chain" in summary:
        chain = summary["chain"]
        table.add_row("chain", f"{chain['backend']}: {chain['entries']} entries "
                               f"({chain['verified_entries']} verified on chain) by "
                               f"{' and '.join(chain['logged_by'])}, {chain['gas_total']:,} gas, "
                               f"{chain['seconds_total']} s")
        for refused in chain["refused"]:
            table.add_row("chain refused", f"step {refused['step']} {refused['kind']} of the "
                                           f"{refused['party']}: {refused['reason']}")
    Console().print(table)
    console.print(f"summary and transcript written to {out}")
    if summary["detected"]:
        raise typer.Exit(3)


@app.command()
def demo(steps: Annotated[int, typer.Option(help="Training steps.")] = 20,
         proof_mode: Annotated[str, typer.Option(help=PROOF_MODE_HELP)] = "every",
         malicious: MaliciousOpt = None, chain: ChainOpt = "none",
         verify_on_chain: VerifyOnChainOpt = False,
         out: OutOpt = Path("splitverify-demo")) -> None:
    """RefNet split training over HTTP on loopback: the server in a thread, the client against
    it, every message verified as the proof mode says; with --chain both parties log the
    statements they send on one ledger. Exit 0 clean, 3 tampering detected."""
    from rich.progress import Progress

    from .chain import parse_chain
    from .demo import run_demo

    try:
        backend = parse_chain(chain)
        mode = ProofMode.parse(proof_mode)
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("training", total=steps)
            summary = run_demo(steps, mode, malicious, out,
                               progress=lambda msg: console.print(f"[dim]{msg}…[/]"),
                               on_step=lambda done: bar.update(task, completed=done),
                               chain=backend, verify_on_chain=verify_on_chain)
    except SplitverifyError as exc:
        _fail(exc)
    _finish_session(summary, out, "splitverify demo: RefNet, split at the cut layer, over HTTP")


_LIMITS = Limits()       # the server's defaults, shown by `serve --help`


@app.command()
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
                   "model; RefNet's largest is 150,329).")] = _LIMITS.constraints,
          client_sessions: Annotated[int, typer.Option(
              help="Sessions one source address may create per --client-window.")]
          = _LIMITS.client_sessions,
          client_window: Annotated[int, typer.Option(help="Seconds, for --client-sessions.")]
          = _LIMITS.client_window,
          idle_timeout: Annotated[int, typer.Option(
              help="Seconds without a request after which a session and its keys are removed.")]
          = _LIMITS.idle_seconds,
          ptau: PtauOpt = None, insecure_dev_ptau: InsecureDevPtauOpt = False) -> None:
    """Run the splitverify server (FastAPI over uvicorn)."""
    import uvicorn

    from .server import create_app

    try:
        scenarios.require_side(malicious, "server")
        limits = Limits(body_bytes=max_body, key_bytes=max_key_body, dim=max_dim,
                        params=max_params, sessions=max_sessions, steps=max_steps,
                        nesting=max_nesting, constraints=max_constraints,
                        client_sessions=client_sessions, client_window=client_window,
                        idle_seconds=idle_timeout)
        application = create_app(db=db, malicious=malicious, limits=limits,
                                 ptau=_ptau_policy(ptau, insecure_dev_ptau))
    except SplitverifyError as exc:
        _fail(exc)
    console.print(f"splitverify server on http://{host}:{port} (sessions in {db})")
    uvicorn.run(application, host=host, port=port, log_level="warning")


@app.command()
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
                   "client.identity in the user's data folder (splitverify).")] = None) -> None:
    """The client: train RefNet (or a --client-layers/--server-layers model) with a
    splitverify server over HTTP. Exit codes as demo."""
    from rich.progress import Progress

    from .chain import chain_log, check_chain_options, parse_chain
    from .demo import run_training
    from .identity import Identity

    try:
        backend = parse_chain(chain)
        mode = ProofMode.parse(proof_mode)
        check_chain_options(backend, verify_on_chain, mode)
        scenarios.require_side(malicious, "client")
        with Progress(console=console, transient=True) as bar, \
                chain_log(backend, verify_on_chain) as log:
            task = bar.add_task("training", total=steps)
            summary = run_training(server, steps, mode, out,
                                   lambda done: bar.update(task, completed=done),
                                   malicious=malicious, seed=seed, retry_seconds=retry_seconds,
                                   chain=log, state_dir=state,
                                   spec=_layers_spec(client_layers, server_layers, batch),
                                   ptau=_ptau_policy(ptau, insecure_dev_ptau),
                                   identity=Identity.load_or_create(identity or DEFAULT_IDENTITY))
    except SplitverifyError as exc:
        _fail(exc)
    _finish_session(summary, out, f"splitverify train against {server}")


def _layers_spec(client: Optional[list[str]], server: Optional[list[str]], batch: int):
    """RefNet at ``batch``, or the 'layers' model of ``--client-layers``/``--server-layers``."""
    from .model import Dense, SplitSpec

    if not client and not server:
        return SplitSpec.refnet(batch=batch)
    if not client or not server:
        raise InputError("a 'layers' model needs both --client-layers and --server-layers")

    def layer(text: str) -> Dense:
        parts = text.split(":")
        try:
            if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "relu"):
                raise ValueError
            return Dense(int(parts[0]), int(parts[1]), len(parts) == 3)
        except ValueError:
            raise InputError(f"layer {text!r}: write N_IN:N_OUT or N_IN:N_OUT:relu, e.g. "
                             "4:3:relu") from None
    return SplitSpec(tuple(map(layer, client)), tuple(map(layer, server)), batch)


@zk_app.command("demo")
def zk_demo(out: Annotated[Path, typer.Option(help="Folder for summary.json.")] = Path("splitverify-demo"),
         ) -> None:
    """Toolchain demo: compile → setup → prove → verify of a 2×2 private matrix product, with
    both provers and all three verifiers (the split-learning demo is `splitverify demo`)."""
    from .circuits import circuit_path

    summary: dict = {"circuit": "MatMul(2,2,2)", "verified": False}
    try:
        t0 = time.perf_counter()
        with console.status("compiling"):
            circuit = zk.compile_circuit(circuit_path("matmul.circom"), template="MatMul",
                                         params=(2, 2, 2))
        with console.status("trusted setup (dev ptau + client and server contributions)"):
            key = zk.setup(circuit, contributors=("client", "server"),
                           workdir=tempfile.mkdtemp(prefix="sv-demo-"))
            vk = zk.export_verification_key(key)
        inputs = {"a": [[1, -2], [3, 4]], "b": [[5, 6], [-7, 8]]}
        table = Table(title="splitverify toolchain demo: C = A·B, A and B private")
        for col in ("prover", "prove s", *zk.VERIFIER_NAMES):
            table.add_column(col)
        all_ok = True
        for backend in ("snarkjs", "native", "mcl"):
            with console.status(f"proving with {backend}"):
                start = time.perf_counter()
                proof, public = zk.prove(key, inputs, backend)
                prove_s = time.perf_counter() - start
            row = [backend, f"{prove_s:.3f}"]
            for name in zk.VERIFIER_NAMES:
                start = time.perf_counter()
                ok = zk.verify(vk, proof, public, name)
                all_ok &= ok
                row.append(f"{'ok' if ok else 'FAIL'} {time.perf_counter() - start:.3f}s")
            table.add_row(*row)
        Console().print(table)
        summary.update(verified=all_ok, seconds=round(time.perf_counter() - t0, 3),
                       public_signals=public.to_snarkjs(), insecure_dev_setup=key.insecure,
                       constraints=circuit.info.n_constraints)
    except SplitverifyError as exc:
        _fail(exc)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    console.print(f"summary written to {out / 'summary.json'}")
    if not summary["verified"]:
        raise typer.Exit(1)


@app.command()
def audit(transcript: Annotated[Path, typer.Argument(help="A session's transcript.json.")],
          verifier: Annotated[str, typer.Option(help="native, snarkjs or py_ecc.")] = "native",
          ptau: Annotated[Optional[list[Path]], typer.Option(
              help="The ptau the keys were made from (checked against the sha256 the "
                   "transcript records; repeat for circuits with their own): the initial keys "
                   "are re-derived from it. Without it the keys are checked for consistency "
                   "only.")] = None,
          client: Annotated[Optional[str], typer.Option(
              help="The client's address, if you know it: the transcript must pin it.")] = None,
          server: Annotated[Optional[str], typer.Option(
              help="The server's address, if you know it: the transcript must pin it.")] = None,
          ) -> None:
    """Establish the keys from the recorded ceremony, then re-verify every signature, proof and
    the chain of commitments of a transcript, offline. Exit 0 if valid, 3 if not (with the
    first bad step or key and why)."""
    from .identity import check_address
    from .transcript import Transcript
    from .transcript import audit as run_audit

    try:
        if verifier not in zk.VERIFIER_NAMES:
            raise InputError(f"unknown verifier {verifier!r}; one of {list(zk.VERIFIER_NAMES)}")
        expected = {party: check_address(address, f"--{party}") for party, address
                    in (("client", client), ("server", server)) if address is not None}
        report = run_audit(Transcript.load(transcript), verifier, tuple(ptau or ()), expected)
    except SplitverifyError as exc:
        _fail(exc)
    if report.valid:
        console.print(f"[green]valid[/]: {report.established}; {report.proofs_verified} proofs "
                      "verified, the commitment chain holds", soft_wrap=True)
        return
    where = f" at step {report.bad_step}" if report.bad_step is not None else ""
    console.print(f"[red]invalid[/]{where}: {report.reason}", soft_wrap=True)
    raise typer.Exit(3)


@app.command()
def circuits(out: Annotated[Optional[Path], typer.Option(
                 help="Write the generated .circom sources (and the templates) here.")] = None,
             batch: Annotated[int, typer.Option(help="Batch size of the circuits.")] = 16,
             compile_them: Annotated[bool, typer.Option(
                 "--compile", help="Compile and print the compiled counts too.")] = False,
             ) -> None:
    """RefNet's three split-learning circuits: constraints by what they do; optionally write
    their Circom sources or compile them."""
    from .circuits import CIRCUITS_DIR, KINDS, SplitCircuits, generator
    from .model import SplitSpec

    try:
        spec = SplitSpec.refnet(batch=batch)
        split = SplitCircuits(spec)
        breakdown, counts = {}, {}
        for kind in KINDS:
            breakdown[kind] = generator.cost_breakdown(spec, kind)
            model_total = sum(breakdown[kind].values())
            counts[kind] = split.circuit(kind).info.n_constraints if compile_them else model_total
            breakdown[kind]["other"] = counts[kind] - model_total
        counts["dense_naive"] = generator.dense_naive_cost(batch, 64, 32)
        counts["dense_optimized"] = generator.dense_optimized_cost(batch, 64, 32)
        counts["dense_optimized_over_naive"] = round(counts["dense_optimized"]
                                                     / counts["dense_naive"], 4)
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            for kind in KINDS:
                (out / f"{kind}.circom").write_text(split.source(kind))
            for template in sorted(CIRCUITS_DIR.glob("*.circom")):
                shutil.copyfile(template, out / template.name)
            console.print(f"wrote the three circuits and the templates to {out} (circomlib's "
                          "bitify, comparators and poseidon are included from circomlib)")
    except SplitverifyError as exc:
        _fail(exc)
    console.print(f"[dim]{generator.describe(spec)}; "
                  f"{'compiled' if compile_them else 'cost model (equal to the compiled counts)'}[/]")
    _print_breakdown(breakdown, counts, batch)


@app.command()
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
            result = run_bench(quick, progress=lambda msg: console.print(f"[dim]{msg}…[/]"))
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
        _fail(exc)
    _print_breakdown(result["constraint_breakdown"], result["constraints"])
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
        return
    Console().print_json(json.dumps(result))


@app.command()
def compare(quick: Annotated[bool, typer.Option(
                help="2 honest steps per mode, scenarios up to 2 steps (else 5 and 3).")] = False,
            out: Annotated[Path, typer.Option(help="Folder for compare.md, compare.png and "
                                              "compare.json.")] = Path("splitverify-compare"),
            chain: Annotated[str, typer.Option(
                help="The ledger modes' chain: auto (anvil when its binary is installed, "
                     "else embedded), embedded or anvil.")] = "auto") -> None:
    """The blockchain baseline vs zk-SNARK proofs on RefNet: five modes (plain, ledger only,
    zk, zk + ledger, zk + on-chain verification), each honest and under each tamper scenario."""
    from .compare import run_refnet_comparison

    try:
        report = run_refnet_comparison(quick, out, chain,
                                       progress=lambda msg: console.print(f"[dim]{msg}…[/]"))
    except SplitverifyError as exc:
        _fail(exc)
    sys.stdout.write((out / "compare.md").read_text())   # markdown as is (not rich markup)
    console.print(f"compare.md, compare.png and compare.json written to {out} "
                  f"({report['seconds']} s)")


def _print_breakdown(breakdown: dict, counts: dict, batch: int = 16) -> None:
    """Per circuit: where the constraints go (to the progress console, so --json stays clean)."""
    console.print("[bold]RefNet circuits: constraints by what they do[/]")
    for kind, row in breakdown.items():
        total = counts[kind]
        parts = ", ".join(f"{name.replace('_', ' ')} {row[name]:,} ({100 * row[name] / total:.0f}%)"
                          for name in ("products", "range_checks", "commitments", "transcript",
                                       "other"))
        console.print(f"  {kind}: {total:,} = {parts}")
    console.print(f"  dense 64→32, batch {batch}: naive {counts['dense_naive']:,}, optimized "
                  f"{counts['dense_optimized']:,} ({counts['dense_optimized_over_naive']}×)")


if __name__ == "__main__":  # pragma: no cover
    app()
