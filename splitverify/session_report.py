"""What a finished training session did, for people: per proof kind what was committed and what
was proven, the chance the proof mode gives of catching a cheat, the learning curve as a
sparkline, and the summary tables that `splitverify demo` and `train` print."""

from __future__ import annotations

from rich.table import Table

from .circuitgen import KINDS
from .protocol import ProofMode
from .transcript import SENDER, Transcript

SPARK = "▁▂▃▄▅▆▇█"
# cheats of this many steps: the detection probabilities the summary shows
CHEAT_STEPS = (1, 10, 50)


def proofs_by_kind(transcript: Transcript) -> dict[str, dict[str, int]]:
    """Per circuit: statements sent (each committed and signed) and how many carried a proof
    that the receiver verified (the transcript keeps only verified messages)."""
    counts = {kind: {"statements": 0, "proven": 0} for kind in KINDS}
    for entry in transcript.entries:
        counts[entry.kind]["statements"] += 1
        counts[entry.kind]["proven"] += entry.proof is not None
    return counts


def detection_probability(mode: ProofMode, cheated_steps: int) -> float:
    """The chance that a party cheating in ``cheated_steps`` messages of one kind is caught:
    every proven message is checked, and in audit:P each is challenged independently with
    probability P after the statement is fixed (a cheat must commit to a statement first)."""
    if mode.kind == "every":
        return 1.0
    if mode.kind == "audit":
        return 1.0 - (1.0 - mode.probability) ** cheated_steps
    return 0.0


def sparkline(values: list[float]) -> str:
    """One character per value, scaled between the smallest and the largest."""
    if not values:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    return "".join(SPARK[min(len(SPARK) - 1, int((v - low) / span * len(SPARK)))]
                   for v in values)


def seconds_text(value: float | None) -> str:
    """'2.3 ms', '313 ms', '24.1 s', '1111 s'; – for no value."""
    if value is None:
        return "–"
    if value >= 100:
        return f"{value:.0f} s"
    return f"{value * 1000:.3g} ms" if value < 1 else f"{value:.3g} s"


def guarantee(mode: ProofMode) -> str:
    """What the proof mode promises, in one line."""
    if mode.kind == "every":
        return "every message proven and verified: any cheat is caught at its step"
    if mode.kind == "audit":
        caught = ", ".join(f"{k} step{'s' if k > 1 else ''} {detection_probability(mode, k):.0%}"
                           for k in CHEAT_STEPS)
        return (f"every message committed and signed; each proven when its receiver's draw "
                f"(P = {mode.probability:g}) challenges it; a cheat is caught with probability "
                f"{caught}")
    if mode.kind == "commit":
        return "statements committed and signed, never proven: a cheat is not detected"
    return "plain split learning: nothing committed, nothing proven"


def session_table(summary: dict, title: str) -> Table:
    """The session at a glance: result, guarantee, time."""
    mode = ProofMode.parse(summary["proof_mode"])
    table = Table(title=title, title_justify="left")
    table.add_column("quantity", style="bold", no_wrap=True)
    table.add_column("value")
    table.add_row("steps", f"{summary['steps']}")
    table.add_row("proof mode", f"{summary['proof_mode']}: {guarantee(mode)}")
    if summary.get("labels") == "server":
        held = summary.get("label_table")
        table.add_row("labels", "held by the server" + (
            f" (its table of {held['size']} rows, commitment {held['commitment'][:12]}…; every "
            "ServerStep names it)" if held else "") + ": the client sent sample ids")
    elif summary.get("labels") == "client":
        table.add_row("labels", "sent by the client with each batch")
    if summary.get("test_accuracy") is not None:
        table.add_row("test accuracy", f"{100 * summary['test_accuracy']:.1f} %")
    curve = summary.get("accuracy_curve") or []
    if curve:
        table.add_row("accuracy by epoch", "  ".join(
            f"{point['epoch']:g}: {100 * point['test_accuracy']:.1f} %" for point in curve)
            + f"  {sparkline([point['test_accuracy'] for point in curve])}")
    if summary.get("final_loss") is not None:
        table.add_row("loss (MSE per logit)", f"{summary['final_loss']:.4f} at the last step")
    if summary.get("loss_curve"):
        table.add_row("loss by step", sparkline(_every_nth(summary["loss_curve"], 40)))
    verdict = ("[red]TAMPERING DETECTED[/] at step "
               f"{summary['detected_step']} by the {summary['detected_by']}: {summary['reason']}"
               if summary["detected"] else
               "[green]clean[/]: every required proof verified" if summary["verified"]
               else "clean (no proofs required)")
    table.add_row("verdict", verdict)
    keys = summary.get("key_ceremony")
    if keys:
        reused = keys["reused_from"]
        table.add_row("key ceremony", (
            f"reused from session {', '.join(sorted({s[:12] + '…' for s in reused.values()}))} "
            "(same two identities)" if reused and not keys["ceremony"] else
            "ran for " + ", ".join(keys["ceremony"]) + (
                f"; reused for {', '.join(reused)}" if reused else "")))
    for key, label in (("setup_s", "compile + development keys"),
                       ("session_s", "session + key ceremony"), ("train_s", "training"),
                       ("step_s", "per step"), ("seconds", "total")):
        if summary.get(key) is not None:
            table.add_row(label, seconds_text(summary[key]))
    return table


def proofs_table(summary: dict) -> Table:
    """One row per proof kind: who proves it, statements, proofs verified, seconds."""
    table = Table(title="Proofs by kind (each checked by the other party)", title_justify="left")
    table.add_column("proof kind", no_wrap=True)
    table.add_column("prover")
    for column in ("sent", "proven", "committed only", "prove, mean", "verify, mean"):
        table.add_column(column, justify="right")
    counts = summary.get("proofs_by_kind") or {}
    for kind in KINDS:
        row = counts.get(kind, {"statements": 0, "proven": 0})
        table.add_row(kind, SENDER[kind], f"{row['statements']}", f"{row['proven']}",
                      f"{row['statements'] - row['proven']}",
                      seconds_text(summary["prove_s"].get(kind)),
                      seconds_text(summary["verify_s"].get(kind)))
    return table


def _every_nth(values: list[float], most: int) -> list[float]:
    """At most ``most`` values, evenly spaced (a sparkline that fits a line)."""
    stride = max(1, -(-len(values) // most))
    return values[::stride]
