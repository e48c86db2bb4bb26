"""BN254 (alt_bn128, the curve of circom, snarkjs and Ethereum's precompiles) for the native setup.

Group arithmetic comes from mcl, through the PyPI package ``mclbn256``; that package initialises
mcl for a *different* 254-bit BN curve, so this module re-initialises it for ``BN_SNARK1``
(alt_bn128) and checks the field and group orders before anything uses it. Points travel as
snarkjs' "LEM" bytes: affine x||y, each coordinate little-endian in Montgomery form (R = 2^256),
the point at infinity as zeros.
"""

from __future__ import annotations

import ctypes
import os
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

# y^2 = x^3 + b: b = 3 on G1, b = 3 / (9 + u) = (27 − 3u) / 82 on the twist (G2), as (c0, c1).
TWIST_B = (27 * pow(82, -1, Q) % Q, -3 * pow(82, -1, Q) % Q)

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


_loaded_mcl = []          # the initialised library, once


def _mcl():
    # Initialised exactly once: a second mclBn_init while another thread multiplies points
    # resets the curve under it (a segfault with several sessions' ceremonies at once); a
    # functools.cache would let two first callers both initialise.
    if _loaded_mcl:
        return _loaded_mcl[0]
    with _init_lock:
        if _loaded_mcl:
            return _loaded_mcl[0]
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
        _loaded_mcl.append(lib)
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
    for fn in (native.svfb_build_table, native.svfb_mul_batch, native.svfb_mul_points,
               native.svfb_fr_from_le, native.svfb_fft, native.svfb_blake2b_partial):
        fn.restype = ctypes.c_int
    native.svfb_load_points.restype = ctypes.c_longlong
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


# --- Many-point operations for the phase-2 ceremony (contribute / verify) -----------------------
#
# Points still travel as LEM bytes; the C helpers turn them into mcl structs, and every batch is
# split over os.cpu_count() threads (ctypes drops the GIL for the length of each C call).

_FR_SIZE = 32
_GT_SIZE = 12 * 32
_CURVE_B = {"G1": int_to_lem(3), "G2": b"".join(int_to_lem(c) for c in TWIST_B)}


def _threads() -> int:
    return os.cpu_count() or 1


