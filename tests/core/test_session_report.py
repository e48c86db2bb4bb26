"""The session summary as people read it: the proof mode's detection probability, the sparkline,
and the tables (titles, headers, units, one row per proof kind, no JSON in a cell)."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from splitverify.protocol import ProofMode
from splitverify.session_report import (detection_probability, guarantee, proofs_table,
                                        session_table, sparkline)


@pytest.mark.parametrize("mode,steps,caught", [
    ("every", 1, 1.0), ("audit:0.05", 1, 0.05), ("audit:0.05", 10, 1 - 0.95 ** 10),
    ("audit:0.5", 3, 0.875), ("commit", 50, 0.0), ("off", 50, 0.0)])
def test_detection_probability_of_a_cheat_of_k_steps(mode, steps, caught):
    assert detection_probability(ProofMode.parse(mode), steps) == pytest.approx(caught)


def test_the_guarantee_names_the_chance_for_several_cheat_lengths():
    text = guarantee(ProofMode.parse("audit:0.05"))
    assert "P = 0.05" in text and "1 step 5%" in text and "10 steps 40%" in text \
        and "50 steps 92%" in text
    assert "not detected" in guarantee(ProofMode.parse("commit"))


def test_sparkline_spans_the_lowest_to_the_highest_value():
    assert sparkline([0.1, 0.5, 0.9]) == "▁▅█"
    assert sparkline([2.0, 2.0]) == "▁▁" and sparkline([]) == ""


SUMMARY = {
    "steps": 200, "proof_mode": "audit:0.05", "verified": True, "detected": False,
    "detected_step": None, "detected_by": None, "reason": None, "final_loss": 0.031,
    "test_accuracy": 0.8667, "setup_s": 0.4, "session_s": 71.2, "train_s": 60.3, "step_s": 0.3015,
    "seconds": 132.0, "loss_curve": [0.09, 0.05, 0.031],
    "accuracy_curve": [{"step": 89, "epoch": 1.0, "test_accuracy": 0.8389},
                       {"step": 200, "epoch": 2.25, "test_accuracy": 0.8667}],
    "proofs_by_kind": {"client_forward": {"statements": 200, "proven": 9},
                       "server_step": {"statements": 200, "proven": 12},
                       "client_backward": {"statements": 200, "proven": 11}},
    "prove_s": {"client_forward": 2.5, "server_step": 3.1, "client_backward": 6.0},
    "verify_s": {"client_forward": 0.0071, "server_step": 0.0069, "client_backward": 0.007},
}


def _text(table) -> str:
    console = Console(width=120, record=True)
    console.print(table)
    return console.export_text()


def test_session_table_has_a_title_headers_and_units():
    text = _text(session_table(SUMMARY, "splitverify demo"))
    assert "splitverify demo" in text and "quantity" in text and "value" in text
    assert "86.7 %" in text and "1: 83.9 %" in text and "2.25: 86.7 %" in text
    assert "302 ms" in text and "71.2 s" in text and "132 s" in text and "clean" in text
    assert "loss by step" in text and "█▃▁" in text
    assert '"' not in text and "{" not in text       # no JSON-quoted values, no dicts


def test_proofs_table_has_one_row_per_kind_with_counts_and_seconds():
    text = _text(proofs_table(SUMMARY))
    rows = [line for line in text.splitlines() if line.strip(" │┃").split(" ")[0]
            in ("client_forward", "server_step", "client_backward")]
    assert len(rows) == 3
    server_row = next(row for row in rows if "server_step" in row)
    assert "server" in server_row and "200" in server_row and "188" in server_row
    assert "3.1 s" in server_row and "6.9 ms" in server_row
    assert '"' not in text and "{" not in text and json.dumps(SUMMARY["prove_s"]) not in text
