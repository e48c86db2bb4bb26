"""The in-process witness backend (circom's WASM under wasmtime) against the node one
(snarkjs ``wtns calculate``): the same .wtns bytes, the same errors, one warm instance."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from conftest import THREE, MATMUL_INPUTS

from splitverify import zk
from splitverify.circuitgen import KINDS
from splitverify.errors import InputError, WitnessError
from splitverify.zk import wasm_witness
from splitverify.zk.witness import ENV_WITNESS, witness_backend


def both_backends(circuit: zk.CompiledCircuit, inputs: dict, folder: Path) -> dict[str, bytes]:
    return {backend: zk.calculate_witness(circuit, inputs, folder / f"{backend}.wtns",
                                          backend).read_bytes()
            for backend in ("node", "wasm")}


def test_fnv_hash_matches_circom() -> None:
    # witness_calculator.js fnvHash("main") and of an empty name (the FNV-1a offset basis).
    assert wasm_witness.fnv1a_64("") == 0xCBF29CE484222325
    assert wasm_witness.fnv1a_64("a") == 0xAF63DC4C8601EC8C


@pytest.mark.parametrize("name", ["matmul", "other"])
def test_matmul_fixtures_give_byte_identical_witnesses(name, matmul_circuit, other_circuit,
                                                       tmp_path: Path) -> None:
    circuit = {"matmul": matmul_circuit, "other": other_circuit}[name]
    out = both_backends(circuit, MATMUL_INPUTS, tmp_path)
    assert out["wasm"] == out["node"]


@pytest.mark.parametrize("kind", KINDS)
def test_tiny_split_circuits_give_byte_identical_witnesses(kind, tiny_circuits, tiny_case,
                                                           tmp_path: Path) -> None:
    out = both_backends(tiny_circuits.circuit(kind), tiny_case.inputs[kind], tmp_path)
    assert out["wasm"] == out["node"]
    assert zk.check_witness(tiny_circuits.circuit(kind), tmp_path / "wasm.wtns")[0]


def test_calculator_is_kept_warm_and_resets_between_witnesses(matmul_circuit,
                                                              tmp_path: Path) -> None:
    first = wasm_witness.calculator_for(matmul_circuit.wasm, matmul_circuit.name)
    assert wasm_witness.calculator_for(matmul_circuit.wasm, matmul_circuit.name) is first
    other_inputs = {"a": [[2, 0], [0, 2]], "b": [[1, 2], [3, 4]]}
    for inputs in (MATMUL_INPUTS, other_inputs, MATMUL_INPUTS):
        out = both_backends(matmul_circuit, inputs, tmp_path)
        assert out["wasm"] == out["node"]


def test_compiled_module_is_cached_on_disk(matmul_circuit) -> None:
    cache = zk.ArtifactCache()
    wasm_witness.compiled_module(matmul_circuit.wasm, cache)
    wasm_witness.compiled_module(matmul_circuit.wasm, cache)
    key = wasm_witness.compiled_module_key(matmul_circuit.wasm)
    events = cache.events(kind="wasmtime", key=key)
    assert [e["event"] for e in events].count("build") == 1
    assert events[-1]["event"] == "hit"


@pytest.mark.parametrize("backend", ["node", "wasm"])
def test_failed_assertion_names_template_and_line_in_both_backends(backend, tmp_path: Path,
                                                                   ) -> None:
    path = tmp_path / "three.circom"
    path.write_text(THREE)
    circuit = zk.compile_circuit(path)
    with pytest.raises(WitnessError) as info:
        zk.calculate_witness(circuit, {"a": 4, "x": 2}, tmp_path / "bad.wtns", backend)
    assert info.value.template == "Three_0" and info.value.line == 6
    assert not (tmp_path / "bad.wtns").exists()    # no partial file left behind


LOGGING = """pragma circom 2.0.0;
template Logged() {
  signal input a;
  signal output b;
  b <== a * a;
  log("square of", a, "is", b);
}
component main = Logged();
"""


def test_circuit_log_lines_reach_the_python_log(tmp_path: Path, caplog) -> None:
    path = tmp_path / "logged.circom"
    path.write_text(LOGGING)
    circuit = zk.compile_circuit(path)
    with caplog.at_level(logging.INFO, logger=wasm_witness.__name__):
        zk.calculate_witness(circuit, {"a": 7}, tmp_path / "w.wtns", "wasm")
    assert "circuit log: square of 7 is 49" in caplog.text


def test_backend_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_WITNESS, raising=False)
    assert witness_backend() == "wasm"
    monkeypatch.setenv(ENV_WITNESS, "node")
    assert witness_backend() == "node"
    assert witness_backend("wasm") == "wasm"
    monkeypatch.setenv(ENV_WITNESS, "deno")
    with pytest.raises(InputError, match=r"'deno'.*\$SPLITVERIFY_WITNESS.*\['wasm', 'node'\]"):
        witness_backend()
