"""In-process witness calculation: the circuit's circom WASM run under wasmtime.

This follows the protocol of the ``witness_calculator.js`` that circom 2.2.3 writes next to the
``.wasm`` (and that snarkjs' ``wtns calculate`` runs in node): the module imports
``runtime.{exceptionHandler, printErrorMessage, writeBufferMessage, showSharedRWMemory}``;
``init(sanityCheck)``; each input signal is found by the FNV-1a 64 hash of its name
(``getInputSignalSize(hMSB, hLSB)``) and set one field element at a time (the element written
to the shared read/write memory, then ``setInputSignal(hMSB, hLSB, i)``); the circuit computes
as its inputs arrive; ``getWitness(i)`` then puts witness value ``i`` in the shared memory.

Why not node: a ``node`` process pays its start, snarkjs' load, a compile of the WASM and a
JSON round trip on every witness (seconds for RefNet's circuits); here the compiled module is
cached on disk and its instance kept warm per circuit and process.

Why a helper module: the protocol takes one call per input element and one per witness
element (150k for RefNet's ClientBackward), and a call from Python into wasmtime costs
~100 µs, so the loops would take seconds. ``HELPER_WAT`` runs those two loops inside WASM: it
imports the circuit's memory and its ``setInputSignal``/``getWitness`` exports and copies
field elements between the shared memory and a buffer of its own (multi-memory), which Python
then reads or writes in one piece.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import wasmtime

from ..errors import InputError, ToolchainError, WitnessError
from .cache import ArtifactCache, digest
from .curve import R

log = logging.getLogger(__name__)

# The exception codes of circom 2.2.3's witness_calculator.js (exceptionHandler).
CIRCOM_EXCEPTIONS = {
    1: "Signal not found",
    2: "Too many signals set",
    3: "Signal already set",
    4: "Assert Failed",
    5: "Not enough memory",
    6: "Input signal array access exceeds the size",
    7: "Out of bounds array access",
}

_TEMPLATE_LINE_RE = re.compile(r"Error in template (\S+) line: (\d+)")

FNV_OFFSET, FNV_PRIME, U64 = 0xCBF29CE484222325, 0x100000001B3, (1 << 64) - 1
WASM_PAGE = 65536

# The two loops of the protocol, in WASM (see the module docstring). Memory 0 is the
# circuit's, memory 1 the helper's buffer of consecutive field elements.
HELPER_WAT = r"""
(module
  (import "circuit" "memory" (memory $circuit 1))
  (import "circuit" "setInputSignal" (func $setInputSignal (param i32 i32 i32)))
  (import "circuit" "getWitness" (func $getWitness (param i32)))
  (memory $buffer (export "buffer") 0)
  ;; buffer[i] -> shared memory, setInputSignal(msb, lsb, i), for i < count
  (func (export "setInputs") (param $shared i32) (param $n8 i32) (param $msb i32)
                             (param $lsb i32) (param $count i32)
    (local $i i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        (memory.copy $circuit $buffer
          (local.get $shared) (i32.mul (local.get $i) (local.get $n8)) (local.get $n8))
        (call $setInputSignal (local.get $msb) (local.get $lsb) (local.get $i))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next))))
  ;; getWitness(i), shared memory -> buffer[i], for i < count
  (func (export "readWitness") (param $shared i32) (param $n8 i32) (param $count i32)
    (local $i i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        (call $getWitness (local.get $i))
        (memory.copy $buffer $circuit
          (i32.mul (local.get $i) (local.get $n8)) (local.get $shared) (local.get $n8))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))))
"""


def fnv1a_64(name: str) -> int:
    """circom's signal-name hash (witness_calculator.js ``fnvHash``: FNV-1a over the char codes)."""
    h = FNV_OFFSET
    for code in map(ord, name):
        h = ((h ^ code) * FNV_PRIME) & U64
    return h


def witness_error(circuit_name: str, report: str) -> WitnessError:
    """A WitnessError from a witness calculator's report, naming the template and line that
    failed when the report has them (circom's "Error in template T line: N")."""
    match = _TEMPLATE_LINE_RE.search(report)
    if match:
        return WitnessError(f"the inputs violate circuit {circuit_name}: an assertion failed in "
                            f"template {match.group(1)} at line {match.group(2)}", match.group(1),
                            int(match.group(2)))
    return WitnessError(f"witness calculation for {circuit_name} failed:\n{report}")


