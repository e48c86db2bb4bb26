"""The ``mcl`` prover backend: Groth16 proofs from snarkjs .zkey keys in C over mcl, on every core.

A key is read once and kept loaded (its points as mcl structs, its FFT tables); each proof runs
in ``_mclprove.c`` through ctypes, which releases the GIL, on ``threads`` threads of its own.
Fresh r, s are drawn per proof from the OS CSPRNG inside C (``getrandom``), so the proof is
zero-knowledge like snarkjs' and groth16py's. The witness comes from a .wtns file or, skipping
the file, as the witness body in memory (``prove_body``).
"""

from __future__ import annotations

import ctypes
import os
import struct
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError, IntegrityError, ProofError
from .binfile import read_binfile
from .ceremony import CircuitKey
from .curve import Q, R, _load_points, _mcl, group, lem_to_int
from .devsetup import root_of_unity
from .models import Proof, PublicSignals
from .witness import FIELD_BYTES, read_witness_body

ENV_THREADS = "SPLITVERIFY_MCL_THREADS"
ENV_MEMORY_MB = "SPLITVERIFY_MCL_MEMORY_MB"
DEFAULT_MEMORY_MB = 4096

# what svp_prove times, in order (seconds of the last proof in MclProver.last_phase_s)
PHASES = ("witness_digits_and_rows", "coset_ffts_and_witness_msms", "h_msm", "assembly")
_FR, _G1, _G2 = 32, 96, 192
_COEF_BYTES = 44
_MAX_LOG_N = 27  # snarkjs switches to another coset generator at 2^28 (Fr's two-adicity)
_ERRORS = {-1: "out of memory", -3: "the OS random number generator failed",
           -4: "could not start its threads (lower $" + ENV_THREADS + ")",
           -5: "the mcl functions were not registered"}


class _Key(ctypes.Structure):
    _fields_ = [("n_vars", ctypes.c_uint32), ("n_public", ctypes.c_uint32),
                ("log_n", ctypes.c_uint32), ("domain_size", ctypes.c_uint32),
                ("n_coefs", ctypes.c_uint64), ("coefs", ctypes.c_void_p),
                ("a", ctypes.c_void_p), ("b1", ctypes.c_void_p), ("b2", ctypes.c_void_p),
                ("c", ctypes.c_void_p), ("h", ctypes.c_void_p),
                ("alpha1", ctypes.c_uint8 * _G1), ("beta1", ctypes.c_uint8 * _G1),
                ("delta1", ctypes.c_uint8 * _G1), ("beta2", ctypes.c_uint8 * _G2),
                ("delta2", ctypes.c_uint8 * _G2),
                ("omega", ctypes.c_uint8 * _FR), ("omega_inv", ctypes.c_uint8 * _FR),
                ("coset", ctypes.c_uint8 * _FR), ("n_inv", ctypes.c_uint8 * _FR),
                ("mont_r2", ctypes.c_uint8 * _FR), ("one", ctypes.c_uint8 * _FR),
                ("tw", ctypes.c_void_p), ("tw_inv", ctypes.c_void_p),
                ("coset_scale", ctypes.c_void_p)]


_lib_lock = threading.Lock()
_lib: ctypes.CDLL | None = None


