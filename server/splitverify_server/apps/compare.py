"""`splitverify compare`: the blockchain baseline against zk-SNARK proofs, on RefNet or the
reference CNN (``--model``).

The same steps run under five modes (``MODES``): plain split learning, a ledger that records
every statement (commitments only: the blockchain baseline), proofs verified by the other party,
proofs plus the ledger, and proofs verified by the chain itself. Each mode runs honestly (its
costs: wall time per step, prove and verify seconds, gas, bytes on the wire) and under each
tamper scenario of REFERENCE.md (detected or not, at which step, by whom; what the chain
refused). Both parties run in this process (``run_local``: the same messages and checks as over
HTTP, without the transport).

The point the table makes: a ledger keeps what each party *claimed*; a cheater who commits to
what it sends (a wrong gradient, poisoned activations) is recorded and never caught. Only a
proof ties a commitment to the computation.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import torch

from splitverify.ledger.sink import ChainLog, deploy_verifiers, deployed_ledger
from splitverify.circuitgen import KINDS, SplitCircuits
from splitverify.circuitgen.generator import describe
from splitverify.errors import InputError, ToolchainError
from splitverify.ledger import Ledger
from splitverify.model import SplitSpec, named_spec
from splitverify.protocol import ProofMode, StopRecord, run_local, scenarios as tamper_scenarios
from splitverify.transcript import Transcript

from .measure import keyed_circuits, local_parties, machine
from .units import seconds_text

Batches = Callable[[], Iterator[tuple[torch.Tensor, torch.Tensor]]]
Progress = Callable[[str], None]

CHAINS = ("auto", "embedded", "anvil")
QUICK_STEPS, QUICK_SCENARIO_STEPS = 2, 2
FULL_STEPS, FULL_SCENARIO_STEPS = 5, 3


@dataclass(frozen=True)
class Mode:
    name: str
    proof_mode: ProofMode        # off | commit | every
    ledger: str | None           # None, "record" (commitments) or "verify" (recordVerified)
    what: str                    # one line for the reader

    @property
    def proves(self) -> bool:
        return self.proof_mode.proves


OFF, COMMIT, EVERY = (ProofMode.parse(text) for text in ("off", "commit", "every"))
MODES = (
    Mode("plain", OFF, None, "split learning, nothing committed or proven"),
    Mode("ledger only", COMMIT, "record",
         "each party records its commitments on chain; nothing is proven (the blockchain "
         "baseline)"),
    Mode("zk", EVERY, None, "every message carries a Groth16 proof, verified by the other party"),
    Mode("zk + ledger", EVERY, "record",
         "zk, and each party records its commitments on chain"),
    Mode("zk + on-chain verify", EVERY, "verify",
         "zk, and each party records its statement with its proof: the chain verifies it "
         "(recordVerified)"),
)


@dataclass
class RunOutcome:
    """One session of one mode: honest or one scenario."""
    scenario: str | None
    steps_run: int                          # steps begun (a detected run stops mid-step)
    steps_done: int
    step_seconds: list[float]
    prove_s: dict[str, float]               # mean seconds per proof kind
    verify_s: dict[str, float]
    bytes_sent: int                         # JSON sizes of the messages handed over
    detected: StopRecord | None
    chain: dict | None                      # entries, gas, seconds, refused (None: no ledger)

    @property
    def detected_step(self) -> int | None:
        return self.detected.detected_step if self.detected else None


def choose_chain(requested: str) -> tuple[str, str]:
    """The chain the ledger modes use, and why. ``auto``: anvil when its binary exists (its
    pairing precompile is native), else the embedded chain (pure-Python pairing: seconds per
    on-chain verification)."""
    if requested != "auto":
        return requested, "chosen with --chain"
    from splitverify.ledger.anvil import find_anvil
    try:
        find_anvil()
    except ToolchainError as exc:
        return "embedded", f"anvil is not available: {exc}"
    return "anvil", "anvil's binary is installed; its pairing precompile is native"


def run_once(mode: Mode, scenario: str | None, steps: int, spec: SplitSpec,
             circuits: SplitCircuits, batches: Batches, ledger: Ledger | None,
             accounts: dict[str, str | bytes] | None = None) -> RunOutcome:
    """One session of ``steps`` steps (fewer when tampering stops it); ``accounts``: the
    parties' ledger keys (generated into it when missing, so runs can share them)."""
    client, server = local_parties(spec, circuits, mode.proof_mode, malicious=scenario)
    log = None
    if mode.ledger is not None:
        if ledger is None:
            raise InputError(f"mode {mode.name} needs a ledger")
        log = ChainLog(ledger, verify_on_chain=mode.ledger == "verify",
                       accounts=accounts if accounts is not None else {})
        log.sink("client").attach(client)
        log.sink("server").attach(server)
    sizes: list[int] = []
    result = run_local(client, server, islice(batches(), steps),
                       on_message=lambda msg: sizes.append(len(msg.model_dump_json())))
    summary = result.summary()
    return RunOutcome(
        scenario=scenario, steps_run=len(result.step_seconds), steps_done=result.steps,
        step_seconds=result.step_seconds, prove_s=summary["prove_s"],
        verify_s=summary["verify_s"], bytes_sent=sum(sizes),
        detected=None if result.detected is None else StopRecord.of(result.detected),
        chain=_chain_figures(log, result.transcript) if log is not None else None)


