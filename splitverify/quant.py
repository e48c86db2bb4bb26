"""The one spec of splitverify's fixed-point arithmetic, and its integer reference in torch.

A real value v is stored as the integer round-down(v · 2^frac_bits). Products of two such
integers carry 2·frac_bits fractional bits and are brought back by ``rescale``: floor division
by 2^frac_bits with a remainder in [0, 2^frac_bits) — exactly what a circuit proves with a
range-checked remainder. Signed integers live in the BN254 scalar field as p − |x|. Training
runs these functions (int64), so the values a circuit proves are the values used.

Loss: mean squared error on one-hot targets, whose gradient (logits − onehot) needs no
exp/log approximation in a circuit; its constant 2/(B·C) is folded into the learning rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .errors import InputError

FIELD_BITS = 253  # values below 2^253 in magnitude never wrap around the BN254 scalar field


@dataclass(frozen=True)
class QuantSpec:
    # 16 fractional bits: at 8, floor-rounded SGD steps on RefNet lost ~13 accuracy points
    # (small updates round towards −∞); at 16 fixed point matches float32 within 0.3 points.
    frac_bits: int = 16      # fractional bits of activations, weights and gradients
    value_bits: int = 40     # |stored integer| < 2^value_bits for every tensor after rescale
    lr_shift: int = 6        # learning rate = lr_num / 2^lr_shift
    lr_num: int = 1

    def __post_init__(self):
        if not 1 <= self.frac_bits <= 32:
            raise InputError("frac_bits must be between 1 and 32")
        if not self.frac_bits < self.value_bits <= 64:
            raise InputError("value_bits must exceed frac_bits and be at most 64")
        if self.lr_num <= 0 or self.lr_shift < 0:
            raise InputError("the learning rate lr_num / 2^lr_shift must be positive")

    @property
    def scale(self) -> int:
        return 1 << self.frac_bits

    @property
    def lr(self) -> float:
        return self.lr_num / (1 << self.lr_shift)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        q = torch.floor(x.double() * self.scale).to(torch.int64)
        self.check_range(q, "encoded tensor")
        return q

    def decode(self, q: torch.Tensor) -> torch.Tensor:
        return q.double() / self.scale

    def check_range(self, q: torch.Tensor, what: str) -> None:
        bound = 1 << self.value_bits
        if q.numel() and int(q.abs().max()) >= bound:
            raise InputError(f"{what} has a value of magnitude ≥ 2^{self.value_bits}; lower "
                             "the learning rate or raise value_bits")

    def accumulator_bits(self, fan_in: int) -> int:
        """Bits of a dot product of fan_in terms before rescale (+1 for a bias)."""
        return 2 * self.value_bits + (fan_in + 1).bit_length()

    def check_no_wraparound(self, fan_in: int) -> None:
        """Static proof that no intermediate of a dense layer can wrap around the field."""
        bits = self.accumulator_bits(fan_in)
        if bits >= FIELD_BITS:
            raise InputError(f"a {fan_in}-input dot product needs {bits} bits; the field holds "
                             f"{FIELD_BITS}: lower value_bits")


def rescale(x: torch.Tensor, shift: int) -> tuple[torch.Tensor, torch.Tensor]:
    """floor(x / 2^shift) and the remainder in [0, 2^shift)."""
    q = torch.div(x, 1 << shift, rounding_mode="floor")
    return q, x - q * (1 << shift)


def to_field(x: torch.Tensor | int, modulus: int) -> list[int] | int:
    """Signed integers as field elements (x < 0 ↦ p − |x|)."""
    if isinstance(x, int):
        return x % modulus
    return [int(v) % modulus for v in x.flatten().tolist()]


def dense_forward(spec: QuantSpec, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor):
    """y = rescale(x·Wᵀ + b·2^s); returns (y, remainder). x: B×in, W: out×in, b: out."""
    acc = x @ w.T + b * spec.scale
    y, rem = rescale(acc, spec.frac_bits)
    return y, rem


def relu(x: torch.Tensor) -> torch.Tensor:
    return torch.clamp(x, min=0)


def relu_backward(grad: torch.Tensor, pre_activation: torch.Tensor) -> torch.Tensor:
    return grad * (pre_activation > 0).to(grad.dtype)


def mse_onehot_grad(spec: QuantSpec, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """logits − onehot (scale 2^s); the constant 2/(B·C) of the MSE gradient is in the lr."""
    onehot = torch.zeros_like(logits)
    onehot[torch.arange(len(labels)), labels] = spec.scale
    return logits - onehot


def dense_backward(spec: QuantSpec, grad_y: torch.Tensor, x: torch.Tensor, w: torch.Tensor):
    """dX = rescale(dY·W), dW = rescale(dYᵀ·X), db = ΣdY (remainders returned too)."""
    dx, dx_rem = rescale(grad_y @ w, spec.frac_bits)
    dw, dw_rem = rescale(grad_y.T @ x, spec.frac_bits)
    db = grad_y.sum(dim=0)
    return dx, dw, db, (dx_rem, dw_rem)


def sgd_update(spec: QuantSpec, param: torch.Tensor, grad: torch.Tensor):
    """param − rescale(lr_num · grad, lr_shift); returns (new param, remainder)."""
    step, rem = rescale(grad * spec.lr_num, spec.lr_shift)
    new = param - step
    spec.check_range(new, "an updated parameter")
    return new, rem
