"""compare.png: the cost of each mode and which cheats it stops, at a glance.

Left: median wall time per step (log scale: plain steps take milliseconds, proven ones tens of
seconds). Middle: gas per step of the modes that use the ledger. Right: the detection matrix,
mode × tamper scenario — green detected (step, by whom), red recorded or run without being
detected, grey not applicable.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
from matplotlib.colors import ListedColormap  # noqa: E402

from .units import seconds_text  # noqa: E402

DETECTED, MISSED, NOT_APPLICABLE = 2, 0, 1
_COLOURS = ListedColormap(["#e8a3a3", "#d9d9d9", "#9fd4a3"])   # missed, n/a, detected


def _cell(verdict: dict) -> tuple[int, str]:
    if not verdict["applicable"]:
        return NOT_APPLICABLE, "n/a\n(no proof)"
    refused = "\nchain refused" if verdict["chain_refused"] else ""
    if verdict["detected"]:
        return DETECTED, f"step {verdict['step']}\n{verdict['by']}{refused}"
    recorded = "\nrecorded on chain" if verdict["chain_entries"] else ""
    return MISSED, f"missed{recorded}{refused}"


def draw_figure(report: dict, path: Path) -> Path:
    modes = report["modes"]
    names = [m["name"] for m in modes]
    scenarios = report["scenarios"]
    fig, (times, gas, matrix) = plt.subplots(
        1, 3, figsize=(17, 0.7 * len(modes) + 3.2),
        gridspec_kw={"width_ratios": [1.1, 1.0, 2.4]})
    rows = list(range(len(modes)))

    step_s = [max(m["step_s_median"], 1e-5) for m in modes]
    times.barh(rows, step_s, color="#5b8db8")
    times.set_xscale("log")
    times.set_yticks(rows, names)
    times.invert_yaxis()
    times.set_xlabel("wall seconds per step (median, log scale)")
    times.set_title("time per step")
    for row, value in zip(rows, step_s):
        times.text(value, row, f" {seconds_text(value)}", va="center", fontsize=9)
    times.set_xlim(min(step_s) / 3, max(step_s) * 30)

    gas_values = [m["gas_per_step"] or 0 for m in modes]
    gas.barh(rows, [g / 1e6 for g in gas_values], color="#c08a3e")
    gas.set_yticks(rows, [""] * len(rows))
    gas.invert_yaxis()
    gas.set_xlabel("gas per step (millions, both parties)")
    gas.set_title("ledger cost")
    for row, m in zip(rows, modes):
        text = " no ledger" if m["gas_per_step"] is None else f" {m['gas_per_step']:,}"
        gas.text(m["gas_per_step"] / 1e6 if m["gas_per_step"] else 0, row, text, va="center",
                 fontsize=9)
    gas.set_xlim(0, max(max(gas_values) / 1e6 * 1.6, 0.1))

    cells = [[_cell(m["scenarios"][s]) for s in scenarios] for m in modes]
    matrix.imshow([[code for code, _ in row] for row in cells], cmap=_COLOURS, vmin=0, vmax=2,
                  aspect="auto")
    for r, row in enumerate(cells):
        for c, (_, text) in enumerate(row):
            matrix.text(c, r, text, ha="center", va="center", fontsize=8)
    # white lines between the cells
    matrix.set_xticks([c - 0.5 for c in range(1, len(scenarios))], minor=True)
    matrix.set_yticks([r - 0.5 for r in range(1, len(modes))], minor=True)
    matrix.grid(which="minor", color="white", linewidth=2)
    matrix.tick_params(which="minor", length=0)
    matrix.set_xticks(range(len(scenarios)), [s.replace(":", ":\n") for s in scenarios],
                      fontsize=9)
    matrix.set_yticks(rows, [""] * len(rows))
    matrix.set_title("tampering detected? (green: yes, at step, by whom; red: no)")

    fig.suptitle(f"splitverify compare — {report.get('workload', 'custom')}: "
                 f"{report['steps']} honest steps per mode, chain {report['chain']['backend']}",
                 fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