def _chain_figures(log: ChainLog, transcript: Transcript) -> dict:
    summary = log.summary()
    figures = {key: summary[key] for key in ("entries", "verified_entries", "refused",
                                             "gas_total", "seconds_total")}
    if summary["verified_entries"]:
        # what "verified" meant: the session's verifiers checked against its ceremony's keys
        figures["verifiers_checked"] = sorted(
            kind for kind, address in log.check_keys(transcript).items() if address)
    return figures


def applies(mode: Mode, scenario: str) -> bool:
    """A cheat on proofs (a forged one) needs proofs: without them its run is the honest run."""
    return mode.proves or not tamper_scenarios.get(scenario).needs_proofs


def mode_report(mode: Mode, honest: RunOutcome, scenarios: dict[str, RunOutcome | None]
                ) -> dict:
    """One mode's costs (from the honest run) and verdicts (one per scenario)."""
    steps = max(honest.steps_done, 1)
    chain = honest.chain
    return {
        "name": mode.name, "proof_mode": str(mode.proof_mode), "ledger": mode.ledger,
        "what": mode.what,
        "step_s_median": round(statistics.median(honest.step_seconds), 4),
        "prove_s": honest.prove_s, "verify_s": honest.verify_s,
        "gas_per_step": round(chain["gas_total"] / steps) if chain else None,
        "chain_s_per_step": round(chain["seconds_total"] / steps, 4) if chain else None,
        "bytes_per_step": round(honest.bytes_sent / steps),
        # the kinds whose on-chain verifier matched the ceremony's key (None: nothing verified)
        "verifiers_checked": chain.get("verifiers_checked") if chain else None,
        "honest": _verdict(honest),
        "scenarios": {name: _verdict(run) if run is not None else NOT_APPLICABLE
                      for name, run in scenarios.items()},
    }


NOT_APPLICABLE = {"applicable": False, "detected": False, "step": None, "by": None,
                  "reason": None, "steps_run": 0, "steps_done": 0, "chain_entries": None,
                  "chain_refused": []}


def _verdict(run: RunOutcome) -> dict:
    det = run.detected
    return {
        "applicable": True, "detected": det is not None,
        "step": det.detected_step if det else None, "by": det.detected_by if det else None,
        "reason": det.reason if det else None,
        "steps_run": run.steps_run, "steps_done": run.steps_done,
        "chain_entries": run.chain["entries"] if run.chain else None,
        "chain_refused": run.chain["refused"] if run.chain else [],
    }


@dataclass
class CompareConfig:
    steps: int
    scenario_steps: int
    chain: str = "auto"
    modes: tuple[Mode, ...] = MODES
    scenarios: tuple[str, ...] = field(default_factory=tamper_scenarios.names)
    progress: Progress = field(default=lambda _msg: None)

    def __post_init__(self) -> None:
        if self.steps < 1 or self.scenario_steps < 1:
            raise InputError("compare needs at least one step per run")
        if self.chain not in CHAINS:
            raise InputError(f"--chain {self.chain!r}: use {', '.join(CHAINS)}")


