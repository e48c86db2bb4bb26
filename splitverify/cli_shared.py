"""What the `splitverify` sub-commands share, whichever distribution registers them: the
progress console, the failure exit, the session options (proof mode, tamper scenario, chain,
ptau), the session summary table and the circuits' constraint breakdown."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from .errors import SplitverifyError
from .protocol import scenario_catalog

console = Console(stderr=True)


def fail(exc: SplitverifyError) -> None:
    console.print(f"[bold red]error:[/] {exc}")
    raise typer.Exit(1)


PtauOpt = Annotated[Optional[Path], typer.Option(
    help="A published, prepared powers-of-tau file (e.g. powersOfTau28_hez_final_12.ptau) for "
         "every session's keys; the other party must use the same file. Default: a two-party "
         "phase 1 with each peer (made once per pair of parties, cached, reused).")]
InsecureDevPtauOpt = Annotated[bool, typer.Option(
    "--insecure-dev-ptau",
    help="Use development powers of tau made on this machine (one-machine tests only: whoever "
         "makes it knows τ and can forge proofs).")]


def ptau_policy(ptau: Optional[Path], insecure_dev_ptau: bool):
    from .powersoftau import DEV_REFUSED, PtauPolicy

    policy = PtauPolicy.of_options(ptau, insecure_dev_ptau)
    if policy.origin == "development":
        console.print(f"[yellow]warning:[/] --insecure-dev-ptau: {DEV_REFUSED}")
    return policy


PROOF_MODE_HELP = ("every (every message proven), audit:P (a share P challenged), commit "
                   "(statements without proofs: the blockchain baseline), off, or pipelined:W "
                   "(every message proven in the background, the proof at most W steps late; "
                   "a cheat rolls both parties back).")
MaliciousOpt = Annotated[Optional[str], typer.Option(help=scenario_catalog.help_text())]
ChainOpt = Annotated[str, typer.Option(
    help="Log each statement a party sends on an Ethereum ledger: none, embedded (an "
         "in-process chain), anvil (a local anvil node) or an http(s):// node URL. A fresh "
         "SplitLedger is deployed per run; summary.json gets its gas and seconds.")]
VerifyOnChainOpt = Annotated[bool, typer.Option(
    "--verify-on-chain",
    help="With --chain and --proof-mode every (or pipelined:W, where each statement is "
         "recorded at once and marked verified when its proof lands): record each statement "
         "with its proof "
         "(recordVerified: the chain runs the Groth16 verifier; ~3-5 s per record on the "
         "embedded chain, whose pairing check is pure Python).")]
OutOpt = Annotated[Path, typer.Option(help="Folder for summary.json and transcript.json.")]
ProversOpt = Annotated[int, typer.Option(
    help="Prove in this many worker processes per party (one prover thread each; each loads "
         "the keys once); 0 proves in the party's own thread. With --ray: the number of Ray "
         "actors (0: one per core here).")]
RayOpt = Annotated[Optional[str], typer.Option(
    help="Prove on Ray: auto (join this machine's cluster, or start one) or a cluster's "
         "address. The keys must be on a path every node reads. Needs "
         "pip install 'splitverify[ray]'.")]
FreshKeysOpt = Annotated[bool, typer.Option(
    "--fresh-keys",
    help="Run the key ceremony for this session even where a finished key of an earlier "
         "session between the same two identities could be reused (the default reuses it).")]


LabelsOpt = Annotated[str, typer.Option(
    help="Who holds the labels: client (each batch's labels are sent with it) or server (a "
         "vertical split: the server holds them in a label table it commits to per session; "
         "the client sends each row's sample id, and every ServerStep proof shows its loss "
         "used the committed labels at those ids).")]


def pool_choice(provers: int, ray: Optional[str]):
    """The prover pool of --provers/--ray, checked (and the Ray cluster joined) before any
    session starts: ``make(circuits)`` gives each party its pool."""
    from .pool.registry import PoolChoice

    choice = PoolChoice(provers=provers, ray=ray)
    choice.connect()
    return choice


def finish_session(summary: dict, out: Path, title: str) -> None:
    """summary.json, the summary tables, and exit 3 if tampering was detected."""
    from .session_report import proofs_table, session_table

    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    table = session_table(summary, title)
    if "chain" in summary:
        chain = summary["chain"]
        table.add_row("chain", f"{chain['backend']}: {chain['entries']} entries "
                               f"({chain['verified_entries']} verified on chain) by "
                               f"{' and '.join(chain['logged_by'])}, {chain['gas_total']:,} gas, "
                               f"{chain['seconds_total']} s")
        for refused in chain["refused"]:
            table.add_row("chain refused", f"step {refused['step']} {refused['kind']} of the "
                                           f"{refused['party']}: {refused['reason']}")
    out_console = Console()
    out_console.print(table)
    if summary["proof_mode"] != "off":
        out_console.print(proofs_table(summary))
    console.print(f"summary and transcript written to {out}")
    if summary["detected"]:
        raise typer.Exit(3)


def print_breakdown(breakdown: dict, counts: dict, batch: int = 16) -> None:
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
