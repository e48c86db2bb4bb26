"""Each failure raises its typed error with a message that says what is wrong and what to do."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from conftest import THREE, MATMUL_INPUTS

from splitverify import zk
from splitverify.errors import (CompileError, InputError, IntegrityError, SetupError,
                                ToolchainError, WitnessError)
from splitverify.zk import devsetup
from splitverify.zk.ceremony import KNOWN_PTAU_BLAKE2B, CircuitKey, PtauFile, dev_ptau_of
from splitverify.zk.curve import R
from splitverify.zk.toolchain import ENV_NODE_MODULES, find_toolchain

# --- toolchain ---------------------------------------------------------------------------------


class _Env:
    """Set environment variables and clear find_toolchain's cache, before and after."""

    def __init__(self, **values: str):
        self.values = values
        self.saved: dict[str, str | None] = {}

    def __enter__(self):
        for name, value in self.values.items():
            self.saved[name] = os.environ.get(name)
            os.environ[name] = value
        find_toolchain.cache_clear()
        return self

    def __exit__(self, *exc):
        for name, value in self.saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        find_toolchain.cache_clear()


def test_missing_node_modules_is_a_toolchain_error(tmp_path: Path, circuits_dir: Path) -> None:
    empty = tmp_path / "empty_node_modules"
    empty.mkdir()
    with _Env(**{ENV_NODE_MODULES: str(empty)}):
        with pytest.raises(ToolchainError) as info:
            find_toolchain()
        assert "npm ci" in str(info.value)
        assert str(empty) in str(info.value)
        with pytest.raises(ToolchainError, match="npm ci"):
            zk.compile_circuit(circuits_dir / "matmul2.circom")
    # Restored: the real toolchain is found again.
    assert (find_toolchain().node_modules / "snarkjs").is_dir()


def test_missing_node_is_a_toolchain_error(tmp_path: Path) -> None:
    with _Env(PATH=str(tmp_path)):
        with pytest.raises(ToolchainError) as info:
            find_toolchain()
    assert "node" in str(info.value).lower() and "npm ci" in str(info.value)
    assert find_toolchain().node


def test_wrong_package_version_is_a_toolchain_error(tmp_path: Path) -> None:
    """A node_modules folder with another snarkjs version: named, with the pinned one."""
    fake = tmp_path / "node_modules"
    for name in ("snarkjs", "circom2", "circomlib", "solc"):
        (fake / name).mkdir(parents=True)
        version = "0.0.1" if name == "snarkjs" else {"circom2": "0.2.23", "circomlib": "2.0.5",
                                                    "solc": "0.8.37"}[name]
        (fake / name / "package.json").write_text(f'{{"version": "{version}"}}')
    with _Env(**{ENV_NODE_MODULES: str(fake)}):
        with pytest.raises(ToolchainError) as info:
            find_toolchain()
    assert "0.0.1" in str(info.value) and "0.7.6" in str(info.value)
    assert "npm ci" in str(info.value)


# --- compile -----------------------------------------------------------------------------------

BROKEN = """pragma circom 2.0.0;
template Broken() {
  signal input a;
  signal output b
  b <== a * a;
}
component main = Broken();
"""


def test_syntax_error_is_a_compile_error_with_file_and_line(tmp_path: Path) -> None:
    source = tmp_path / "broken.circom"
    source.write_text(BROKEN)
    with pytest.raises(CompileError) as info:
        zk.compile_circuit(source)
    message = str(info.value)
    assert "broken.circom" in message
    # circom reports the missing semicolon at the end of line 4.
    assert re.search(r"\bline 4\b", message), message


def test_missing_source_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        zk.compile_circuit(tmp_path / "nope.circom")


# --- witness -----------------------------------------------------------------------------------

ASSERTED = """pragma circom 2.0.0;
template Small() {
  signal input a;
  signal output b;
  b <== a * a;
  assert(a < 10);
}
component main = Small();
"""


@pytest.mark.parametrize(("name", "source", "template", "line", "bad", "good"), [
    ("three", THREE, "Three", 6, {"a": 4, "x": 2}, {"a": 3, "x": 2}),
    ("small", ASSERTED, "Small", 6, {"a": 12}, {"a": 2}),
], ids=["constraint", "assert"])
def test_unsatisfiable_inputs_are_a_witness_error(tmp_path: Path, name, source, template, line,
                                                  bad, good) -> None:
    path = tmp_path / f"{name}.circom"
    path.write_text(source)
    circuit = zk.compile_circuit(path)
    with pytest.raises(WitnessError) as info:
        zk.calculate_witness(circuit, bad, tmp_path / "bad.wtns")
    err = info.value
    assert err.template is not None and err.template.startswith(template), err.template
    assert err.line == line
    assert template in str(err) and str(line) in str(err)
    # The same circuit with satisfying inputs works.
    out = zk.calculate_witness(circuit, good, tmp_path / "good.wtns")
    assert zk.check_witness(circuit, out)[0]


def test_prove_with_unsatisfiable_inputs_raises_witness_error(tmp_path: Path) -> None:
    path = tmp_path / "three.circom"
    path.write_text(THREE)
    key = zk.initial_key(zk.compile_circuit(path))
    with pytest.raises(WitnessError):
        zk.prove(key, {"a": 5, "x": 1})


