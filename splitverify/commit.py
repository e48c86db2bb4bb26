"""Poseidon commitments of tensors, computed exactly as circuits/commit.circom does.

A commitment hashes a salt, a layout tag and the packed slots of one or more tensor segments:
``PoseidonChain([salt, tag, *pack(segment 1), *pack(segment 2), …])``. A slot is a value plus
its segment's offset, in [0, 2^width); ``floor(253 / width)`` slots share a field element, so
packing is injective once every slot is range-checked (which the circuits do). The tag encodes
the commitment's kind and every segment's length and width, so tensors of different shapes
never share a preimage. Poseidon is circomlib's: ``poseidon`` runs circomlib's optimized
permutation (``PoseidonEx`` in poseidon.circom) on the constants read from circomlib's own
``poseidon_constants.circom`` — the file the circuits compile — so there is one source of the
constants; tests check the values equal the circuits' outputs and circomlib's test vector.

``commit`` (what the protocol calls, every message) packs and hashes in C
(:mod:`splitverify.zk.native_poseidon`, on these same constants); the Python ``poseidon``,
``poseidon_chain`` and ``layout_elements`` are its reference, and tests hold the two equal.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np
import torch

from .errors import InputError, ToolchainError
from .zk.curve import R as P
from .zk.native_poseidon import NativePoseidon
from .zk.toolchain import find_toolchain

PACK_BITS = 253
MAX_ARITY = 12  # chains use Poseidon(≤ 12): the width the cost model and circuits assume
FULL_ROUNDS = 8
PARTIAL_ROUNDS = [56, 57, 56, 60, 60, 63, 64, 63, 60, 66, 60, 65, 70, 60, 64, 68]  # by t − 2

# Commitment kinds (part of the tag): what a commitment is of.
KINDS = {"data": 1, "message": 2, "gradient": 3, "weights": 4, "state": 5, "claims": 6,
         "labels": 7}


def _int64_vector(values) -> np.ndarray:
    """``values`` (a tensor, an array, any iterable of integers) as a flat int64 array."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    elif not isinstance(values, np.ndarray):
        values = list(values)
        if any(not isinstance(v, (int, np.integer)) for v in values):
            raise InputError("tensor values to commit must be integers (fixed point, see QuantSpec)")
        try:
            values = np.array(values, dtype=np.int64)
        except OverflowError as exc:
            raise InputError("tensor values to commit must fit in 64 bits (see QuantSpec)"
                             ) from exc
    if values.dtype.kind not in "bi" and not (values.dtype.kind == "u" and values.itemsize < 8):
        raise InputError(f"tensor values to commit must be integers that fit int64, not "
                         f"{values.dtype} (fixed point, see QuantSpec)")
    out = np.array(values.reshape(-1), dtype=np.int64)   # a copy: a tensor may change later
    out.flags.writeable = False
    return out


@dataclass(frozen=True, eq=False)
class Segment:
    """One tensor's slots: ``values[i] + offset`` must lie in [0, 2^width)."""
    values: np.ndarray  # flat, int64, read-only
    width: int
    offset: int

    @classmethod
    def signed(cls, values, bits: int, slack: int = 0) -> "Segment":
        """Signed integers in [−2^bits, 2^bits): slot v + 2^(bits+slack), width bits+1+slack.
        Parameters use slack 1, so an update old − step with |step| < 2^bits can be applied to
        the packed form without a borrow between slots."""
        return cls(_int64_vector(values), bits + 1 + slack, 1 << (bits + slack))

    @classmethod
    def unsigned(cls, values, width: int) -> "Segment":
        return cls(_int64_vector(values), width, 0)

    def misfit(self, position: int) -> InputError:
        v = int(self.values[position])
        return InputError(f"value {v} at position {position} does not fit a {self.width}-bit "
                          f"slot with offset {self.offset}; the fixed-point spec bounds it "
                          "(see QuantSpec)")

    def slots(self) -> list[int]:
        top = 1 << self.width
        out = []
        for i, v in enumerate(self.values.tolist()):
            s = v + self.offset
            if not 0 <= s < top:
                raise self.misfit(i)
            out.append(s)
        return out


def per_element(width: int) -> int:
    return PACK_BITS // width


def pack(slots: Sequence[int], width: int) -> list[int]:
    per = per_element(width)
    return [sum(s << (width * k) for k, s in enumerate(slots[e:e + per]))
            for e in range(0, len(slots), per)]


@lru_cache(maxsize=1)
def _constants_text() -> str:
    path = find_toolchain().circomlib / "poseidon_constants.circom"
    if not path.is_file():
        raise ToolchainError(f"{path} is missing: run `npm ci` in the repository")
    return path.read_text()


@lru_cache(maxsize=None)
def _constants(t: int) -> tuple[list[int], list[int], list[list[int]], list[list[int]]]:
    """circomlib's POSEIDON_C/S/M/P(t), parsed from poseidon_constants.circom."""
    text = _constants_text()

    def table(name: str) -> list[int]:
        start = text.index(f"function {name}(t)")
        end = text.find("function ", start + 1)
        body = text[start:end if end > 0 else len(text)]
        m = re.search(rf"t\s*==\s*{t}\s*\)(.*?)(?:\}}\s*else|\Z)", body, re.S)
        if m is None:
            raise ToolchainError(f"circomlib has no {name} constants for t = {t}")
        return [int(h, 16) for h in re.findall(r"0x[0-9a-fA-F]+", m.group(1))]

    c, s_, m_, p_ = (table(n) for n in ("POSEIDON_C", "POSEIDON_S", "POSEIDON_M", "POSEIDON_P"))
    n_p = PARTIAL_ROUNDS[t - 2]
    if len(c) != t * FULL_ROUNDS + n_p or len(s_) != n_p * (2 * t - 1) or \
            len(m_) != t * t or len(p_) != t * t:
        raise ToolchainError(f"circomlib's Poseidon constants for t = {t} have unexpected sizes")
    return c, s_, [m_[i * t:(i + 1) * t] for i in range(t)], [p_[i * t:(i + 1) * t] for i in range(t)]


