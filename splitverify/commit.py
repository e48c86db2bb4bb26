"""Poseidon commitments of tensors, computed exactly as circuits/commit.circom does.

A commitment hashes a salt, a layout tag and the packed slots of one or more tensor segments:
``PoseidonChain([salt, tag, *pack(segment 1), *pack(segment 2), …])``. A slot is a value plus
its segment's offset, in [0, 2^width); ``floor(253 / width)`` slots share a field element, so
packing is injective once every slot is range-checked (which the circuits do). The tag encodes
the commitment's kind and every segment's length and width, so tensors of different shapes
never share a preimage. The Poseidon permutation is circomlib's (light-poseidon, whose
constants are circomlibjs'; tests check it equals the circuit's output).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from light_poseidon_python import Hasher

from .errors import InputError
from .zk.curve import R as P

PACK_BITS = 253
MAX_ARITY = 12  # light-poseidon's widest circomlib-compatible instance (t = 13)

# Commitment kinds (part of the tag): what a commitment is of.
KINDS = {"data": 1, "message": 2, "gradient": 3, "weights": 4, "state": 5, "claims": 6}


@dataclass(frozen=True)
class Segment:
    """One tensor's slots: ``values[i] + offset`` must lie in [0, 2^width)."""
    values: tuple[int, ...]
    width: int
    offset: int

    @classmethod
    def signed(cls, values: Iterable[int], bits: int, slack: int = 0) -> "Segment":
        """Signed integers in [−2^bits, 2^bits): slot v + 2^(bits+slack), width bits+1+slack.
        Parameters use slack 1, so an update old − step with |step| < 2^bits can be applied to
        the packed form without a borrow between slots."""
        return cls(tuple(int(v) for v in values), bits + 1 + slack, 1 << (bits + slack))

    @classmethod
    def unsigned(cls, values: Iterable[int], width: int) -> "Segment":
        return cls(tuple(int(v) for v in values), width, 0)

    def slots(self) -> list[int]:
        top = 1 << self.width
        out = []
        for i, v in enumerate(self.values):
            s = v + self.offset
            if not 0 <= s < top:
                raise InputError(f"value {v} at position {i} does not fit a {self.width}-bit "
                                 f"slot with offset {self.offset}; the fixed-point spec bounds "
                                 "it (see QuantSpec)")
            out.append(s)
        return out


def per_element(width: int) -> int:
    return PACK_BITS // width


def pack(slots: Sequence[int], width: int) -> list[int]:
    per = per_element(width)
    return [sum(s << (width * k) for k, s in enumerate(slots[e:e + per]))
            for e in range(0, len(slots), per)]


@lru_cache(maxsize=None)
def _hasher(arity: int) -> Hasher:
    return Hasher(arity)


def poseidon(inputs: Sequence[int]) -> int:
    if not 1 <= len(inputs) <= MAX_ARITY:
        raise InputError(f"Poseidon takes 1 to {MAX_ARITY} inputs, not {len(inputs)}")
    return int(_hasher(len(inputs)).hash_bytes_be([(int(x) % P).to_bytes(32, "big")
                                                   for x in inputs]), 16)


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


def commit(kind: str, segments: Sequence[Segment], salt: int) -> int:
    """The commitment of ``segments`` under ``salt`` (a field element; random to hide them)."""
    return poseidon_chain(layout_elements(kind, segments, salt))