def _native() -> ctypes.CDLL:
    """The C prover, with mcl's function pointers registered (once)."""
    global _lib
    with _lib_lock:
        if _lib is None:
            from . import _mclprove

            lib = ctypes.CDLL(_mclprove.__file__)
            mcl = _mcl()
            names = ["mclBnFr_mul", "mclBnFr_add", "mclBnFr_sub", "mclBnFr_setLittleEndianMod"]
            for g, fp in (("G1", "Fp"), ("G2", "Fp2")):
                names += [f"mclBn{g}_{op}" for op in ("add", "mul", "dbl", "neg", "normalize",
                                                       "isZero", "mulVec")]
                names += [f"mclBn{fp}_{op}" for op in ("mul", "add", "sub", "sqr", "inv", "neg")]
            fns = (ctypes.c_void_p * len(names))(
                *(ctypes.cast(getattr(mcl, name), ctypes.c_void_p).value for name in names))
            lib.svp_set_api(fns, group("G1").one)
            lib.svp_key_prepare.restype = ctypes.c_int
            lib.svp_prove.restype = ctypes.c_int
            lib.svp_prove.argtypes = [ctypes.POINTER(_Key), ctypes.c_char_p, ctypes.c_int,
                                      ctypes.c_char_p, ctypes.POINTER(ctypes.c_longlong),
                                      ctypes.POINTER(ctypes.c_double)]
            _lib = lib
        return _lib


def _fr_mont(value: int) -> bytes:
    """An Fr element as mcl's struct (Montgomery form, R = 2^256)."""
    return (value % R * (1 << 256) % R).to_bytes(_FR, "little")


@dataclass
class LoadedKey:
    """One proving key in memory: the mcl structs of its points and its FFT tables."""

    path: str
    struct: _Key
    buffers: list  # ctypes arrays the struct points into (kept alive here)
    n_vars: int
    n_public: int
    domain_size: int
    memory_bytes: int
    load_s: float

    def release(self) -> None:
        if self.struct.tw:
            _native().svp_key_release(ctypes.byref(self.struct))

    def __del__(self, _finalizing=sys.is_finalizing) -> None:
        # at interpreter exit the extension may already be gone; the process frees the memory
        if not _finalizing():
            self.release()


def _point(group: str, raw: bytes, what: str, zkey: Path) -> bytes:
    try:
        return _load_points(group, raw).raw[: 3 * (32 if group == "G1" else 64)]
    except ValueError as exc:
        raise IntegrityError(f"{zkey}: {what} is not a point of {group} ({exc}); the proving "
                             "key is corrupt: rebuild it") from exc


