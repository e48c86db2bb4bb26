"""The Circom of a :class:`~splitverify.model.Dense` layer and its constraint costs.

Its products are claimed in the witness and checked with the session's Freivalds challenge
(``circuits/dense.circom``): the forward accumulator ``acc = x·Wᵀ + b·2^s`` (``DenseCheck``), and
in the backward pass the weight-gradient accumulator ``dYᵀ·X`` and the input-gradient
accumulator ``dY·W`` (``MatMulCheck``). The generator does the rest (rescale, ReLU, updates).
Every function takes the main template being built (``generator._Main``) as ``m``.
"""

from __future__ import annotations

from ...model import Dense
from .base import ParameterUpdate, Tensor, poseidon_cost

INCLUDES = ("dense.circom",)


# -- constraint costs (after --O2; tests/core/circuitgen/test_circuit_costs.py) ----------------

def matmul_check_cost(rows: int, inner: int, cols: int) -> int:
    return inner * (cols - 1) + rows * inner + rows * (cols - 1)


def dense_check_cost(batch: int, n_in: int, n_out: int) -> int:
    """MatMulCheck with the bias as an extra row whose multiplier is a constant."""
    return (n_in + 1) * (n_out - 1) + batch * n_in + batch * (n_out - 1)


def dense_naive_cost(batch: int, n_in: int, n_out: int) -> int:
    return batch * n_out * n_in


def dense_optimized_cost(batch: int, n_in: int, n_out: int) -> int:
    """DenseOptimized: the Freivalds check, the Poseidon seed over three commitments and the
    challenge powers (r[1] = seed is free)."""
    return matmul_check_cost(batch, n_in, n_out) + poseidon_cost(3) + max(n_out - 2, 0)


# -- the layer's pieces -----------------------------------------------------------------------

def challenge_powers(layer: Dense) -> int:
    """How many powers of the challenge its checks read."""
    return max(layer.n_in, layer.n_out)


def forward_check(m, i: int, layer: Dense, x: Tensor, acc: Tensor) -> None:
    """Layer ``i``'s claimed accumulator ``acc`` equals ``x·Wᵀ + b·2^s``."""
    q, batch = m.q, m.spec.batch
    w = Tensor(f"w{i}", (layer.n_out, layer.n_in))
    d = f"dense{i}"
    m.decl.append(f"component {d} = DenseCheck({batch}, {layer.n_in}, {layer.n_out}, "
                  f"{q.scale});")
    m.cost["products"] += dense_check_cost(batch, layer.n_in, layer.n_out)
    m.loop(batch * layer.n_in, f"{d}.x[k \\ {layer.n_in}][k % {layer.n_in}] <== "
           f"{x.flat()};", into=m.checks)
    m.loop(w.size, f"{d}.w[k \\ {layer.n_in}][k % {layer.n_in}] <== {w.flat()};",
           into=m.checks)
    m.loop(layer.n_out, f"{d}.bias[k] <== b{i}[k];", f"{d}.r[k] <== powers.r[k];",
           into=m.checks)
    m.loop(acc.size, f"{d}.acc[k \\ {layer.n_out}][k % {layer.n_out}] <== "
           f"{acc.flat()};", into=m.checks)


def weight_gradient(m, i: int, layer: Dense, dy: Tensor, x: Tensor) -> list[ParameterUpdate]:
    """The claimed ``dYᵀ·X`` of layer ``i`` (input ``gw{i}``), checked; returns how W and b are
    updated from it and from ``dY``."""
    batch, n_in, n_out = m.spec.batch, layer.n_in, layer.n_out
    m.cost["products"] += matmul_check_cost(n_out, batch, n_in)
    gw = m.input(f"gw{i}", n_out, n_in)
    c = f"wgrad{i}"
    m.decl.append(f"component {c} = MatMulCheck({n_out}, {batch}, {n_in});")
    m.loop(dy.size, f"{c}.a[k % {n_out}][k \\ {n_out}] <== {dy.flat()};", into=m.checks)
    m.loop(batch * n_in, f"{c}.b[k \\ {n_in}][k % {n_in}] <== {x.flat()};", into=m.checks)
    m.loop(gw.size, f"{c}.c[k \\ {n_in}][k % {n_in}] <== {gw.flat()};", into=m.checks)
    m.loop(n_in, f"{c}.r[k] <== powers.r[k];", into=m.checks)
    return [ParameterUpdate("w", gw.size, m.q.weight_update_shift, gw.flat, claim=True),
            ParameterUpdate("b", n_out, m.q.lr_shift,
                            lambda k: " + ".join(f"{dy.name}[{r}][{k}]" for r in range(batch)),
                            claim=False)]


def input_gradient_check(m, i: int, layer: Dense, dy: Tensor, gx: Tensor) -> None:
    """Layer ``i``'s claimed input-gradient accumulator ``gx`` equals ``dY·W``."""
    batch, n_in, n_out = m.spec.batch, layer.n_in, layer.n_out
    m.cost["products"] += matmul_check_cost(batch, n_out, n_in)
    c = f"xgrad{i}"
    m.decl.append(f"component {c} = MatMulCheck({batch}, {n_out}, {n_in});")
    m.loop(dy.size, f"{c}.a[k \\ {n_out}][k % {n_out}] <== {dy.flat()};", into=m.checks)
    m.loop(n_out * n_in, f"{c}.b[k \\ {n_in}][k % {n_in}] <== "
           f"w{i}[k \\ {n_in}][k % {n_in}];", into=m.checks)
    m.loop(gx.size, f"{c}.c[k \\ {n_in}][k % {n_in}] <== {gx.flat()};", into=m.checks)
    m.loop(n_in, f"{c}.r[k] <== powers.r[k];", into=m.checks)