def run_comparison(spec: SplitSpec, circuits: SplitCircuits, batches: Batches,
                   config: CompareConfig) -> dict:
    """Every mode of ``config``: the honest run of ``steps`` steps, then each scenario for up
    to ``scenario_steps`` steps. ``circuits`` must have keys if any mode proves. ``batches()``
    starts the data anew (every run sees the same batches)."""
    progress = config.progress
    needs_chain = any(m.ledger is not None for m in config.modes)
    backend, why = choose_chain(config.chain) if needs_chain else (None, "no ledger mode")
    start, load_before = time.perf_counter(), os.getloadavg()[0]
    accounts: dict[str, str | bytes] = {}  # the parties' ledger keys, shared by every run
    with deployed_ledger(backend) if backend is not None else nullcontext() as ledger:
        reports = []
        for mode in config.modes:
            if mode.ledger == "verify":
                progress(f"{mode.name}: deploying the Groth16 verifiers on the {backend} chain")
                deploy_verifiers(ledger, circuits)
            progress(f"{mode.name}: honest run, {config.steps} steps")
            honest = run_once(mode, None, config.steps, spec, circuits, batches, ledger,
                              accounts)
            scenarios: dict[str, RunOutcome | None] = {}
            for scenario in config.scenarios:
                if not applies(mode, scenario):
                    scenarios[scenario] = None
                    continue
                progress(f"{mode.name}: {scenario}, up to {config.scenario_steps} steps")
                scenarios[scenario] = run_once(mode, scenario, config.scenario_steps, spec,
                                               circuits, batches, ledger, accounts)
            reports.append(mode_report(mode, honest, scenarios))
    return {
        "spec": describe(spec), "steps": config.steps, "scenario_steps": config.scenario_steps,
        "chain": {"backend": backend, "why": why}, "machine": machine(),
        "prover": "native", "kinds": list(KINDS), "scenarios": list(config.scenarios),
        "seconds": round(time.perf_counter() - start, 1),
        # wall times mean little on a busy machine: the reader can see how busy it was
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "modes": reports,
    }


def run_named_comparison(model: str, quick: bool, out: Path, chain: str = "auto",
                         progress: Progress = lambda _msg: None,
                         modes: tuple[Mode, ...] = MODES) -> dict:
    """``splitverify compare --model``: a reference model by name (``NAMED_MODELS``: refnet,
    cnn) on the digits, keys made first (not timed; none when no mode proves), outputs
    written to out."""
    from splitverify_client.training import refnet_batches

    steps, scenario_steps = ((QUICK_STEPS, QUICK_SCENARIO_STEPS) if quick
                             else (FULL_STEPS, FULL_SCENARIO_STEPS))
    config = CompareConfig(steps, scenario_steps, chain, modes=modes,
                           progress=progress)  # checked first, as the model's name
    spec = named_spec(model)
    circuits = keyed_circuits(spec, progress) if any(m.proves for m in modes) \
        else SplitCircuits(spec)
    report = run_comparison(spec, circuits, lambda: refnet_batches(spec), config)
    report.update(workload=model, quick=quick)
    write_outputs(report, out)
    return report


# --- outputs ------------------------------------------------------------------------------------


def write_outputs(report: dict, out: Path) -> dict[str, Path]:
    """compare.json, compare.md and compare.png in ``out``."""
    from .compare_figure import draw_figure

    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "compare.json", "md": out / "compare.md", "png": out / "compare.png"}
    paths["json"].write_text(json.dumps(report, indent=2) + "\n")
    paths["md"].write_text(markdown(report))
    draw_figure(report, paths["png"])
    return paths


def _per_kind(values: dict[str, float]) -> str:
    """'cf 6.6 / ss 5.9 / cb 10' in protocol order; – when nothing was proven or verified."""
    short = {"client_forward": "cf", "server_step": "ss", "client_backward": "cb"}
    shown = [f"{short[k]} {seconds_text(values[k])}" for k in KINDS if k in values]
    return " / ".join(shown) if shown else "–"