def load_key(zkey: str | Path) -> LoadedKey:
    """Read a snarkjs Groth16 .zkey and convert its points (checked on the curve) to mcl."""
    zkey = Path(zkey)
    start = time.perf_counter()
    bf = read_binfile(zkey, b"zkey")
    if struct.unpack_from("<I", bytes(bf.section(1)), 0)[0] != 1:
        raise IntegrityError(f"{zkey} is not a Groth16 key (its protocol is not 1)")
    hdr = bytes(bf.section(2))
    n8q = struct.unpack_from("<I", hdr, 0)[0]
    q = int.from_bytes(hdr[4:4 + n8q], "little")
    n8r = struct.unpack_from("<I", hdr, 4 + n8q)[0]
    r = int.from_bytes(hdr[8 + n8q:8 + n8q + n8r], "little")
    if (n8q, q, n8r, r) != (32, Q, 32, R):
        raise IntegrityError(f"{zkey} is a key for another curve than BN254 (alt_bn128)")
    pos = 8 + n8q + n8r
    n_vars, n_public, domain_size = struct.unpack_from("<III", hdr, pos)
    pos += 12
    log_n = domain_size.bit_length() - 1
    if domain_size != 1 << log_n or not 1 <= log_n <= _MAX_LOG_N or n_public + 1 > n_vars:
        raise IntegrityError(f"{zkey}: implausible header (domain {domain_size}, "
                             f"{n_vars} wires, {n_public} public)")
    g1s = {}
    for name, size in (("alpha1", 64), ("beta1", 64), ("beta2", 128), ("gamma2", 128),
                       ("delta1", 64), ("delta2", 128)):
        g1s[name] = hdr[pos:pos + size]
        pos += size

    def points(section: int, group: str, count: int, what: str) -> ctypes.Array:
        raw = bytes(bf.section(section))
        size = 64 if group == "G1" else 128
        if len(raw) != count * size:
            raise IntegrityError(f"{zkey}: the {what} section holds {len(raw)} bytes, expected "
                                 f"{count * size}: the key is corrupt, rebuild it")
        try:
            return _load_points(group, raw) if count else ctypes.create_string_buffer(1)
        except ValueError as exc:
            raise IntegrityError(f"{zkey}: {what} section: {exc}: the key is corrupt, "
                                 "rebuild it") from exc

    coefs_raw = bytes(bf.section(4))
    (n_coefs,) = struct.unpack_from("<I", coefs_raw, 0)
    if len(coefs_raw) != 4 + n_coefs * _COEF_BYTES:
        raise IntegrityError(f"{zkey}: the coefficient section has the wrong size")
    coefs = ctypes.create_string_buffer(coefs_raw[4:], max(1, n_coefs * _COEF_BYTES))
    _check_coefs(coefs_raw[4:], n_coefs, n_vars, domain_size, zkey)

    n_priv = n_vars - n_public - 1
    arrays = {"a": points(5, "G1", n_vars, "A"), "b1": points(6, "G1", n_vars, "B1"),
              "b2": points(7, "G2", n_vars, "B2"), "c": points(8, "G1", n_priv, "C"),
              "h": points(9, "G1", domain_size, "H")}
    key = _Key(n_vars=n_vars, n_public=n_public, log_n=log_n, domain_size=domain_size,
               n_coefs=n_coefs, coefs=ctypes.addressof(coefs),
               **{name: ctypes.addressof(buf) for name, buf in arrays.items()})
    for name in ("alpha1", "beta1", "delta1"):
        ctypes.memmove(getattr(key, name), _point("G1", g1s[name], name, zkey), _G1)
    for name in ("beta2", "delta2"):
        ctypes.memmove(getattr(key, name), _point("G2", g1s[name], name, zkey), _G2)
    for name, value in (("omega", root_of_unity(log_n)),
                        ("omega_inv", pow(root_of_unity(log_n), -1, R)),
                        ("coset", root_of_unity(log_n + 1)),
                        ("n_inv", pow(domain_size, -1, R)),
                        ("mont_r2", (1 << 256) % R), ("one", 1)):
        ctypes.memmove(getattr(key, name), _fr_mont(value), _FR)
    lib = _native()
    rc = lib.svp_key_prepare(ctypes.byref(key))
    if rc:
        raise ProofError(f"the mcl prover could not load {zkey}: {_ERRORS.get(rc, rc)}")
    memory = (sum(ctypes.sizeof(b) for b in arrays.values()) + ctypes.sizeof(coefs)
              + 2 * domain_size * _FR)
    return LoadedKey(str(zkey), key, [coefs, *arrays.values()], n_vars, n_public, domain_size,
                     memory, time.perf_counter() - start)


def _check_coefs(raw: bytes, n_coefs: int, n_vars: int, domain_size: int, zkey: Path) -> None:
    """Every coefficient names matrix A or B, a constraint inside the domain and a wire that
    exists: the C code indexes with them unchecked."""
    import numpy as np

    entries = np.frombuffer(raw, dtype=np.dtype([("m", "<u4"), ("c", "<u4"), ("s", "<u4"),
                                                 ("v", "V32")]), count=n_coefs)
    if n_coefs and (entries["m"].max() > 1 or entries["c"].max() >= domain_size
                    or entries["s"].max() >= n_vars):
        raise IntegrityError(f"{zkey}: a coefficient names a matrix, constraint or wire out of "
                             "range: the key is corrupt, rebuild it")


def _threads_from_env() -> int:
    text = os.environ.get(ENV_THREADS)
    if not text:
        return os.cpu_count() or 1
    if not text.isdigit() or int(text) < 1:
        raise InputError(f"${ENV_THREADS}={text!r}: expected a positive thread count")
    return int(text)