def _mix(state: list[int], m: list[list[int]]) -> list[int]:
    t = len(state)
    return [sum(m[j][i] * state[j] for j in range(t)) % P for i in range(t)]


def poseidon(inputs: Sequence[int]) -> int:
    """circomlib's ``Poseidon(n)`` (PoseidonEx with initial state 0, one output)."""
    if not 1 <= len(inputs) <= 16:
        raise InputError(f"Poseidon takes 1 to 16 inputs, not {len(inputs)}")
    t = len(inputs) + 1
    c, s, m, p_mat = _constants(t)
    half, n_p = FULL_ROUNDS // 2, PARTIAL_ROUNDS[t - 2]
    state = [(x + c[i]) % P for i, x in enumerate([0, *(int(v) % P for v in inputs)])]
    for r in range(half):                       # first full rounds (the last mixes with P)
        state = [pow(x, 5, P) for x in state]
        state = [(x + c[(r + 1) * t + i]) % P for i, x in enumerate(state)]
        state = _mix(state, p_mat if r == half - 1 else m)
    for r in range(n_p):                        # partial rounds, sparse matrices
        first = (pow(state[0], 5, P) + c[(half + 1) * t + r]) % P
        row = s[(2 * t - 1) * r:(2 * t - 1) * (r + 1)]
        head = (row[0] * first + sum(row[i] * state[i] for i in range(1, t))) % P
        state = [head] + [(state[i] + first * row[t + i - 1]) % P for i in range(1, t)]
    for r in range(half - 1):                   # last full rounds
        state = [pow(x, 5, P) for x in state]
        state = [(x + c[(half + 1) * t + n_p + r * t + i]) % P for i, x in enumerate(state)]
        state = _mix(state, m)
    state = [pow(x, 5, P) for x in state]
    return sum(m[j][0] * state[j] for j in range(t)) % P


def poseidon_chain(elements: Sequence[int]) -> int:
    """PoseidonChain of circuits/commit.circom."""
    if not elements:
        raise InputError("nothing to hash")
    state = poseidon(elements[:MAX_ARITY])
    for i in range(MAX_ARITY, len(elements), MAX_ARITY - 1):
        state = poseidon([state, *elements[i:i + MAX_ARITY - 1]])
    return state


def tag(kind: str, layout: Sequence[tuple[int, int]]) -> int:
    """Layout tag: kind in the low byte, then (length, width) of each segment, 40 bits each."""
    if kind not in KINDS:
        raise InputError(f"unknown commitment kind {kind!r}; one of {sorted(KINDS)}")
    value = KINDS[kind]
    for i, (length, width) in enumerate(layout):
        value |= ((length << 8) | width) << (8 + 40 * i)
    if value >= 1 << PACK_BITS:
        raise InputError("too many segments in one commitment")
    return value


def layout_elements(kind: str, segments: Sequence[Segment], salt: int) -> list[int]:
    elements = [int(salt) % P, tag(kind, [(len(s.values), s.width) for s in segments])]
    for seg in segments:
        elements += pack(seg.slots(), seg.width)
    return elements


@cache
def native() -> NativePoseidon:
    """The compiled Poseidon, on circomlib's constants as ``poseidon`` reads them."""
    return NativePoseidon(_constants)


# A step commits to the same tensors several times (the client's weights three times: before
# its forward, before and after its update, the next step's "before" being this one's "after";
# the data, state and gradient twice): recent commitments are remembered by a digest of all
# they depend on (a SHA-256 of the values: ~10 µs where a RefNet weight commitment costs ms).
_RECENT_SIZE = 64
_recent: OrderedDict[bytes, int] = OrderedDict()
_recent_lock = threading.Lock()


def _preimage_digest(kind: str, segments: Sequence[Segment], salt: int) -> bytes:
    h = hashlib.sha256(f"{kind}|{int(salt) % P}".encode())   # SHA extensions: ~3× blake2b here
    for seg in segments:
        h.update(f"|{len(seg.values)},{seg.width},{seg.offset}|".encode())
        h.update(seg.values.data)
    return h.digest()


def commit(kind: str, segments: Sequence[Segment], salt: int) -> int:
    """The commitment of ``segments`` under ``salt`` (a field element; random to hide them):
    ``poseidon_chain(layout_elements(kind, segments, salt))``, packed and hashed in C."""
    key = _preimage_digest(kind, segments, salt)
    with _recent_lock:
        if key in _recent:
            _recent.move_to_end(key)
            return _recent[key]
    value = _commit_native(kind, segments, salt)
    with _recent_lock:
        _recent[key] = value
        while len(_recent) > _RECENT_SIZE:
            _recent.popitem(last=False)
    return value


def _commit_native(kind: str, segments: Sequence[Segment], salt: int) -> int:
    head = [int(salt) % P, tag(kind, [(len(s.values), s.width) for s in segments])]
    value, misfit = native().commit(head, [(s.values, s.width, s.offset) for s in segments],
                                    MAX_ARITY)
    if misfit is not None:
        for seg in segments:
            if misfit < len(seg.values):
                raise seg.misfit(misfit)
            misfit -= len(seg.values)
        raise ToolchainError("the compiled packer reported a value past the segments' end")
    return value
