"""The Python face of ``_poseidon.c``: circomlib's Poseidon and packed commitments in C.

The C code holds no Poseidon constant: :mod:`splitverify.commit` reads them from circomlib
(``constants_of(t)``) and this module hands them over in Montgomery form, one blob per width t,
built the first time a width is used. One C call hashes a whole commitment (packing included),
so a RefNet step's fifteen commitments cost fifteen calls.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable, Sequence
from functools import cache

import numpy as np

from ..errors import InputError, ToolchainError
from .curve import R

MAX_WIDTH = 17          # t = inputs + 1; circomlib has constants for t = 2 … 17
MAX_SLOT_BITS = 126     # the C packer's slots are signed 128-bit integers
_MONT = 1 << 256
Constants = tuple[list[int], list[int], list[list[int]], list[list[int]]]


@cache
def _library() -> ctypes.CDLL:
    try:
        from . import _poseidon
    except ImportError as exc:
        raise ToolchainError(f"the compiled Poseidon (splitverify.zk._poseidon) is missing: {exc}."
                             " Rebuild splitverify with `scripts/setup.sh` or `pip install -e .`"
                             ) from exc
    lib = ctypes.CDLL(_poseidon.__file__)
    lib.svpos_hash.restype = ctypes.c_int
    lib.svpos_hash.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p]
    lib.svpos_commit.restype = ctypes.c_longlong
    lib.svpos_commit.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t,
                                 ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                                 ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t,
                                 ctypes.c_char_p]
    return lib


def _mont_bytes(values: Sequence[int]) -> bytes:
    return b"".join((v * _MONT % R).to_bytes(32, "little") for v in values)


def _blob(t: int, constants: Constants) -> bytes:
    """The layout ``params_of`` in _poseidon.c reads: t, partial rounds, then C, S, M, P."""
    c, s, m, p = constants
    n_p = len(c) - 8 * t
    return (np.array([t, n_p], dtype=np.uint64).tobytes() + _mont_bytes(c) + _mont_bytes(s)
            + _mont_bytes([v for row in m for v in row])
            + _mont_bytes([v for row in p for v in row]))


class NativePoseidon:
    """Poseidon hashes and commitments in C, on the constants ``constants_of(t)`` gives."""

    def __init__(self, constants_of: Callable[[int], Constants]):
        self._constants_of = constants_of
        self._blobs: dict[int, ctypes.Array] = {}
        self._table = (ctypes.c_void_p * (MAX_WIDTH + 1))()
        self._lock = threading.Lock()

    def _need(self, widths: set[int]) -> None:
        with self._lock:
            for t in sorted(widths - self._blobs.keys()):
                blob = ctypes.create_string_buffer(_blob(t, self._constants_of(t)))
                self._blobs[t] = blob                     # keeps the buffer alive
                self._table[t] = ctypes.addressof(blob)

    def hash(self, inputs: Sequence[int]) -> int:
        """circomlib's ``Poseidon(n)`` of 1 ≤ n ≤ 16 integers (reduced mod r)."""
        if not 1 <= len(inputs) < MAX_WIDTH:
            raise InputError(f"Poseidon takes 1 to {MAX_WIDTH - 1} inputs, not {len(inputs)}")
        self._need({len(inputs) + 1})
        out = ctypes.create_string_buffer(32)
        data = b"".join((int(v) % R).to_bytes(32, "little") for v in inputs)
        if _library().svpos_hash(self._table, data, len(inputs), out) != 0:
            raise ToolchainError("the compiled Poseidon refused its inputs")
        return int.from_bytes(out.raw, "little")

    def commit(self, head: Sequence[int], segments: Sequence[tuple[np.ndarray, int, int]],
               arity: int) -> tuple[int, int | None]:
        """PoseidonChain (of ``arity``) over ``head`` (reduced mod r) and the packed slots of
        ``segments`` — (int64 values, width, offset) each, 1 ≤ width ≤ 126, 0 ≤ offset <
        2^126. Returns (the hash, None), or (0, i) when the value at flat position i of the
        segments' concatenated values does not fit its slot (nothing is hashed then)."""
        if not 2 <= arity < MAX_WIDTH:
            raise InputError(f"a Poseidon chain links 2 to {MAX_WIDTH - 1} inputs, not {arity}")
        n = len(head)
        for values, width, offset in segments:
            if not 1 <= width <= MAX_SLOT_BITS or not 0 <= offset < 1 << MAX_SLOT_BITS:
                raise InputError(f"a slot of width {width} with offset {offset} is beyond the "
                                 f"compiled packer (widths 1 to {MAX_SLOT_BITS} bits)")
            n += -(-len(values) // (253 // width))
        if n == 0:
            raise InputError("nothing to hash")
        self._need(_chain_widths(n, arity))
        values = (np.concatenate([v for v, _, _ in segments]) if segments
                  else np.zeros(0, dtype=np.int64))
        lengths = np.array([len(v) for v, _, _ in segments], dtype=np.int64)
        widths = np.array([w for _, w, _ in segments], dtype=np.int32)
        offsets = np.array([(o & (2 ** 64 - 1), o >> 64) for _, _, o in segments],
                           dtype=np.uint64)
        data = b"".join((int(v) % R).to_bytes(32, "little") for v in head)
        out = ctypes.create_string_buffer(32)
        rc = _library().svpos_commit(self._table, data, len(head), values.ctypes.data,
                                     lengths.ctypes.data, widths.ctypes.data,
                                     offsets.ctypes.data, len(segments), arity, out)
        if rc >= 0:
            return 0, int(rc)
        if rc != -1:
            raise ToolchainError(f"the compiled commitment failed (code {rc}) on {n} elements")
        return int.from_bytes(out.raw, "little"), None


def _chain_widths(n: int, arity: int) -> set[int]:
    """The Poseidon widths t a chain over n elements uses: its head, full links, last link."""
    first = min(n, arity)
    out = {first + 1}
    rest = n - first
    if rest:
        if rest >= arity - 1:
            out.add(arity + 1)
        if rest % (arity - 1):
            out.add(rest % (arity - 1) + 2)
    return out
