"""The Circom of an :class:`~splitverify.model.AvgPool2d` layer: no parameters, no products.

Its forward accumulator (each window's sum) and its input-gradient accumulator (dY of the
window each input lies in) are linear in signals the circuit already bounds, so the circuit
computes them (no claim, no Freivalds check; --O2 substitutes them away); the generator then
rescales them by the pool's shift (``AvgPool2d.rescale_shift``) with the shared ``Rescale``,
whose remainder is a bounded bit decomposition. Cost: that rescale's range checks only.
"""

from __future__ import annotations

from ...model import AvgPool2d
from .base import ParameterUpdate, Tensor

INCLUDES: tuple[str, ...] = ()


def challenge_powers(layer: AvgPool2d) -> int:
    return 1      # reads no challenge (a half has a Linear or a Conv2d: SplitSpec)


def forward_sum(m, i: int, layer: AvgPool2d, x: Tensor) -> Tensor:
    """Layer ``i``'s accumulator, batch × n_out: each window's sum of x (pool_index)."""
    acc = m.signal(f"acc{i}", m.spec.batch, layer.n_out)
    for b in range(m.spec.batch):
        for o, window in enumerate(layer.pool_index().tolist()):
            m.body.append(f"{acc.name}[{b}][{o}] <== "
                          + " + ".join(f"{x.name}[{b}][{src}]" for src in window) + ";")
    return acc


def weight_gradient(m, i: int, layer: AvgPool2d, dy: Tensor, x: Tensor) -> list[ParameterUpdate]:
    return []     # no parameters


def input_gradient_sum(m, i: int, layer: AvgPool2d, dy: Tensor) -> Tensor:
    """Layer ``i``'s input-gradient accumulator, batch × n_in: dY of each input's window."""
    gx = m.signal(f"gx{i}", m.spec.batch, layer.n_in)
    for b in range(m.spec.batch):
        for o, window in enumerate(layer.pool_index().tolist()):
            m.body += [f"{gx.name}[{b}][{src}] <== {dy.name}[{b}][{o}];" for src in window]
    return gx
