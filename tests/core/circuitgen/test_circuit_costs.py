"""Constraint counts: the cost model of circuits.generator (used by the benchmark's
breakdown) equals what circom --O2 compiles, template by template and for whole circuits; and
the optimized dense product is ≤ 0.12 × the naive one at RefNet's 64→32, batch 16."""

from __future__ import annotations

import pytest

from splitverify import zk
from splitverify.circuitgen import KINDS, circuit_path, generator
from splitverify.commit import poseidon_chain


def compile_o2(file: str, template: str, params):
    return zk.compile_circuit(circuit_path(file), template=template, params=params,
                              optimize="O2")


@pytest.mark.parametrize("n", [1, 12, 13, 24])
def test_poseidon_chain_cost_and_value(n, isolated_cache, tmp_path):
    c = compile_o2("commit.circom", "PoseidonChain", [n])
    assert c.info.n_constraints == generator.chain_cost(n)
    elements = [(7 ** i + 3) % (1 << 250) for i in range(n)]
    wtns = zk.calculate_witness(c, {"in": elements}, tmp_path / "w.wtns")
    assert zk.read_witness(wtns)[1] == poseidon_chain(elements)  # the output, main's first wire


def test_matmul_and_dense_check_costs(isolated_cache):
    assert compile_o2("dense.circom", "MatMulCheck", [3, 4, 5]).info.n_constraints == \
        generator.matmul_check_cost(3, 4, 5)
    assert compile_o2("dense.circom", "DenseCheck", [3, 4, 5, 65536]).info.n_constraints == \
        generator.dense_check_cost(3, 4, 5)


def test_dense_naive_and_optimized(isolated_cache, tmp_path):
    naive = compile_o2("dense.circom", "DenseNaive", [3, 4, 5])
    optimized = compile_o2("dense.circom", "DenseOptimized", [3, 4, 5])
    assert naive.info.n_constraints == generator.dense_naive_cost(3, 4, 5)
    assert optimized.info.n_constraints == generator.dense_optimized_cost(3, 4, 5)
    x = [[1, -2, 3, 0], [4, 5, -6, 7], [0, 0, 1, -1]]
    w = [[2, 0, -1, 3], [1, 1, 1, 1], [-3, 2, 0, 5], [0, -4, 2, 1], [6, 0, 0, -2]]
    acc = [[sum(a * b for a, b in zip(row, wr)) for wr in w] for row in x]
    wtns = zk.calculate_witness(naive, {"x": x, "w": w}, tmp_path / "n.wtns")
    r = zk.curve.R
    assert zk.read_witness(wtns)[1:16] == [v % r for row in acc for v in row]
    zk.calculate_witness(optimized, {"x": x, "w": w, "acc": acc, "commitments": [1, 2, 3]},
                         tmp_path / "o.wtns")


def test_optimized_dense_meets_the_ratio_at_refnet_shape():
    ratio = generator.dense_optimized_cost(16, 64, 32) / generator.dense_naive_cost(16, 64, 32)
    assert ratio <= 0.12, ratio


def test_cost_model_equals_compiled_circuits(tiny_circuits):
    for kind in KINDS:
        breakdown = generator.cost_breakdown(tiny_circuits.spec, kind)
        assert sum(breakdown.values()) == tiny_circuits.circuit(kind).info.n_constraints, kind
