"""The compiled Poseidon and commitments (splitverify/zk/_poseidon.c) equal the Python reference
of splitverify.commit, on random inputs of every width, and the circuits' own outputs."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from splitverify import zk
from splitverify.circuitgen import circuit_path, statements
from splitverify.commit import (MAX_ARITY, P, Segment, commit, layout_elements, native,
                                poseidon, poseidon_chain)
from splitverify.errors import InputError
from splitverify.model import Dense, SplitSpec

from split_cases import random_case


def reference_commit(kind, segments, salt) -> int:
    return poseidon_chain(layout_elements(kind, segments, salt))


@pytest.mark.parametrize("n", range(1, 17))
def test_permutation_equals_the_reference_at_every_width(n):
    rng = random.Random(n)
    for inputs in ([rng.randrange(P) for _ in range(n)], [P - 1] * n, [0] * n):
        assert native().hash(inputs) == poseidon(inputs)


def test_permutation_is_circomlibs():
    assert native().hash([1, 2]) == \
        7853200120776062878684798364095072458815029376092732009249414926327459813530


@pytest.mark.parametrize("n", [1, 2, 11, 12, 13, 14, 22, 23, 24, 34, 35, 120])
def test_chain_equals_the_reference_across_link_boundaries(n):
    elements = [random.Random(n).randrange(P) for _ in range(n)]
    assert native().commit(elements, [], MAX_ARITY) == (poseidon_chain(elements), None)


def random_segment(rng: random.Random) -> Segment:
    bits = rng.choice([1, 3, 17, 22, 40, 62, 63])
    n = rng.randrange(0, 300)
    if rng.random() < 0.5:
        slack = rng.randrange(2)
        ends = [-(1 << bits), (1 << bits) - 1]
        values = [rng.choice(ends) if rng.random() < 0.1 else rng.randrange(-(1 << bits), 1 << bits)
                  for _ in range(n)]
        return Segment.signed(values, bits, slack=slack)
    return Segment.unsigned([rng.randrange(1 << bits) for _ in range(n)], bits)


@pytest.mark.parametrize("seed", range(12))
def test_commitment_equals_the_reference_on_random_segments(seed):
    rng = random.Random(seed)
    segments = [random_segment(rng) for _ in range(rng.randrange(1, 5))]
    salt = rng.randrange(1 << 300)                       # reduced mod r by both
    kind = rng.choice(["data", "message", "gradient", "weights", "state"])
    assert commit(kind, segments, salt) == reference_commit(kind, segments, salt)


def test_slots_wider_than_64_bits_and_values_at_int64_ends():
    # value_bits = 64 with the parameters' slack: 66-bit slots, offset 2^65
    top = np.iinfo(np.int64)
    seg = Segment.signed(np.array([top.min, top.max, 0, -1, 1] * 9), 64, slack=1)
    assert seg.width == 66
    assert commit("weights", [seg], 5) == reference_commit("weights", [seg], 5)


def test_empty_segments_and_tensors():
    segments = [Segment.unsigned([], 1), Segment.signed(torch.tensor([[3, -4], [5, 6]]), 4)]
    assert commit("state", segments, 1) == reference_commit("state", segments, 1)


@pytest.mark.parametrize("spec", [SplitSpec((Dense(4, 3, True),), (Dense(3, 2, False),), batch=2),
                                  SplitSpec.refnet()], ids=["tiny", "refnet"])
def test_step_statements_equal_the_reference(spec, monkeypatch):
    """Every commitment in a step's three statements, by the compiled path and by the Python
    reference (the golden tests hold the compiled path equal to the circuits' witnesses)."""
    compiled = random_case(spec, seed=11).statements
    monkeypatch.setattr(statements, "commit", reference_commit)
    reference = random_case(spec, seed=11).statements
    for kind in compiled:
        assert compiled[kind].values == reference[kind].values, kind


def test_a_value_outside_its_slot_is_named_and_nothing_is_hashed():
    good = Segment.signed([1, -1, 2], 3)
    bad = Segment.signed([0, 7, 8, -9], 3)
    for segments in ([bad], [good, bad]):
        with pytest.raises(InputError, match=r"value 8 at position 2 does not fit a 4-bit slot"):
            commit("data", segments, salt=0)
        with pytest.raises(InputError, match=r"value 8 at position 2 does not fit a 4-bit slot"):
            reference_commit("data", segments, 0)


def test_non_integer_or_oversized_values_are_refused():
    with pytest.raises(InputError, match="must be integers"):
        Segment.signed(torch.tensor([0.5, 1.0]), 8)
    with pytest.raises(InputError, match="must be integers"):
        Segment.signed([1, 2.0], 8)
    with pytest.raises(InputError, match="fit in 64 bits"):
        Segment.signed([1 << 70], 80)
    with pytest.raises(InputError, match="fit int64, not uint64"):
        Segment.unsigned(np.array([1], dtype=np.uint64), 8)
    with pytest.raises(InputError, match="beyond the compiled packer"):
        commit("data", [Segment.unsigned([1], 127)], salt=0)
    with pytest.raises(InputError, match="unknown commitment kind"):
        commit("nonsense", [Segment.unsigned([1], 2)], salt=0)


def test_a_remembered_commitment_follows_the_values_not_the_tensor():
    t = torch.tensor([1, 2, 3])
    first = commit("gradient", [Segment.signed(t, 8)], 9)
    t[1] = 5                                            # the same tensor object, new values
    second = commit("gradient", [Segment.signed(t, 8)], 9)
    assert second != first
    assert second == reference_commit("gradient", [Segment.signed([1, 5, 3], 8)], 9)
    assert commit("gradient", [Segment.signed([1, 2, 3], 8)], 9) == first
    assert commit("gradient", [Segment.signed([1, 2, 3], 8)], 10) != first   # the salt counts
    assert commit("message", [Segment.signed([1, 2, 3], 8)], 9) != first     # so does the kind
    assert commit("gradient", [Segment.signed([1, 2, 3], 8, slack=1)], 9) != first


@pytest.mark.parametrize("n", [3, 20, 36])
def test_chain_equals_the_compiled_circuit(n, isolated_cache, tmp_path):
    """Widths 4 (n = 3), 13 and 10 (n = 20), 13 and 3 (n = 36): the witness of circuits/commit.circom's
    PoseidonChain, computed by the compiled circuit, outputs what the C chain computes."""
    circuit = zk.compile_circuit(circuit_path("commit.circom"), template="PoseidonChain",
                                 params=[n], optimize="O2")
    elements = [random.Random(100 + n).randrange(P) for _ in range(n)]
    wtns = zk.calculate_witness(circuit, {"in": elements}, tmp_path / "chain.wtns")
    assert zk.read_witness(wtns)[1] == native().commit(elements, [], MAX_ARITY)[0]
