"""Witnesses: inputs → .wtns through the circuit's WASM, and reading, editing and checking them."""

from __future__ import annotations

import json
import os
import struct
import tempfile
from collections.abc import Mapping
from pathlib import Path

from ..errors import InputError, IntegrityError
from .binfile import BinWriter, read_binfile
from .compile import CompiledCircuit
from .curve import R
from .toolchain import find_toolchain, tail
from .wasm_witness import calculator_for, witness_error

FIELD_BYTES = 32


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


def field_inputs(circuit: CompiledCircuit, inputs: Mapping[str, object]) -> dict[str, list[int]]:
    """Check names and shapes against the circuit and map signed ints into the field
    (x < 0 becomes p − |x|): main's inputs by name, each flattened in row-major order."""
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
    return {name: _flatten(name, inputs[name], expected[name]) for name in expected}


def normalize_inputs(circuit: CompiledCircuit, inputs: Mapping[str, object]) -> dict[str, object]:
    """``field_inputs`` as a JSON-ready dict (values as decimal strings), snarkjs' input.json."""
    return {name: [str(x) for x in values]
            for name, values in field_inputs(circuit, inputs).items()}


ENV_WITNESS = "SPLITVERIFY_WITNESS"
WITNESS_BACKENDS = ("wasm", "node")


def witness_backend(name: str | None = None) -> str:
    """``name``, else ``$SPLITVERIFY_WITNESS``, else ``wasm`` (in process, under wasmtime);
    ``node`` runs snarkjs' ``wtns calculate`` in a node process."""
    chosen = name or os.environ.get(ENV_WITNESS) or "wasm"
    if chosen not in WITNESS_BACKENDS:
        raise InputError(f"unknown witness backend {chosen!r} (from "
                         f"{'the call' if name else '$' + ENV_WITNESS}): choose one of "
                         f"{list(WITNESS_BACKENDS)}")
    return chosen


def prepare_witness(circuit: CompiledCircuit, backend: str | None = None) -> None:
    """Make ``circuit``'s witness calculator ready now: for ``wasm``, compile (or load from the
    cache) and instantiate its module, which takes 5–20 s the first time on a 2-core machine,
    so that a later witness (e.g. inside a request with a timeout) does not pay it. Nothing
    to do for ``node``, which starts a process per witness anyway."""
    if witness_backend(backend) == "wasm":
        calculator_for(circuit.wasm, circuit.name)


def calculate_witness(circuit: CompiledCircuit, inputs: Mapping[str, object],
                      out: str | Path, backend: str | None = None) -> Path:
    """Run the circuit's WASM on ``inputs`` and write the witness to ``out`` (the same bytes
    from either backend, see ``witness_backend``).

    Raises WitnessError naming the template and line when an assertion or constraint of the
    circuit fails for these inputs."""
    values = field_inputs(circuit, inputs)
    out = Path(out)
    if witness_backend(backend) == "wasm":
        out.write_bytes(wtns_bytes(calculator_for(circuit.wasm, circuit.name).calculate(values)))
        return out
    return _node_witness(circuit, values, out)


def calculate_witness_body(circuit: CompiledCircuit, inputs: Mapping[str, object]) -> bytes:
    """The witness of ``inputs`` in memory, through the in-process WASM: the body of a .wtns
    (consecutive 32-byte little-endian values), for a prover that takes it without a file."""
    return calculator_for(circuit.wasm, circuit.name).calculate(field_inputs(circuit, inputs))


def _node_witness(circuit: CompiledCircuit, values: dict[str, list[int]], out: Path) -> Path:
    payload = {name: [str(x) for x in field] for name, field in values.items()}
    with tempfile.TemporaryDirectory(prefix="sv-wtns-") as tmp:
        input_path = Path(tmp) / "input.json"
        input_path.write_text(json.dumps(payload))
        proc = find_toolchain().run("snarkjs", ["wtns", "calculate", circuit.wasm, input_path, out],
                                    check=False)
    if proc.returncode != 0 or not out.is_file():
        out.unlink(missing_ok=True)       # snarkjs may leave a partial file behind
        raise witness_error(circuit.name, tail(proc))
    return out


def read_witness_body(path: str | Path) -> memoryview:
    """The body of a .wtns file: its values as consecutive 32-byte little-endian integers."""
    bf = read_binfile(path, b"wtns")
    header = bytes(bf.section(1))
    (n8,) = struct.unpack_from("<I", header, 0)
    prime = int.from_bytes(header[4:4 + n8], "little")
    (total,) = struct.unpack_from("<I", header, 4 + n8)
    if prime != R or n8 != FIELD_BYTES:
        raise IntegrityError(f"{path}: witness is for another field")
    body = bf.section(2)
    if len(body) != total * n8:
        raise IntegrityError(f"{path}: witness section holds {len(body)} bytes, expected {total * n8}")
    return body


def read_witness(path: str | Path, start: int = 0, count: int | None = None) -> list[int]:
    """The witness values of a .wtns file; with ``start``/``count`` only those entries (the
    public signals are entries 1 … n_public: converting all 150k of a RefNet witness to ints
    costs ~0.1 s)."""
    body = read_witness_body(path)
    n8 = FIELD_BYTES
    total = len(body) // n8
    stop = total if count is None else start + count
    if not 0 <= start <= stop <= total:
        raise IntegrityError(f"{path}: witness has {total} entries, not [{start}, {stop})")
    return [int.from_bytes(body[i:i + n8], "little") for i in range(start * n8, stop * n8, n8)]


def wtns_bytes(body: bytes) -> bytes:
    """A .wtns file (version 2, as circom's witness_calculator.js writes it) around ``body``,
    the witness as consecutive 32-byte little-endian field elements."""
    if len(body) % FIELD_BYTES:
        raise IntegrityError(f"a witness body of {len(body)} bytes is not a whole number of "
                             f"{FIELD_BYTES}-byte field elements")
    w = BinWriter(b"wtns", version=2)
    w.add(1, struct.pack("<I", FIELD_BYTES) + R.to_bytes(FIELD_BYTES, "little")
          + struct.pack("<I", len(body) // FIELD_BYTES))
    w.add(2, body)
    return w.to_bytes()


def write_witness(path: str | Path, values: list[int]) -> None:
    Path(path).write_bytes(wtns_bytes(b"".join((v % R).to_bytes(FIELD_BYTES, "little")
                                               for v in values)))


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
