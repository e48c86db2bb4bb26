"""Witnesses: inputs → .wtns through the circuit's WASM, and reading, editing and checking them."""

from __future__ import annotations

import json
import re
import struct
import tempfile
from collections.abc import Mapping
from pathlib import Path

from ..errors import InputError, IntegrityError, WitnessError
from .binfile import BinWriter, read_binfile
from .compile import CompiledCircuit
from .curve import R
from .toolchain import find_toolchain, tail

_TEMPLATE_LINE_RE = re.compile(r"Error in template (\S+) line: (\d+)")


def _flatten(name: str, value, shape: tuple[int, ...]) -> list[int]:
    if isinstance(value, bool) or not isinstance(value, (int, list, tuple)):
        raise InputError(f"input {name!r}: expected an integer or nested lists of integers, "
                         f"got {type(value).__name__}")
    if not shape:
        if not isinstance(value, int):
            raise InputError(f"input {name!r} is a single value; got a list")
        if not -R < value < R:
            raise InputError(f"input {name!r} = {value} is outside the field (|x| must be < r)")
        return [value % R]
    if not isinstance(value, (list, tuple)) or len(value) != shape[0]:
        got = len(value) if isinstance(value, (list, tuple)) else "a single value"
        raise InputError(f"input {name!r}: expected {shape[0]} entries along this axis "
                         f"(shape {list(shape)}), got {got}")
    return [x for i, item in enumerate(value) for x in _flatten(f"{name}[{i}]", item, shape[1:])]


def normalize_inputs(circuit: CompiledCircuit, inputs: Mapping[str, object]) -> dict[str, object]:
    """Check names and shapes against the circuit and map signed ints into the field
    (x < 0 becomes p − |x|). Returns a JSON-ready dict (values as decimal strings)."""
    if not isinstance(inputs, Mapping):
        raise InputError(f"inputs must be an object mapping signal names to values, not a "
                         f"{type(inputs).__name__}")
    expected = circuit.input_shapes
    unknown = sorted(set(inputs) - set(expected))
    missing = sorted(set(expected) - set(inputs))
    if unknown or missing:
        listing = ", ".join(f"{k}{list(v) if v else ''}" for k, v in sorted(expected.items()))
        raise InputError(f"inputs do not match circuit {circuit.name}: unknown {unknown}, "
                         f"missing {missing}; it takes: {listing}")
    return {name: [str(x) for x in _flatten(name, inputs[name], expected[name])]
            for name in expected}


def calculate_witness(circuit: CompiledCircuit, inputs: Mapping[str, object],
                      out: str | Path) -> Path:
    """Run the circuit's WASM on ``inputs`` and write the witness to ``out``.

    Raises WitnessError naming the template and line when an assertion or constraint of the
    circuit fails for these inputs."""
    payload = normalize_inputs(circuit, inputs)
    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="sv-wtns-") as tmp:
        input_path = Path(tmp) / "input.json"
        input_path.write_text(json.dumps(payload))
        proc = find_toolchain().run("snarkjs", ["wtns", "calculate", circuit.wasm, input_path, out],
                                    check=False)
    if proc.returncode != 0 or not out.is_file():
        text = tail(proc)
        m = _TEMPLATE_LINE_RE.search(text)
        if m:
            raise WitnessError(f"the inputs violate circuit {circuit.name}: an assertion failed in "
                               f"template {m.group(1)} at line {m.group(2)}", m.group(1),
                               int(m.group(2)))
        raise WitnessError(f"witness calculation for {circuit.name} failed:\n{text}")
    return out


def read_witness(path: str | Path) -> list[int]:
    bf = read_binfile(path, b"wtns")
    header = bytes(bf.section(1))
    (n8,) = struct.unpack_from("<I", header, 0)
    prime = int.from_bytes(header[4:4 + n8], "little")
    (count,) = struct.unpack_from("<I", header, 4 + n8)
    if prime != R:
        raise IntegrityError(f"{path}: witness is for another field")
    body = bytes(bf.section(2))
    if len(body) != count * n8:
        raise IntegrityError(f"{path}: witness section holds {len(body)} bytes, expected {count * n8}")
    return [int.from_bytes(body[i:i + n8], "little") for i in range(0, len(body), n8)]


def write_witness(path: str | Path, values: list[int]) -> None:
    w = BinWriter(b"wtns", version=2)
    w.add(1, struct.pack("<I", 32) + R.to_bytes(32, "little") + struct.pack("<I", len(values)))
    w.add(2, b"".join((v % R).to_bytes(32, "little") for v in values))
    Path(path).write_bytes(w.to_bytes())


def public_signals(circuit: CompiledCircuit, witness: list[int]) -> list[int]:
    """The public signals (outputs, then public inputs) of a witness, in snarkjs order."""
    return witness[1:1 + circuit.info.n_public]


def check_witness(circuit: CompiledCircuit, wtns: str | Path) -> tuple[bool, str]:
    """``snarkjs wtns check``: does the witness satisfy every R1CS constraint?
    Returns (ok, snarkjs' report)."""
    proc = find_toolchain().run("snarkjs", ["wtns", "check", circuit.r1cs, wtns], check=False)
    text = tail(proc)
    ok = proc.returncode == 0 and "WITNESS IS CORRECT" in text.upper()
    return ok, text