def verdict_text(verdict: dict) -> str:
    """One cell of the detection table."""
    if not verdict["applicable"]:
        return "n/a (no proof to forge)"
    if verdict["detected"]:
        text = f"**detected**, step {verdict['step']}, by the {verdict['by']}"
    else:
        text = f"NOT detected ({verdict['steps_done']} steps"
        text += (f", {verdict['chain_entries']} entries recorded)"
                 if verdict["chain_entries"] is not None else ")")
    refused = verdict["chain_refused"]
    if refused:
        text += "; chain refused " + ", ".join(
            f"{r['kind']} of step {r['step']} ({r['reason'].split('(')[0]})" for r in refused)
    return text


def findings(report: dict) -> list[str]:
    """What the detection table says, in sentences built from its own data."""
    lines = []
    for mode in report["modes"]:
        missed = [name for name, v in mode["scenarios"].items()
                  if v["applicable"] and not v["detected"]]
        caught = [f"{name} (step {v['step']}, {v['by']})" for name, v in mode["scenarios"].items()
                  if v["applicable"] and v["detected"]]
        refused = sorted({name for name, v in mode["scenarios"].items() if v["chain_refused"]})
        line = f"- **{mode['name']}**: "
        line += ("catches " + ", ".join(caught) if caught else "catches none of the scenarios")
        if missed:
            line += "; misses " + ", ".join(missed)
            recorded = [name for name in missed if mode["scenarios"][name]["chain_entries"]]
            if recorded:
                line += (" — their statements were recorded on chain as if honest: the ledger "
                         "keeps what was claimed, nothing ties it to the computation")
        if refused:
            line += "; the chain itself refused the cheater's record in " + ", ".join(refused)
        if mode["honest"]["detected"]:
            line += "; **the honest run was flagged** (a bug)"
        lines.append(line + ".")
    return lines


def markdown(report: dict) -> str:
    modes = report["modes"]
    chain = report["chain"]
    lines = [
        "# splitverify compare: a blockchain ledger vs zk-SNARK proofs",
        "",
        f"Workload: {report.get('workload', 'custom')} ({report['spec']}). Honest runs: "
        f"{report['steps']} steps per mode; each tamper scenario runs up to "
        f"{report['scenario_steps']} steps and stops at detection. Both parties in one process "
        f"(the same messages and checks as over HTTP), {report['prover']} prover. Chain: "
        f"{chain['backend']} ({chain['why']}). Machine: {report['machine']}, load average "
        f"{' → '.join(map(str, report['load_average_1min']))} (1 min, start → end; wall times "
        f"on a shared machine are noisy). Total {report['seconds']} s.",
        "",
        "## Modes",
        "",
        "| mode | proof mode | what happens |",
        "|---|---|---|",
        *[f"| {m['name']} | `{m['proof_mode']}` | {m['what']} |" for m in modes],
        "",
        "## Cost per step (honest run)",
        "",
        "Wall time is the median per step (both parties, ledger transactions included); prove and "
        "verify are means per proof kind (cf = ClientForward, ss = ServerStep, cb = "
        "ClientBackward); gas sums both parties' transactions; bytes are the JSON sizes of the "
        "three messages.",
        "",
        "| mode | wall time/step | prove | verify | gas/step | chain time/step | bytes/step |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in modes:
        gas = f"{m['gas_per_step']:,}" if m["gas_per_step"] is not None else "–"
        lines.append(f"| {m['name']} | {seconds_text(m['step_s_median'])} "
                     f"| {_per_kind(m['prove_s'])} | {_per_kind(m['verify_s'])} | {gas} "
                     f"| {seconds_text(m['chain_s_per_step'])} | {m['bytes_per_step']:,} |")
    scenarios = report["scenarios"]
    lines += [
        "",
        "## Tampering: detected? (step, by whom)",
        "",
        "Each cheater is consistent: it commits to what it sends, so commitments alone match. "
        "\"chain refused\" is the contract reverting the cheater's own record (a replayed step "
        "is `AlreadyRecorded`; a proof that does not verify is `ProofRejected`).",
        "",
        "| mode | honest run | " + " | ".join(f"`{s}`" for s in scenarios) + " |",
        "|---|---|" + "---|" * len(scenarios),
    ]
    for m in modes:
        honest = "FLAGGED" if m["honest"]["detected"] else "clean"
        lines.append(f"| {m['name']} | {honest} | "
                     + " | ".join(verdict_text(m["scenarios"][s]) for s in scenarios) + " |")
    lines += ["", "## What this shows", "", *findings(report), ""]
    return "\n".join(lines)
