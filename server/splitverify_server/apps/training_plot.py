"""training.png: the learning curve of a session — the proven loss of every step, and the test
accuracy measured along the way (each epoch, and at the end)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

from splitverify.errors import InputError  # noqa: E402


def plot_training(summary: dict, path: Path) -> Path:
    """Draw the loss per step (left) and the test accuracy per evaluation (right)."""
    losses, curve = summary.get("loss_curve") or [], summary.get("accuracy_curve") or []
    if not losses and not curve:
        raise InputError("the session has no loss or accuracy to plot (proof mode off, or "
                         "stopped before its first step)")
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 3.6))
    loss_ax.plot(range(1, len(losses) + 1), losses, color="#4c72b0", linewidth=1)
    loss_ax.set(title="loss (the server's signed statements)", xlabel="step",
                ylabel="mean squared error per logit")
    loss_ax.grid(alpha=0.3)
    acc_ax.plot([p["epoch"] for p in curve], [100 * p["test_accuracy"] for p in curve],
                marker="o", color="#55a868")
    for point in curve:
        acc_ax.annotate(f"{100 * point['test_accuracy']:.1f} %",
                        (point["epoch"], 100 * point["test_accuracy"]),
                        textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8)
    acc_ax.set(title="test accuracy", xlabel="epoch", ylabel="%", ylim=(0, 100), xlim=(0, None))
    acc_ax.grid(alpha=0.3)
    fig.suptitle(f"{summary['steps']} steps, proof mode {summary['proof_mode']}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
