"""The Circom of a :class:`~splitverify.model.Conv2d` layer and its constraint costs.

A convolution is Dense's arithmetic on the im2col view (``Conv2d.patch_index``, the one map
from the layer's geometry to its wiring), so its three products are Freivalds-checked claims
like Dense's (``circuits/dense.circom``); the views are wiring, no constraints:

* forward: ``acc = patches·Wᵀ + b·2^s`` — ``DenseCheck`` over (batch·positions) rows;
* weight gradient: ``dW = dYᵀ·patches`` — ``MatMulCheck`` (out × batch·positions × in·k²);
* input gradient: the claimed ``dX`` accumulator (the generator's ``gx``, already in the
  transcript and bounded by its rescale) is checked as *one* product, the transposed
  convolution: row (sample, input position), column (out channel, tap) of the left matrix is
  the dY entry of the output position whose tap reads that input (0 where none does), the
  right matrix is W rearranged (out·k² × in). That is col2im(dY·W) without a claimed
  intermediate: a claimed dY·W would need its own commitment in the transcript (and range
  checks to make it injective) before the challenge, costing more than it saves.

Entries that are constant zeros (padding taps, taps that read no input) cost nothing after
circom's --O2: the cost model counts the non-constant entries.
"""

from __future__ import annotations

import torch

from ...model import Conv2d
from .base import ParameterUpdate, Tensor, poseidon_cost
from .dense import matmul_check_cost

INCLUDES = ("dense.circom",)


# -- constraint costs (after --O2; tests/core/circuitgen/test_circuit_costs.py) ----------------

def _taps(layer: Conv2d) -> int:
    """Non-padding entries of one sample's im2col view."""
    return int((layer.patch_index() >= 0).sum())


def _taps_off_first_column(layer: Conv2d) -> int:
    return int((layer.patch_index()[:, 1:] >= 0).sum())


def forward_cost(layer: Conv2d, batch: int) -> int:
    """DenseCheck(batch·positions, in·k², out): the bias row and every non-padding patch entry
    (the bias column is a constant)."""
    rows, inner, cols = batch * layer.positions, layer.patch_size, layer.out_channels
    return (inner + 1) * (cols - 1) + batch * _taps(layer) + rows * (cols - 1)


def weight_gradient_cost(layer: Conv2d, batch: int) -> int:
    """MatMulCheck(out, batch·positions, in·k²), the patches on the right: b·r products only
    for non-padding entries past the first column."""
    rows, inner, cols = layer.out_channels, batch * layer.positions, layer.patch_size
    return batch * _taps_off_first_column(layer) + rows * inner + rows * (cols - 1)


def input_gradient_cost(layer: Conv2d, batch: int) -> int:
    """MatMulCheck(batch·in positions, out·k², in), the transposed convolution's view of dY on
    the left: one product per (output position, tap) that reads an input, per out channel."""
    inner, cols = layer.out_channels * layer.kernel ** 2, layer.in_channels
    rows = batch * layer.height * layer.width
    return inner * (cols - 1) + batch * layer.out_channels * _taps(layer) // layer.in_channels \
        + rows * (cols - 1)


def conv_naive_cost(layer: Conv2d, batch: int) -> int:
    """One constraint per product, as circomlib-ml's Conv2D (padding taps excluded)."""
    return batch * _taps(layer) * layer.out_channels


def conv_optimized_cost(layer: Conv2d, batch: int) -> int:
    """The forward check on its own (``ConvOptimized`` of circuits/conv.circom), as
    dense_optimized_cost: the Freivalds check, a Poseidon seed over three commitments and the
    out_channels challenge powers it reads (r[1] = seed is free)."""
    return forward_cost(layer, batch) + poseidon_cost(3) + max(layer.out_channels - 2, 0)


def peer_template_params(layer: Conv2d, batch: int, bias_scale: int) -> list[int]:
    """The parameters of circuits/conv.circom's ConvNaive and ConvOptimized for ``layer``."""
    return [batch, layer.in_channels, layer.out_channels, layer.height, layer.width,
            layer.kernel, layer.stride, layer.padding, bias_scale]


# -- the layer's pieces -----------------------------------------------------------------------

def challenge_powers(layer: Conv2d) -> int:
    return max(layer.out_channels, layer.patch_size, layer.in_channels)


def _patch_lines(target: str, layer: Conv2d, batch: int, x: Tensor) -> list[str]:
    """``target[row][col] <== x entry`` for the im2col view of x (rows sample·positions)."""
    index = layer.patch_index().tolist()
    lines = []
    for b in range(batch):
        for p, row in enumerate(index):
            for col, source in enumerate(row):
                value = f"{x.name}[{b}][{source}]" if source >= 0 else "0"
                lines.append(f"{target}[{b * layer.positions + p}][{col}] <== {value};")
    return lines


def _rows_loop(target: str, layer: Conv2d, batch: int, t: Tensor) -> list[str]:
    """``target[sample·positions + p][o] <== t[sample][o·positions + p]`` (NCHW → rows)."""
    positions, out = layer.positions, layer.out_channels
    return [f"for (var k = 0; k < {batch * positions * out}; k++) {{",
            f"    {target}[(k \\ {positions * out}) * {positions} + k % {positions}]"
            f"[(k \\ {positions}) % {out}] <== {t.name}[k \\ {positions * out}]"
            f"[k % {positions * out}];", "}"]


