"""The soundness harness (conftest.tamper_witness): a witness for valid inputs satisfies the R1CS;
the same witness with one value edited does not."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import expected_matmul_public, tamper_witness, wire_of

from splitverify import zk
from splitverify.zk.curve import R


def test_valid_witness_passes_check(matmul_circuit, matmul_wtns: Path) -> None:
    ok, report = zk.check_witness(matmul_circuit, matmul_wtns)
    assert ok, report
    values = zk.read_witness(matmul_wtns)
    assert len(values) == matmul_circuit.info.n_wires
    assert values[0] == 1  # the constant wire
    assert values[1:5] == expected_matmul_public()


def test_rewritten_witness_is_unchanged(matmul_circuit, matmul_wtns: Path, tmp_path: Path) -> None:
    """Control for the harness: read -> write round-trips, and an edit that keeps the value
    still passes (so a failure below is caused by the edit, not by the rewrite)."""
    values = zk.read_witness(matmul_wtns)
    zk.write_witness(tmp_path / "copy.wtns", values)
    assert zk.read_witness(tmp_path / "copy.wtns") == values
    index = wire_of(matmul_circuit, "p[0][0][1]")
    ok, report = tamper_witness(matmul_circuit, matmul_wtns, index, values[index],
                                tmp_path / "same.wtns")
    assert ok, report


@pytest.mark.parametrize("signal", ["p[0][0][1]", "p[1][1][0]", "c[0][1]", "a[1][0]"])
def test_edited_internal_value_fails_check(matmul_circuit, matmul_wtns: Path, tmp_path: Path,
                                           signal: str) -> None:
    values = zk.read_witness(matmul_wtns)
    index = wire_of(matmul_circuit, signal)
    ok, report = tamper_witness(matmul_circuit, matmul_wtns, index, (values[index] + 1) % R,
                                tmp_path / "tampered.wtns")
    assert ok is False
    assert "WITNESS IS NOT CORRECT" in report.upper(), report
    # The original file is untouched.
    assert zk.read_witness(matmul_wtns) == values


def test_edit_by_minus_one_in_the_field_fails_check(matmul_circuit, matmul_wtns: Path,
                                                    tmp_path: Path) -> None:
    """r - 1 is -1 in the field: a large but valid field element, still a wrong value."""
    index = wire_of(matmul_circuit, "p[0][1][0]")
    ok, _report = tamper_witness(matmul_circuit, matmul_wtns, index, R - 1, tmp_path / "t.wtns")
    assert ok is False


def test_harness_rejects_an_index_outside_the_witness(matmul_circuit, matmul_wtns: Path,
                                                      tmp_path: Path) -> None:
    with pytest.raises(IndexError):
        tamper_witness(matmul_circuit, matmul_wtns, matmul_circuit.info.n_wires, 0,
                       tmp_path / "t.wtns")

