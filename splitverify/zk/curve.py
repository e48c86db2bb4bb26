"""BN254 (alt_bn128, the curve of circom, snarkjs and Ethereum's precompiles) for the native setup.

Group arithmetic comes from mcl, through the PyPI package ``mclbn256``; that package initialises
mcl for a *different* 254-bit BN curve, so this module re-initialises it for ``BN_SNARK1``
(alt_bn128) and checks the field and group orders before anything uses it. Points travel as
snarkjs' "LEM" bytes: affine x||y, each coordinate little-endian in Montgomery form (R = 2^256),
the point at infinity as zeros.
"""

from __future__ import annotations

import ctypes
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache

from ..errors import ToolchainError

# Field and group orders of alt_bn128.
Q = 21888242871839275222246405745257275088696311157297823662689037894645226208583
R = 21888242871839275222246405745257275088548364400416034343698204186575808495617
MONT_R = (1 << 256) % Q
MONT_R_INV = pow(MONT_R, -1, Q)

G1_GENERATOR = (1, 2)
G2_GENERATOR = (
    (10857046999023057135944570762232829481370756359578518086990519993285655852781,
     11559732032986387107991004021392285783925812861821192530917403151452391805634),
    (8495653923123431417604973247489272438418190587263600148770280649306958101930,
     4082367875863433681332203403145435568316851327593401208105741076214120093531),
)

_MCL_BN_SNARK1 = 4
_init_lock = threading.Lock()


@dataclass(frozen=True)
class _Group:
    name: str
    coord: int  # bytes per coordinate: 32 (Fp) or 64 (Fp2)
    ptr: dict[str, int]
    one: bytes  # the coordinate "1" in Montgomery form
    generator: bytes  # mcl struct of the generator, normalised

    @property
    def point_size(self) -> int:
        return 2 * self.coord


@cache
def _mcl():
    with _init_lock:
        try:
            from mclbn256 import mclbn256 as mcl_module
        except (ImportError, OSError) as exc:  # pragma: no cover - dependency is pinned
            raise ToolchainError(
                "the native BN254 library (PyPI `mclbn256`) could not be loaded: "
                f"{exc}. Reinstall splitverify with `pip install -e .`."
            ) from exc
        lib = mcl_module.lib
        if lib.mclBn_init(_MCL_BN_SNARK1, mcl_module.MCLBN_COMPILED_TIME_VAR) != 0:
            raise ToolchainError("mcl refused to initialise the alt_bn128 curve (BN_SNARK1)")
        buf = ctypes.create_string_buffer(100)
        lib.mclBn_getCurveOrder(buf, 100)
        r = int(buf.value)
        lib.mclBn_getFieldOrder(buf, 100)
        q = int(buf.value)
        if (q, r) != (Q, R):
            raise ToolchainError(f"mcl reports a curve other than alt_bn128 (q={q}, r={r})")
        return lib


def _set_str(lib, fn: str, text: str) -> bytes:
    size = {"mclBnG1_setStr": 96, "mclBnG2_setStr": 288}[fn]
    raw = ctypes.create_string_buffer(size)
    data = text.encode()
    if getattr(lib, fn)(raw, data, len(data), 10) != 0:
        raise ToolchainError(f"mcl rejected the point {text!r}")
    return raw.raw


@cache
def group(name: str) -> _Group:
    lib = _mcl()
    prefix, fp = ("mclBnG1", "mclBnFp") if name == "G1" else ("mclBnG2", "mclBnFp2")
    ptr = {op: ctypes.cast(getattr(lib, f"{prefix}_{op}"), ctypes.c_void_p).value
           for op in ("add", "dbl", "isZero")}
    ptr.update({op: ctypes.cast(getattr(lib, f"{fp}_{op}"), ctypes.c_void_p).value
                for op in ("mul", "inv", "sqr")})
    one32 = MONT_R.to_bytes(32, "little")
    if name == "G1":
        gen = _set_str(lib, "mclBnG1_setStr", "1 1 2")
        return _Group("G1", 32, ptr, one32, gen)
    (x0, x1), (y0, y1) = G2_GENERATOR
    gen = _set_str(lib, "mclBnG2_setStr", f"1 {x0} {x1} {y0} {y1}")
    return _Group("G2", 64, ptr, one32 + bytes(32), gen)