def _split(n: int, parts: int) -> list[tuple[int, int]]:
    step = -(-n // max(1, parts)) if n else 0
    return [(i, min(n, i + step)) for i in range(0, n, step)] if n else []


def _run_parallel(bounds: list[tuple[int, int]], run) -> list:
    if len(bounds) <= 1:
        return [run(*b) for b in bounds]
    with ThreadPoolExecutor(min(len(bounds), _threads())) as pool:
        return list(pool.map(lambda b: run(*b), bounds))


def _fn(name: str) -> ctypes.c_void_p:
    return ctypes.c_void_p(ctypes.cast(getattr(_mcl(), name), ctypes.c_void_p).value)


def fr_bytes(scalar: int) -> bytes:
    """An integer (reduced mod r) as mcl's Fr struct."""
    fr = ctypes.create_string_buffer(_FR_SIZE)
    if _mcl().mclBnFr_setLittleEndianMod(fr, (scalar % R).to_bytes(32, "little"), 32) != 0:
        raise ToolchainError("mcl rejected a scalar")  # pragma: no cover - 32 bytes always fit
    return fr.raw


def _fr_vector(raw: bytes, width: int) -> ctypes.Array:
    """mcl Fr structs for consecutive ``width``-byte little-endian integers."""
    n = len(raw) // width
    out = ctypes.create_string_buffer(max(1, n * _FR_SIZE))
    if _native().svfb_fr_from_le(_fn("mclBnFr_setLittleEndianMod"), raw, ctypes.c_size_t(width),
                                 ctypes.c_size_t(n), out, ctypes.c_size_t(_FR_SIZE)) != 0:
        raise ToolchainError("mcl rejected a scalar")  # pragma: no cover - widths are ≤ 32
    return out


def _field_fns(group_name: str) -> tuple[ctypes.c_void_p, ...]:
    fp = "mclBnFp" if group_name == "G1" else "mclBnFp2"
    return _fn(f"{fp}_mul"), _fn(f"{fp}_sqr"), _fn(f"{fp}_add")


def _load_points(group_name: str, lem: bytes) -> ctypes.Array:
    """mcl structs for LEM points; raises ValueError naming the first invalid point."""
    g = group(group_name)
    n = len(lem) // g.point_size
    jac = ctypes.create_string_buffer(max(1, n * 3 * g.coord))
    found = _native().svfb_load_points(*_field_fns(group_name), g.coord, lem, ctypes.c_size_t(n),
                                       Q.to_bytes(32, "little"), _CURVE_B[group_name], g.one, jac)
    if found >= 0:
        raise ValueError(f"point {found} is not on the curve")
    return jac


def lem_to_struct(group_name: str, lem: bytes) -> bytes:
    """One LEM point as mcl's struct (raises ValueError if it is not on the curve)."""
    return _load_points(group_name, lem).raw[: 3 * group(group_name).coord]


def struct_to_lem(group_name: str, struct: bytes) -> bytes:
    """An mcl struct as normalised LEM bytes (infinity as zeros)."""
    lib, g = _mcl(), group(group_name)
    if getattr(lib, f"mclBn{group_name}_isZero")(struct):
        return bytes(g.point_size)
    out = ctypes.create_string_buffer(3 * g.coord)
    getattr(lib, f"mclBn{group_name}_normalize")(out, struct)
    return out.raw[: g.point_size]


def point_mul(group_name: str, lem: bytes, scalar: int) -> bytes:
    """scalar · point, LEM in and out (the point must be in the order-r group)."""
    out = ctypes.create_string_buffer(3 * group(group_name).coord)
    getattr(_mcl(), f"mclBn{group_name}_mul")(out, lem_to_struct(group_name, lem), fr_bytes(scalar))
    return struct_to_lem(group_name, out.raw)


def g2_in_subgroup(lem: bytes) -> bool:
    """Whether a G2 point (on the curve) lies in the order-r subgroup."""
    return bool(_mcl().mclBnG2_isValidOrder(lem_to_struct("G2", lem)))


def scale_points(group_name: str, lem: bytes, scalar: int) -> bytes:
    """scalar · P for every LEM point P (infinity stays infinity), on all cores."""
    return _mul_points(group_name, lem, fr_bytes(scalar), 0)


def mul_points(group_name: str, lem: bytes, scalars: list[int]) -> bytes:
    """s_i · P_i for LEM points P_i and integers s_i (one per point), on all cores."""
    g = group(group_name)
    if len(scalars) != len(lem) // g.point_size:
        raise ValueError(f"{len(lem) // g.point_size} points but {len(scalars)} scalars")
    packed = b"".join((s % R).to_bytes(32, "little") for s in scalars)
    return _mul_points(group_name, lem, _fr_vector(packed, 32), _FR_SIZE)


def _mul_points(group_name: str, lem: bytes, frs, fr_stride: int) -> bytes:
    g = group(group_name)
    n = len(lem) // g.point_size
    out = ctypes.create_string_buffer(max(1, len(lem)))
    fns = (_fn(f"mclBn{group_name}_mul"), ctypes.c_void_p(g.ptr["isZero"]),
           ctypes.c_void_p(g.ptr["mul"]), ctypes.c_void_p(g.ptr["inv"]),
           ctypes.c_void_p(g.ptr["sqr"]))

    def run(lo: int, hi: int) -> int:
        dst = ctypes.cast(ctypes.addressof(out) + lo * g.point_size, ctypes.c_char_p)
        src = ctypes.c_char_p(lem[lo * g.point_size: hi * g.point_size])
        fr = ctypes.c_void_p(ctypes.addressof(frs) + lo * fr_stride) if fr_stride else frs
        return _native().svfb_mul_points(*fns, g.coord, src, ctypes.c_size_t(hi - lo), fr,
                                         ctypes.c_size_t(fr_stride), dst, g.one)

    # Several chunks per thread keep the threads busy when other work shares the cores.
    if any(_run_parallel(_split(n, 4 * _threads()), run)):
        raise MemoryError("multiplying the points ran out of memory")
    return out.raw[: len(lem)]


def fft(group_name: str, lem: bytes, omega: int, scale: int, threads: int | None = None) -> bytes:
    """scale · DFT over the points: out_j = scale · Σ_i ω^(ij) P_i, for 2^k LEM points (ω of
    order 2^k), natural order in and out; in C on mcl, each stage on ``threads`` threads."""
    g = group(group_name)
    n = len(lem) // g.point_size
    if n & (n - 1) or n == 0:
        raise ValueError(f"an FFT needs a power-of-two number of points, not {n}")
    twiddles = [1] * max(1, n // 2)
    for k in range(1, n // 2):
        twiddles[k] = twiddles[k - 1] * omega % R
    tw = _fr_vector(b"".join(t.to_bytes(32, "little") for t in twiddles), 32)
    out = ctypes.create_string_buffer(len(lem))
    rc = _native().svfb_fft(ctypes.c_void_p(g.ptr["add"]), _fn(f"mclBn{group_name}_sub"),
                            _fn(f"mclBn{group_name}_mul"), ctypes.c_void_p(g.ptr["isZero"]),
                            ctypes.c_void_p(g.ptr["mul"]), ctypes.c_void_p(g.ptr["inv"]),
                            ctypes.c_void_p(g.ptr["sqr"]), g.coord, lem, ctypes.c_size_t(n), tw,
                            ctypes.c_size_t(_FR_SIZE), fr_bytes(scale), out, g.one,
                            threads or _threads())
    if rc != 0:
        raise MemoryError("the group FFT ran out of memory")
    return out.raw


def blake2b_partial(data: bytes) -> bytes:
    """snarkjs' 216-byte "partial hash": the BLAKE2b-512 state after ``data`` (see the C)."""
    out = ctypes.create_string_buffer(216)
    _native().svfb_blake2b_partial(data, ctypes.c_size_t(len(data)), out)
    return out.raw


# Points per mulVec call: mcl's mulVec overflows its thread's stack above these (measured:
# G1 crashes at 2^18 points per call, G2 at 2^17), so larger sums are cut into calls this size.
MSM_CHUNK = {"G1": 1 << 16, "G2": 1 << 15}


def msm(group_name: str, lem: bytes, scalars_le: bytes, width: int) -> bytes:
    """Σ s_i · P_i (mcl's Pippenger, split over all cores) as an mcl struct; the s_i are
    consecutive ``width``-byte little-endian integers. Raises ValueError for an invalid point."""
    lib, g = _mcl(), group(group_name)
    n = len(lem) // g.point_size
    if len(scalars_le) != n * width:
        raise ValueError(f"{n} points but {len(scalars_le) // width} scalars")
    jac = _load_points(group_name, lem)
    frs = _fr_vector(scalars_le, width)
    mul_vec = getattr(lib, f"mclBn{group_name}_mulVec")
    struct_size = 3 * g.coord

    def run(lo: int, hi: int) -> bytes:
        out = ctypes.create_string_buffer(struct_size)
        mul_vec(out, ctypes.c_void_p(ctypes.addressof(jac) + lo * struct_size),
                ctypes.c_void_p(ctypes.addressof(frs) + lo * _FR_SIZE), ctypes.c_size_t(hi - lo))
        return out.raw

    total = ctypes.create_string_buffer(struct_size)  # all zeros: the point at infinity
    add = getattr(lib, f"mclBn{group_name}_add")
    parts = max(_threads(), -(-n // MSM_CHUNK[group_name]))
    for part in _run_parallel(_split(n, parts), run):
        add(total, total, part)
    return total.raw


def pairing_product_is_one(pairs: list[tuple[bytes, bytes]]) -> bool:
    """Π e(P_i, Q_i) == 1 for (G1 struct, G2 struct) pairs."""
    lib = _mcl()
    g1 = b"".join(p for p, _ in pairs)
    g2 = b"".join(q for _, q in pairs)
    miller = ctypes.create_string_buffer(_GT_SIZE)
    lib.mclBn_millerLoopVec(miller, g1, g2, ctypes.c_size_t(len(pairs)))
    result = ctypes.create_string_buffer(_GT_SIZE)
    lib.mclBn_finalExp(result, miller)
    return bool(lib.mclBnGT_isOne(result))


def g1_neg(struct: bytes) -> bytes:
    out = ctypes.create_string_buffer(len(struct))
    _mcl().mclBnG1_neg(out, struct)
    return out.raw


def same_ratio(a1: bytes, b1: bytes, a2: bytes, b2: bytes) -> bool:
    """snarkjs' sameRatio on LEM points: e(a1, b2) == e(b1, a2), none of them infinity."""
    if any(not any(p) for p in (a1, b1, a2, b2)):
        return False
    return pairing_product_is_one([(lem_to_struct("G1", a1), lem_to_struct("G2", b2)),
                                   (g1_neg(lem_to_struct("G1", b1)), lem_to_struct("G2", a2))])