class _CircomAbort(Exception):
    """Raised inside the host's exceptionHandler to unwind the WASM; carries circom's code."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


_ENGINE_LOCK = threading.Lock()
_ENGINE: wasmtime.Engine | None = None


def _engine() -> wasmtime.Engine:
    """One engine per process, Cranelift's default config: its code computes RefNet's
    witnesses ~2.5× faster than the Winch baseline compiler's, and its slow compile (~12 s
    for ClientBackward on 2 cores) is paid once per machine thanks to ``compiled_module``."""
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None:
            _ENGINE = wasmtime.Engine()
        return _ENGINE


def compiled_module_key(wasm: Path) -> str:
    """The cache key of ``wasm``'s machine code: its content and the compiler's version."""
    return digest({"wasm_sha256": hashlib.sha256(wasm.read_bytes()).hexdigest(),
                   "wasmtime": version("wasmtime"), "config": "default"})


def compiled_module(wasm: Path, cache: ArtifactCache | None = None) -> wasmtime.Module:
    """The machine code of ``wasm``, compiled once and kept in the artifact cache (kind
    ``wasmtime``). Deserialising runs native code from the cache, which is trusted like every
    other cached artifact (keys, compiled circuits)."""
    cache = cache or ArtifactCache()
    engine = _engine()
    key = compiled_module_key(wasm)

    def build(out: Path) -> dict:
        try:
            module = wasmtime.Module.from_file(engine, str(wasm))
        except wasmtime.WasmtimeError as exc:
            raise ToolchainError(f"wasmtime could not compile {wasm}: {exc}") from exc
        (out / "module.cwasm").write_bytes(module.serialize())
        return {"wasm": str(wasm), "wasmtime": version("wasmtime")}

    entry = cache.get_or_build("wasmtime", key, build)
    try:
        return wasmtime.Module.deserialize_file(engine, str(entry.path / "module.cwasm"))
    except wasmtime.WasmtimeError as exc:
        raise ToolchainError(f"wasmtime could not load its compiled {wasm} from "
                             f"{entry.path}: {exc}; delete that folder to recompile") from exc


@dataclass
class _Messages:
    """What the circuit reported through printErrorMessage / writeBufferMessage (circom's
    ``log()``), collected as witness_calculator.js does."""
    errors: list[str] = field(default_factory=list)
    line: list[str] = field(default_factory=list)

    def add_log_part(self, text: str) -> None:
        if text == "\n":                     # every log() ends with a lone "\n"
            log.info("circuit log: %s", " ".join(self.line))
            self.line.clear()
        else:
            self.line.append(text)


class CircomWitnessCalculator:
    """One circuit's WASM, instantiated once; ``calculate`` may be called many times (circom's
    ``init`` resets the instance). Not re-entrant: calls are serialised by a lock."""

    def __init__(self, wasm: Path, name: str, cache: ArtifactCache | None = None):
        self.name = name
        self._lock = threading.Lock()
        self._messages = _Messages()
        module = compiled_module(wasm, cache)
        self._store = wasmtime.Store(_engine())
        exports = wasmtime.Instance(self._store, module, self._imports(module)).exports(self._store)
        self._exports = exports
        self._memory: wasmtime.Memory = exports["memory"]
        self._n8 = 4 * self._call("getFieldNumLen32")
        self._shared = self._call("getSharedRWMemoryStart")
        self._call("getRawPrime")
        prime = int.from_bytes(self._memory.read(self._store, self._shared,
                                                 self._shared + self._n8), "little")
        if prime != R:
            raise ToolchainError(f"{wasm} computes over another field (prime {prime}); "
                                 "splitverify proves over BN254")
        self.witness_size = self._call("getWitnessSize")
        self.input_size = self._call("getInputSize")
        helper = wasmtime.Instance(
            self._store, wasmtime.Module(_engine(), HELPER_WAT),
            [self._memory, exports["setInputSignal"], exports["getWitness"]]).exports(self._store)
        self._set_inputs_loop, self._read_witness_loop = helper["setInputs"], helper["readWitness"]
        self._buffer: wasmtime.Memory = helper["buffer"]
        # The largest input signal is at most the witness (both count field elements).
        self._buffer.grow(self._store, -(-self.witness_size * self._n8 // WASM_PAGE))

    # -- host side of the runtime imports ------------------------------------------------------

    def _imports(self, module: wasmtime.Module) -> list[wasmtime.Func]:
        i32 = wasmtime.ValType.i32()
        host = {
            "exceptionHandler": (wasmtime.FuncType([i32], []), self._exception_handler),
            "printErrorMessage": (wasmtime.FuncType([], []),
                                  lambda: self._messages.errors.append(self._message())),
            "writeBufferMessage": (wasmtime.FuncType([], []),
                                   lambda: self._messages.add_log_part(self._message())),
            "showSharedRWMemory": (wasmtime.FuncType([], []),
                                   lambda: self._messages.add_log_part(str(self._shared_value()))),
        }
        funcs = []
        for item in module.imports:
            if item.module != "runtime" or item.name not in host:
                raise ToolchainError(f"the circuit's WASM imports {item.module}.{item.name}, "
                                     "which circom 2.2.3's runtime does not provide")
            ty, fn = host[item.name]
            funcs.append(wasmtime.Func(self._store, ty, fn))
        return funcs

    @staticmethod
    def _exception_handler(code: int) -> None:
        raise _CircomAbort(code)

    def _message(self) -> str:
        chars = []
        while (c := self._call("getMessageChar")) != 0:
            chars.append(chr(c))
        return "".join(chars)

    def _shared_value(self) -> int:
        return int.from_bytes(self._memory.read(self._store, self._shared,
                                                self._shared + self._n8), "little")

    def _call(self, export: str, *args: int) -> int:
        return self._exports[export](self._store, *args)

    # -- the protocol ---------------------------------------------------------------------------

    def calculate(self, inputs: dict[str, list[int]], sanity_check: bool = False) -> bytes:
        """The witness for ``inputs`` (main's input signals by name, flattened, each element
        in [0, r)), as ``witness_size`` little-endian field elements — the body of a .wtns
        file. WitnessError names the template and line of a failed assertion.
        ``sanity_check`` is circom's init flag (snarkjs' ``wtns calculate`` leaves it off)."""
        with self._lock:
            self._messages = _Messages()
            try:
                self._call("init", int(sanity_check))
                self._set_inputs(inputs)
                self._read_witness_loop(self._store, self._shared, self._n8, self.witness_size)
            except _CircomAbort as abort:
                reason = CIRCOM_EXCEPTIONS.get(abort.code, f"Unknown error (code {abort.code})")
                raise witness_error(self.name, f"{reason}.\n" + "\n".join(self._messages.errors)
                                    ) from None
            except wasmtime.Trap as trap:
                raise witness_error(self.name, f"the circuit's WASM trapped: {trap}") from trap
            return bytes(self._buffer.read(self._store, 0, self.witness_size * self._n8))

    def _set_inputs(self, inputs: dict[str, list[int]]) -> None:
        count = 0
        for name, values in inputs.items():
            h = fnv1a_64(name)
            msb, lsb = _i32(h >> 32), _i32(h & 0xFFFFFFFF)
            size = self._call("getInputSignalSize", msb, lsb)
            if size < 0:
                raise InputError(f"circuit {self.name} has no input signal {name!r}")
            if size != len(values):
                raise InputError(f"input {name!r} of circuit {self.name} takes {size} values, "
                                 f"got {len(values)}")
            if values:
                self._buffer.write(self._store, b"".join(v.to_bytes(self._n8, "little")
                                                         for v in values), 0)
                self._set_inputs_loop(self._store, self._shared, self._n8, msb, lsb, len(values))
            count += len(values)
        if count < self.input_size:
            raise InputError(f"circuit {self.name} takes {self.input_size} input values, "
                             f"only {count} were given")


def _i32(value: int) -> int:
    """An unsigned 32-bit hash half as the signed i32 that a WASM parameter holds."""
    return value - (1 << 32) if value >= 1 << 31 else value


_CALCULATORS: dict[tuple[str, int, int], CircomWitnessCalculator] = {}
_CALCULATORS_LOCK = threading.Lock()


def calculator_for(wasm: Path, name: str) -> CircomWitnessCalculator:
    """The warm calculator of ``wasm``, made on first use (keyed by path, mtime and size, so a
    recompiled circuit gets a fresh one)."""
    stat = wasm.stat()
    ident = (str(wasm.resolve()), stat.st_mtime_ns, stat.st_size)
    with _CALCULATORS_LOCK:
        if ident not in _CALCULATORS:
            _CALCULATORS[ident] = CircomWitnessCalculator(wasm, name)
        return _CALCULATORS[ident]