def _memory_budget_from_env() -> int:
    text = os.environ.get(ENV_MEMORY_MB)
    if not text:
        return DEFAULT_MEMORY_MB << 20
    if not text.isdigit() or int(text) < 1:
        raise InputError(f"${ENV_MEMORY_MB}={text!r}: expected a positive number of MiB")
    return int(text) << 20


class MclProver:
    """Keeps up to ``memory_budget`` bytes of loaded keys (least recently used evicted)."""

    name = "mcl"

    def __init__(self, threads: int | None = None, memory_budget: int | None = None):
        self.threads = threads or _threads_from_env()
        self.memory_budget = memory_budget or _memory_budget_from_env()
        self._keys: OrderedDict[tuple[str, float, int], LoadedKey] = OrderedDict()
        self._lock = threading.Lock()
        self.last_phase_s: dict[str, float] = {}

    def load(self, key: CircuitKey) -> LoadedKey:
        """Load ``key`` now (seconds for a large key), so that no later proof's clock pays it."""
        return self._loaded(Path(key.zkey))

    def _loaded(self, zkey: Path) -> LoadedKey:
        stat = zkey.stat()
        ident = (str(zkey.resolve()), stat.st_mtime, stat.st_size)
        with self._lock:
            if ident in self._keys:
                self._keys.move_to_end(ident)
                return self._keys[ident]
            loaded = load_key(zkey)
            if loaded.memory_bytes > self.memory_budget:
                loaded.release()
                raise InputError(
                    f"the proving key {zkey} takes {loaded.memory_bytes >> 20} MiB loaded, more "
                    f"than the mcl prover's budget of {self.memory_budget >> 20} MiB: raise "
                    f"${ENV_MEMORY_MB}")
            while self._keys and (sum(k.memory_bytes for k in self._keys.values())
                                  + loaded.memory_bytes > self.memory_budget):
                self._keys.popitem(last=False)[1].release()
            self._keys[ident] = loaded
            return loaded

    def loaded_keys(self) -> list[LoadedKey]:
        with self._lock:
            return list(self._keys.values())

    def prove(self, key: CircuitKey, wtns: str | Path) -> tuple[Proof, PublicSignals]:
        return self.prove_body(key, read_witness_body(wtns))

    def prove_body(self, key: CircuitKey, body: bytes | memoryview
                   ) -> tuple[Proof, PublicSignals]:
        """Prove from the witness body in memory (consecutive 32-byte little-endian values)."""
        loaded = self._loaded(Path(key.zkey))
        body = bytes(body)
        if len(body) != loaded.n_vars * FIELD_BYTES:
            raise InputError(f"the witness holds {len(body) // FIELD_BYTES} values but the key "
                             f"of {key.circuit.name} has {loaded.n_vars} wires: it is a witness "
                             "of another circuit")
        out = ctypes.create_string_buffer(256)
        bad = ctypes.c_longlong(-1)
        phases = (ctypes.c_double * len(PHASES))()
        rc = _native().svp_prove(ctypes.byref(loaded.struct), body, self.threads, out,
                                 ctypes.byref(bad), phases)
        if rc == -2:
            raise InputError(f"witness value {bad.value} of {key.circuit.name} is not a field "
                             "element (it is not below r): the witness is corrupt, recompute it")
        if rc:
            raise ProofError(f"the mcl prover failed on {key.circuit.name}: "
                             f"{_ERRORS.get(rc, rc)}")
        self.last_phase_s = dict(zip(PHASES, (round(t, 4) for t in phases)))
        c = [lem_to_int(out.raw[i:i + 32]) for i in range(0, 256, 32)]
        proof = Proof(pi_a=(c[0], c[1]), pi_b=((c[2], c[3]), (c[4], c[5])), pi_c=(c[6], c[7]))
        public = [int.from_bytes(body[i * FIELD_BYTES:(i + 1) * FIELD_BYTES], "little")
                  for i in range(1, loaded.n_public + 1)]
        return proof, PublicSignals(tuple(public))