def test_missing_input_lists_the_expected_inputs(matmul_circuit, tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        zk.calculate_witness(matmul_circuit, {"a": MATMUL_INPUTS["a"]}, tmp_path / "w.wtns")
    message = str(info.value)
    assert "missing ['b']" in message
    assert "a[2, 2]" in message and "b[2, 2]" in message


def test_unknown_input_lists_the_expected_inputs(matmul_circuit, tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        zk.calculate_witness(matmul_circuit, {**MATMUL_INPUTS, "z": 1}, tmp_path / "w.wtns")
    message = str(info.value)
    assert "unknown ['z']" in message
    assert "a[2, 2]" in message and "b[2, 2]" in message


@pytest.mark.parametrize(("value", "pattern"), [
    ([[1, 2], [3, 4], [5, 6]], r"'a'.*expected 2 entries.*shape \[2, 2\].*got 3"),
    ([1, 2], r"'a\[0\]'.*expected 2 entries.*got a single value"),
    ([[1, 2, 3], [4, 5, 6]], r"'a\[0\]'.*expected 2 entries.*got 3"),
    (5, r"'a'.*expected 2 entries.*got a single value"),
    ([[1, 2], [3, [4]]], r"'a\[1\]\[1\]'.*single value"),
    ([[1, 2], [3, "4"]], r"'a\[1\]\[1\]'.*expected an integer"),
    ([[1, 2], [3, True]], r"'a\[1\]\[1\]'.*expected an integer"),
    ([[1, 2], [3, R]], r"'a\[1\]\[1\]'.*outside the field"),
    ([[1, 2], [3, -R]], r"'a\[1\]\[1\]'.*outside the field"),
], ids=["rows", "flat", "cols", "scalar", "too-deep", "string", "bool", "r", "minus-r"])
def test_wrong_shape_or_value_is_an_input_error(matmul_circuit, tmp_path: Path, value,
                                                pattern: str) -> None:
    with pytest.raises(InputError, match=pattern):
        zk.calculate_witness(matmul_circuit, {"a": value, "b": MATMUL_INPUTS["b"]},
                             tmp_path / "w.wtns")


# --- integrity of keys -------------------------------------------------------------------------


def _flip(path: Path, offset_from_end: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) - offset_from_end] ^= 0xFF
    path.write_bytes(bytes(data))


def test_corrupted_zkey_fails_integrity_check(matmul_key: CircuitKey, tmp_path: Path) -> None:
    expected = matmul_key.blake2b
    copy = tmp_path / matmul_key.zkey.name
    shutil.copyfile(matmul_key.zkey, copy)
    tampered = CircuitKey(copy, matmul_key.circuit, matmul_key.ptau_blake2b,
                          matmul_key.insecure, list(matmul_key.transcript))
    tampered.check_integrity(expected)  # intact copy: passes
    _flip(copy)
    with pytest.raises(IntegrityError) as info:
        tampered.check_integrity(expected)
    assert copy.name in str(info.value) and expected[:16] in str(info.value)
    assert matmul_key.blake2b == expected  # the original is untouched


def test_initial_key_rechecks_its_cached_zkey(matmul_circuit, tmp_path: Path) -> None:
    cache = zk.ArtifactCache(tmp_path / "private-cache")  # keep the session cache intact
    key = zk.initial_key(matmul_circuit, cache=cache)
    assert key.zkey.is_relative_to(cache.root)
    _flip(key.zkey)
    with pytest.raises(IntegrityError) as info:
        zk.initial_key(matmul_circuit, cache=cache)
    assert key.zkey.name in str(info.value)


# --- integrity of powers of tau ----------------------------------------------------------------


@pytest.fixture(scope="module")
def dev_ptau(matmul_circuit) -> PtauFile:
    ptau = dev_ptau_of(zk.initial_key(matmul_circuit))
    assert ptau is not None
    return ptau


def test_ptau_named_as_published_file_must_match_published_hash(dev_ptau: PtauFile,
                                                                tmp_path: Path) -> None:
    name = "powersOfTau28_hez_final_08.ptau"
    fake = tmp_path / name
    shutil.copyfile(dev_ptau.path, fake)
    with pytest.raises(IntegrityError) as info:
        PtauFile.open(fake)
    message = str(info.value)
    assert "published hash" in message and name in message
    assert KNOWN_PTAU_BLAKE2B[name][:16] in message
    assert dev_ptau.blake2b[:16] in message


def test_ptau_with_wrong_expected_hash(dev_ptau: PtauFile) -> None:
    wrong = "0" * 128
    with pytest.raises(IntegrityError) as info:
        PtauFile.open(dev_ptau.path, expected_blake2b=wrong)
    assert wrong[:16] in str(info.value) and dev_ptau.blake2b[:16] in str(info.value)
    # The right hash opens it.
    assert PtauFile.open(dev_ptau.path, expected_blake2b=dev_ptau.blake2b).power == dev_ptau.power


def test_corrupted_ptau_fails_its_expected_hash(dev_ptau: PtauFile, tmp_path: Path) -> None:
    copy = tmp_path / "dev.ptau"
    shutil.copyfile(dev_ptau.path, copy)
    _flip(copy)
    with pytest.raises(IntegrityError):
        PtauFile.open(copy, expected_blake2b=dev_ptau.blake2b)


def test_unprepared_ptau_is_a_setup_error(tmp_path: Path) -> None:
    raw = tmp_path / "raw.ptau"
    devsetup.write_dev_ptau(raw, 3, prepared=False)
    with pytest.raises(SetupError, match="prepare phase2"):
        PtauFile.open(raw)


def test_too_small_ptau_is_a_setup_error(matmul_circuit, tmp_path: Path) -> None:
    small = tmp_path / "small.ptau"
    devsetup.write_dev_ptau(small, 2)
    ptau = PtauFile.open(small, insecure=True)
    assert ptau.power == 2
    with pytest.raises(SetupError, match=r"2\^2 powers.*2\^5"):
        zk.initial_key(matmul_circuit, ptau)


def test_missing_ptau_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        PtauFile.open(tmp_path / "none.ptau")
