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
    # 12 fractional bits: at 8, floor-rounded SGD steps on RefNet lost ~13 accuracy points
    # (small updates round towards −∞); at 12 RefNet reaches 88.9 % in 10 epochs (16 bits:
    # 89.7 %, float32 90.0 %) and every range check is 4 bits narrower than at 16, which brings
    # ServerStep under 2^16 and ClientBackward under 2^17 constraints (half the proving domain).
    frac_bits: int = 12      # fractional bits of data, activations, weights and gradients
    # |stored integer| < 2^value_bits for every activation, gradient and parameter. 18 bits
    # (|real| < 64) cover RefNet with ~10× headroom (largest value seen in training: 6.4);
    # each bit costs one constraint per value in every range check, so it is kept tight.
    value_bits: int = 18     # range [−2^value_bits, 2^value_bits)
    input_bits: int = 13     # |data| < 2^input_bits: features in [−2, 2) at 12 fractional bits
    # |SGD step| < 2^step_bits (< 1.0 real: the largest step in RefNet training is 0.09); a
    # step is range-checked per parameter, so this bound is paid 2080 times per client update
    step_bits: int = 12
    lr_shift: int = 6        # learning rate = lr_num / 2^lr_shift
    lr_num: int = 1

    def __post_init__(self):
        if not 1 <= self.frac_bits <= 32:
            raise InputError("frac_bits must be between 1 and 32")
        if not self.frac_bits < self.value_bits <= 64:
            raise InputError("value_bits must exceed frac_bits and be at most 64")
        if not 1 <= self.input_bits <= 64:
            raise InputError("input_bits must be between 1 and 64")
        if not 1 <= self.step_bits <= self.value_bits:
            raise InputError("step_bits must be between 1 and value_bits")
        if self.lr_num <= 0 or self.lr_shift < 0:
            raise InputError("the learning rate lr_num / 2^lr_shift must be positive")

    @property
    def scale(self) -> int:
        return 1 << self.frac_bits

    @property
    def lr(self) -> float:
        return self.lr_num / (1 << self.lr_shift)

    @property
    def weight_update_shift(self) -> int:
        """dW accumulators carry 2·frac_bits fractional bits; the step is brought to frac_bits
        and multiplied by the learning rate in one floor division."""
        return self.frac_bits + self.lr_shift

    def encode(self, x: torch.Tensor, *, data: bool = False) -> torch.Tensor:
        q = torch.floor(x.double() * self.scale).to(torch.int64)
        if data:
            self.check_range(q, "the data batch", self.input_bits, "input_bits")
        else:
            self.check_range(q, "an encoded parameter")
        return q

    def decode(self, q: torch.Tensor) -> torch.Tensor:
        return q.double() / self.scale

    def check_range(self, q: torch.Tensor, what: str, bits: int | None = None,
                    knob: str = "value_bits") -> None:
        bits = self.value_bits if bits is None else bits
        # the circuits' range: −2^bits ≤ v < 2^bits (SignedRange, Rescale, SgdUpdate)
        if q.numel() and (int(q.max()) >= 1 << bits or int(q.min()) < -(1 << bits)):
            raise InputError(f"{what} has a value outside [−2^{bits}, 2^{bits}) (real "
                             f"{(1 << bits) / self.scale:g}); scale the inputs, lower the "
                             f"learning rate or raise {knob}")

    def check_no_wraparound(self, fan_in: int, batch: int) -> None:
        """Static proof that no product a circuit checks can wrap around the field: every
        accumulator (forward, input gradient, weight gradient) stays below 2^250 in magnitude,
        so equality in the field is equality over the integers."""
        v = max(self.value_bits, self.input_bits) + 1   # gradients of the loss: < 2^(value_bits+1)
        bits = 2 * v + max(fan_in + 1, batch).bit_length() + self.frac_bits
        if bits >= FIELD_BITS - 3:
            raise InputError(f"products of {fan_in} inputs over a batch of {batch} need {bits} "
                             f"bits; the field holds {FIELD_BITS - 3}: lower value_bits")


def rescale(x: torch.Tensor, shift: int) -> tuple[torch.Tensor, torch.Tensor]:
    """floor(x / 2^shift) and the remainder in [0, 2^shift)."""
    q = torch.div(x, 1 << shift, rounding_mode="floor")
    return q, x - q * (1 << shift)


def floor_mean(stacked: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """floor(Σ / K) over the first dimension (K ≥ 1 tensors of one shape) and the remainder
    Σ − K·mean in [0, K): the fixed-point average of K parameter vectors (SplitFed-V1's
    aggregation), exactly what the Aggregate circuit proves with a range-checked remainder.
    Floor, not round-to-nearest or truncation: the one rule every party and the circuit apply."""
    count = stacked.shape[0]
    total = stacked.sum(dim=0)
    mean = torch.div(total, count, rounding_mode="floor")
    return mean, total - mean * count


def to_field(x: torch.Tensor | int, modulus: int) -> list[int] | int:
    """Signed integers as field elements (x < 0 ↦ p − |x|)."""
    if isinstance(x, int):
        return x % modulus
    return [int(v) % modulus for v in x.flatten().tolist()]


def dense_forward(spec: QuantSpec, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor):
    """Returns (y, acc): acc = x·Wᵀ + b·2^s (what the circuit's Freivalds check pins) and
    y = floor(acc / 2^s), checked |y| < 2^value_bits. x: B×in, W: out×in, b: out."""
    acc = x @ w.T + b * spec.scale
    y, _ = rescale(acc, spec.frac_bits)
    spec.check_range(y, "a layer output")
    return y, acc


def relu(x: torch.Tensor) -> torch.Tensor:
    return torch.clamp(x, min=0)


def relu_mask(pre_activation: torch.Tensor) -> torch.Tensor:
    """1 where the pre-activation is > 0 (torch's ReLU gradient at 0 is 0)."""
    return (pre_activation > 0).to(torch.int64)


def mse_onehot(spec: QuantSpec, logits: torch.Tensor, labels: torch.Tensor):
    """(grad, loss): grad = logits − onehot·2^s, the MSE gradient up to the constant
    2/(B·C) that the learning rate absorbs; loss = floor(Σ grad² / 2^s), the batch's summed
    squared error at scale 2^s."""
    onehot = torch.zeros_like(logits)
    onehot[torch.arange(len(labels)), labels] = spec.scale
    grad = logits - onehot
    loss = int((grad * grad).sum()) >> spec.frac_bits
    return grad, loss


def input_gradient(spec: QuantSpec, grad_y: torch.Tensor, w: torch.Tensor):
    """(dX, acc): acc = dY·W (Freivalds-checked), dX = floor(acc / 2^s)."""
    return rescale_input_gradient(spec, grad_y @ w)


def rescale_input_gradient(spec: QuantSpec, acc: torch.Tensor):
    """(dX, acc): dX = floor(acc / 2^s) of a checked input-gradient accumulator, in range."""
    dx, _ = rescale(acc, spec.frac_bits)
    spec.check_range(dx, "an activation gradient")
    return dx, acc


def sgd_update(spec: QuantSpec, param: torch.Tensor, grad_acc: torch.Tensor, shift: int):
    """param − floor(lr_num · grad_acc / 2^shift): the weight step from the un-rescaled
    dW = dYᵀ·X (shift = frac_bits + lr_shift) or the bias step from Σ dY (shift = lr_shift)."""
    step, _ = rescale(grad_acc * spec.lr_num, shift)
    spec.check_range(step, "an SGD step", spec.step_bits, "step_bits")
    new = param - step
    spec.check_range(new, "an updated parameter")
    return new
