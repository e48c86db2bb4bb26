"""The `splitverify` command."""

from __future__ import annotations

import inspect
import json
import shutil
import tempfile
import time
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from . import zk
from .cli_shared import console, fail, print_breakdown
from .errors import InputError, InstallError, SplitverifyError

app = typer.Typer(help="Verifiable split learning with Groth16 proofs from Circom circuits.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
zk_app = typer.Typer(help="The Circom/Groth16 toolchain: compile, setup, prove, verify, info.",
                     no_args_is_help=True)
app.add_typer(zk_app, name="zk")
toolchain_app = typer.Typer(help="The pinned npm toolchain (circom2, snarkjs, circomlib, solc, "
                                 "anvil) that compiles circuits and makes keys and proofs.",
                            no_args_is_help=True)
app.add_typer(toolchain_app, name="toolchain")

EXIT_INVALID = 3

SourceArg = Annotated[Path, typer.Argument(help="A .circom file (with a `component main`, "
                                           "or a library file when --template is given).")]
TemplateOpt = Annotated[Optional[str], typer.Option(help="Template to instantiate as main.")]
ParamOpt = Annotated[Optional[list[int]], typer.Option("--param", "-p",
                                                       help="Template parameter (repeat).")]
PublicOpt = Annotated[Optional[list[str]], typer.Option("--public",
                                                        help="Input made public (repeat).")]
IncludeOpt = Annotated[Optional[list[Path]], typer.Option("--include", "-l",
                                                          help="Include folder (repeat).")]


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
        fail(exc)
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
        fail(exc)
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
        fail(exc)
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
        fail(exc)
    for name, ok in results.items():
        console.print(f"{name}: {'[green]valid[/]' if ok else '[red]INVALID[/]'}")
    if not all(results.values()):
        raise typer.Exit(EXIT_INVALID)


@zk_app.command("demo")
def zk_demo(out: Annotated[Path, typer.Option(help="Folder for summary.json.")] = Path("splitverify-demo"),
         ) -> None:
    """Toolchain demo: compile → setup → prove → verify of a 2×2 private matrix product, with
    both provers and all three verifiers (the split-learning demo is `splitverify demo`)."""
    from .circuitgen import circuit_path

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
        fail(exc)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    console.print(f"summary written to {out / 'summary.json'}")
    if not summary["verified"]:
        raise typer.Exit(1)


@toolchain_app.command("install")
def toolchain_install() -> None:
    """Install the pinned toolchain with `npm ci` from the package's own package.json and lock
    into the user cache (once; what a pip-installed splitverify needs, having no checkout)."""
    from .zk.toolchain import find_toolchain
    from .zk.toolchain_install import install_toolchain

    try:
        start = time.perf_counter()
        with console.status("npm ci: the pinned toolchain into the user cache"):
            node_modules, built = install_toolchain()
        found = find_toolchain()           # what every proof will use from now on
    except SplitverifyError as exc:
        fail(exc)
    versions = ", ".join(f"{name} {found.package_version(name)}"
                         for name in ("circom2", "snarkjs", "circomlib", "solc"))
    done = f"installed in {time.perf_counter() - start:.0f} s" if built else "already installed"
    console.print(f"toolchain {done}: {versions} in {node_modules}")
    if found.node_modules != node_modules.resolve():
        console.print(f"[yellow]note:[/] {found.node_modules} is found first and used "
                      "(a checkout's node_modules or $SPLITVERIFY_NODE_MODULES)")


@app.command()
def audit(transcripts: Annotated[list[Path], typer.Argument(
              help="A session's transcript.json (with --chain: every client's).")],
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
          chain: Annotated[Optional[Path], typer.Option(
              help="A shared server half's chain (GET /chain, demo --clients' chain.json): "
                   "audit it with the transcripts of all its clients.")] = None,
          ) -> None:
    """Establish the keys from the recorded ceremony, then re-verify every signature, proof and
    the chain of commitments of a transcript, offline; with --chain, a shared server half's
    chain against its clients' transcripts (each audited, each chain entry one of their
    ServerSteps, linked, none missing). Exit 0 if valid, 3 if not (with the first bad step or
    key and why)."""
    from .identity import check_address
    from .shared_chain import audit_chain, load_chain
    from .transcript import Transcript
    from .transcript import audit as run_audit

    try:
        if verifier not in zk.VERIFIER_NAMES:
            raise InputError(f"unknown verifier {verifier!r}; one of {list(zk.VERIFIER_NAMES)}")
        if chain is not None:
            if client is not None or server is not None:
                raise InputError("--client/--server name one session's parties; with --chain "
                                 "the transcripts are of several clients (their server must be "
                                 "one): audit a transcript alone to pin its parties")
            found = audit_chain(load_chain(chain), [Transcript.load(t) for t in transcripts],
                                verifier, tuple(ptau or ()))
            if found.valid:
                console.print(f"[green]valid[/]: {found.established}", soft_wrap=True)
                return
            console.print(f"[red]invalid[/]: {found.reason}", soft_wrap=True)
            raise typer.Exit(3)
        if len(transcripts) != 1:
            raise InputError(f"{len(transcripts)} transcripts given: audit one, or give the "
                             "shared server half's chain (--chain CHAIN.json) with all of them")
        expected = {party: check_address(address, f"--{party}") for party, address
                    in (("client", client), ("server", server)) if address is not None}
        report = run_audit(Transcript.load(transcripts[0]), verifier, tuple(ptau or ()),
                           expected)
    except SplitverifyError as exc:
        fail(exc)
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
    from .circuitgen import CIRCUITS_DIR, KINDS, SplitCircuits, generator
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
        fail(exc)
    console.print(f"[dim]{generator.describe(spec)}; "
                  f"{'compiled' if compile_them else 'cost model (equal to the compiled counts)'}[/]")
    print_breakdown(breakdown, counts, batch)


COMMAND_GROUP = "splitverify.commands"
# the order `splitverify --help` lists the commands in, whichever distribution registers them
HELP_ORDER = ("demo", "serve", "train", "audit", "circuits", "bench", "compare")


def _command_name(info: typer.models.CommandInfo) -> str:
    return info.name or info.callback.__name__.replace("_", "-")


def register_installed_commands() -> None:
    """Add the commands of every installed distribution that registers a callable taking the
    app in the entry-point group ``splitverify.commands`` (the client's ``train``; the server's
    ``serve``, ``demo``, ``compare``, ``bench``): the core depends on none of them."""
    for entry in entry_points(group=COMMAND_GROUP):
        try:
            register = entry.load()
        except ImportError as exc:
            raise InstallError(f"the commands of {entry.value} (entry point {entry.name!r} in "
                               f"{COMMAND_GROUP}) do not import: {exc}; reinstall "
                               "(`bash scripts/setup.sh` in a checkout)") from exc
        register(app)
    names = [_command_name(info) for info in app.registered_commands]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise InstallError(f"command(s) {twice} registered twice in {COMMAND_GROUP}: two "
                           "installed distributions claim them; uninstall the stale one")
    app.registered_commands.sort(key=lambda info: HELP_ORDER.index(_command_name(info))
                                 if _command_name(info) in HELP_ORDER else len(HELP_ORDER))
    for commands in (app.registered_commands, *(group.typer_instance.registered_commands
                                                for group in app.registered_groups)):
        for info in commands:
            info.help = unwrapped_help(info.help or inspect.getdoc(info.callback) or "")


def unwrapped_help(text: str) -> str:
    """A docstring as one line per paragraph: rich wraps help text to the terminal itself, so a
    line break kept from the source would cut a sentence in the middle."""
    return "\n\n".join(" ".join(paragraph.split())
                        for paragraph in inspect.cleandoc(text).split("\n\n"))


register_installed_commands()


if __name__ == "__main__":  # pragma: no cover
    app()