def forward_check(m, i: int, layer: Conv2d, x: Tensor, acc: Tensor) -> None:
    """Layer ``i``'s claimed accumulator ``acc`` (batch × out·positions, NCHW) equals
    ``patches(x)·Wᵀ + b·2^s``."""
    batch, out, ckk = m.spec.batch, layer.out_channels, layer.patch_size
    rows = batch * layer.positions
    d = f"conv{i}"
    m.decl.append(f"component {d} = DenseCheck({rows}, {ckk}, {out}, {m.q.scale});")
    m.cost["products"] += forward_cost(layer, batch)
    m.checks += _patch_lines(f"{d}.x", layer, batch, x)
    m.loop(out * ckk, f"{d}.w[k \\ {ckk}][k % {ckk}] <== w{i}[k \\ {ckk}][k % {ckk}];",
           into=m.checks)
    m.loop(out, f"{d}.bias[k] <== b{i}[k];", f"{d}.r[k] <== powers.r[k];", into=m.checks)
    m.checks += _rows_loop(f"{d}.acc", layer, batch, acc)


def weight_gradient(m, i: int, layer: Conv2d, dy: Tensor, x: Tensor) -> list[ParameterUpdate]:
    """The claimed ``dYᵀ·patches`` of layer ``i`` (input ``gw{i}``), checked; returns how W and
    b are updated from it and from dY (b's gradient: dY summed over samples and positions)."""
    batch, out, ckk, positions = m.spec.batch, layer.out_channels, layer.patch_size, \
        layer.positions
    m.cost["products"] += weight_gradient_cost(layer, batch)
    gw = m.input(f"gw{i}", out, ckk)
    c = f"wgrad{i}"
    m.decl.append(f"component {c} = MatMulCheck({out}, {batch * positions}, {ckk});")
    m.checks.append(f"for (var k = 0; k < {batch * out * positions}; k++) {{")
    m.checks.append(f"    {c}.a[(k \\ {positions}) % {out}][(k \\ {out * positions}) * "
                    f"{positions} + k % {positions}] <== {dy.flat()};")
    m.checks.append("}")
    m.checks += _patch_lines(f"{c}.b", layer, batch, x)
    m.loop(gw.size, f"{c}.c[k \\ {ckk}][k % {ckk}] <== {gw.flat()};", into=m.checks)
    m.loop(ckk, f"{c}.r[k] <== powers.r[k];", into=m.checks)
    return [ParameterUpdate("w", gw.size, m.q.weight_update_shift, gw.flat, claim=True),
            ParameterUpdate("b", out, m.q.lr_shift,
                            lambda o: " + ".join(f"{dy.name}[{b}][{o} * {positions} + {p}]"
                                                 for b in range(batch)
                                                 for p in range(positions)),
                            claim=False)]


def _transposed_view(layer: Conv2d) -> torch.Tensor:
    """in positions (H·W) × (out-channel-free) k² taps: the output position whose tap reads
    that input, −1 where none does (from ``patch_index``'s first input channel)."""
    kk = layer.kernel * layer.kernel
    view = torch.full((layer.height * layer.width, kk), -1, dtype=torch.int64)
    for p, row in enumerate(layer.patch_index()[:, :kk].tolist()):
        for tap, source in enumerate(row):
            if source >= 0:
                view[source, tap] = p
    return view


def input_gradient_check(m, i: int, layer: Conv2d, dy: Tensor, gx: Tensor) -> None:
    """Layer ``i``'s claimed input-gradient accumulator ``gx`` (batch × in·H·W, NCHW) equals
    col2im(dY·W), checked as the transposed convolution's product (module docstring)."""
    batch, out, cin, kk = m.spec.batch, layer.out_channels, layer.in_channels, layer.kernel ** 2
    hw, positions = layer.height * layer.width, layer.positions
    m.cost["products"] += input_gradient_cost(layer, batch)
    c = f"xgrad{i}"
    m.decl.append(f"component {c} = MatMulCheck({batch * hw}, {out * kk}, {cin});")
    view = _transposed_view(layer).tolist()
    for b in range(batch):
        for pos, taps in enumerate(view):
            for o in range(out):
                for tap, p in enumerate(taps):
                    value = f"{dy.name}[{b}][{o * positions + p}]" if p >= 0 else "0"
                    m.checks.append(f"{c}.a[{b * hw + pos}][{o * kk + tap}] <== {value};")
    m.loop(out * kk * cin, f"{c}.b[k \\ {cin}][k % {cin}] <== "
           f"w{i}[(k \\ {cin}) \\ {kk}][(k % {cin}) * {kk} + (k \\ {cin}) % {kk}];",
           into=m.checks)
    m.loop(batch * hw * cin, f"{c}.c[k \\ {cin}][k % {cin}] <== "
           f"{gx.name}[k \\ {hw * cin}][(k % {cin}) * {hw} + (k \\ {cin}) % {hw}];",
           into=m.checks)
    m.loop(cin, f"{c}.r[k] <== powers.r[k];", into=m.checks)