@cache
def _native():
    from . import _fixedbase

    native = ctypes.CDLL(_fixedbase.__file__)
    for fn in (native.svfb_build_table, native.svfb_mul_batch):
        fn.restype = ctypes.c_int
    return native


class FixedBase:
    """Multiplies one fixed point by many scalars: a windowed table, then w-bit digit additions.

    ``mul_many`` splits the batch over threads; the C loop runs without the GIL.
    """

    def __init__(self, group_name: str, base: bytes | None = None, window: int = 12,
                 threads: int | None = None):
        import os

        self.g = group(group_name)
        self.window = window
        self.nwin = -(-256 // window)
        self.threads = threads or os.cpu_count() or 1
        per = (1 << window) - 1
        self._table = ctypes.create_string_buffer(self.nwin * per * 3 * self.g.coord)
        base_struct = base if base is not None else self.g.generator
        p = self.g.ptr
        rc = _native().svfb_build_table(
            ctypes.c_void_p(p["add"]), ctypes.c_void_p(p["dbl"]), ctypes.c_void_p(p["isZero"]),
            ctypes.c_void_p(p["mul"]), ctypes.c_void_p(p["inv"]), ctypes.c_void_p(p["sqr"]),
            self.g.coord, base_struct, window, self.nwin, self._table, self.g.one)
        if rc != 0:
            raise MemoryError("fixed-base table allocation failed")

    def mul_many(self, scalars: list[int]) -> bytes:
        """Affine LEM bytes of s·base for every s (reduced mod r first)."""
        n = len(scalars)
        size = self.g.point_size
        out = ctypes.create_string_buffer(n * size)
        packed = b"".join((s % R).to_bytes(32, "little") for s in scalars)
        zero = bytes(3 * self.g.coord)
        p = self.g.ptr
        native = _native()

        def run(lo: int, hi: int) -> int:
            if lo >= hi:
                return 0
            dst = ctypes.cast(ctypes.addressof(out) + lo * size, ctypes.c_char_p)
            src = ctypes.c_char_p(packed[lo * 32: hi * 32])
            return native.svfb_mul_batch(
                ctypes.c_void_p(p["add"]), ctypes.c_void_p(p["dbl"]),
                ctypes.c_void_p(p["isZero"]), ctypes.c_void_p(p["mul"]),
                ctypes.c_void_p(p["inv"]), ctypes.c_void_p(p["sqr"]), self.g.coord,
                self._table, self.window, self.nwin, src, ctypes.c_size_t(hi - lo), dst,
                self.g.one, zero)

        step = -(-n // self.threads) if n else 0
        bounds = [(i, min(n, i + step)) for i in range(0, n, step)] if n else []
        if len(bounds) <= 1:
            codes = [run(*b) for b in bounds]
        else:
            with ThreadPoolExecutor(len(bounds)) as pool:
                codes = list(pool.map(lambda b: run(*b), bounds))
        if any(codes):
            raise MemoryError("fixed-base multiplication ran out of memory")
        return out.raw


def lem_to_int(raw: bytes) -> int:
    """A Montgomery-form little-endian coordinate as a plain integer."""
    return int.from_bytes(raw, "little") * MONT_R_INV % Q


def int_to_lem(value: int) -> bytes:
    return (value * MONT_R % Q).to_bytes(32, "little")


def g1_lem_to_affine(raw: bytes) -> tuple[int, int] | None:
    if not any(raw):
        return None
    return lem_to_int(raw[:32]), lem_to_int(raw[32:64])


def g2_lem_to_affine(raw: bytes):
    if not any(raw):
        return None
    c = [lem_to_int(raw[i:i + 32]) for i in range(0, 128, 32)]
    return (c[0], c[1]), (c[2], c[3])


def lem_to_uncompressed(raw: bytes, coord: int) -> bytes:
    """snarkjs' "U" encoding (what its circuit hash covers): big-endian plain coordinates; for
    G2 each Fp2 element is written c1 then c0; infinity stays all zeros (wasmcurves' LEMtoU)."""
    if not any(raw):
        return raw
    parts = []
    for off in range(0, len(raw), coord):
        limbs = [lem_to_int(raw[off + i: off + i + 32]).to_bytes(32, "big")
                 for i in range(0, coord, 32)]
        parts.extend(reversed(limbs))
    return b"".join(parts)
