"""The layer types a split model is made of, behind one :class:`Layer` interface.

A layer type says what it is (its flat input and output widths per sample, its parameters and
their shapes), how its parameters are quantized and initialised, its integer-reference forward
and backward pieces, and which circuit emitter writes its Circom
(:mod:`splitverify.circuitgen.emit`, by :attr:`Layer.emitter`). A ReLU is not a layer of its own:
it is folded into the layer before it (``relu``), as the circuits prove it.

A new layer type is one class here (listed in :data:`LAYER_TYPES`, and in :data:`TORCH_LAYERS`
under the torch module it stands for) and one emitter module.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import ClassVar

import torch

from .. import quant
from ..errors import InputError
from ..quant import QuantSpec

# A layer's parameters as integers at scale 2^frac_bits, in the order of its parameter_shapes.
LayerParams = tuple[torch.Tensor, ...]


class Layer(ABC):
    """What a layer type must provide. Subclasses are frozen dataclasses with a ``relu`` field
    (the ReLU that follows, if any)."""

    emitter: ClassVar[str]      # its module in splitverify.circuitgen.emit
    # Whether the circuits take this layer's accumulators (forward, weight and input gradient)
    # as claimed inputs, checked as products by Freivalds; a layer whose accumulators are sums
    # of its inputs (a pool) has them computed in the circuit (linear: no claim, no check).
    claims_accumulators: ClassVar[bool] = True
    n_in: int                   # inputs per sample, flat (a field or a property)
    n_out: int                  # outputs per sample, flat
    relu: bool

    @abstractmethod
    def parameter_shapes(self) -> tuple[tuple[str, tuple[int, ...]], ...]:
        """Each parameter's name (its circuit signal's prefix) and shape, in commitment order."""

    @property
    def parameter_count(self) -> int:
        count = 0
        for _, shape in self.parameter_shapes():
            size = 1
            for d in shape:
                size *= d
            count += size
        return count

    def with_relu(self) -> "Layer":
        return replace(self, relu=True)

    def rescale_shift(self, quant_spec: QuantSpec) -> int:
        """The shift of the rescale after its forward and its input-gradient accumulators
        (a product of two 2^s-scaled values: s)."""
        return quant_spec.frac_bits

    @abstractmethod
    def check(self, quant_spec: QuantSpec, batch: int) -> None:
        """Raise InputError if the circuits cannot prove this layer at this batch size."""

    @abstractmethod
    def describe(self) -> str:
        """Its part of a model's description (circuit headers, transcripts)."""

    @classmethod
    @abstractmethod
    def from_description(cls, text: str) -> "Layer | None":
        """The layer ``text`` (one of :meth:`describe`'s) describes, None if not of this type."""

    @abstractmethod
    def init(self, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        """Fresh float parameters (torch's default initialisation for the module)."""

    @abstractmethod
    def forward(self, quant_spec: QuantSpec, x: torch.Tensor, params: LayerParams
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(y, acc): the accumulator the circuit checks and the rescaled output (before ReLU)."""

    @abstractmethod
    def weight_gradient(self, grad_y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The accumulator the circuit checks for the weight gradient (not rescaled)."""

    @abstractmethod
    def input_gradient(self, quant_spec: QuantSpec, grad_y: torch.Tensor, params: LayerParams
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        """(dX, acc): the rescaled gradient of the layer's input and its checked accumulator."""

    @abstractmethod
    def update(self, quant_spec: QuantSpec, params: LayerParams, weight_grad_acc: torch.Tensor,
               grad_y: torch.Tensor) -> LayerParams:
        """The parameters after one SGD step."""


@dataclass(frozen=True)
class Dense(Layer):
    """``Linear(n_in, n_out)`` with a bias: W is n_out×n_in, b is n_out."""
    n_in: int
    n_out: int
    relu: bool

    emitter: ClassVar[str] = "dense"

    def parameter_shapes(self) -> tuple[tuple[str, tuple[int, ...]], ...]:
        return (("w", (self.n_out, self.n_in)), ("b", (self.n_out,)))

    def check(self, quant_spec: QuantSpec, batch: int) -> None:
        if self.n_in < 2 or self.n_out < 2:
            raise InputError("every Linear layer needs at least 2 inputs and 2 outputs")
        quant_spec.check_no_wraparound(self.n_in, batch)

    def describe(self) -> str:
        return f"{self.n_in}->{self.n_out}{'+relu' if self.relu else ''}"

    @classmethod
    def from_description(cls, text: str) -> "Dense | None":
        m = _DENSE_DESCRIPTION.fullmatch(text)
        if m is None:
            return None
        return cls(int(m["n_in"]), int(m["n_out"]), bool(m["relu"]))

    def init(self, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        bound = 1 / self.n_in ** 0.5
        w = torch.empty(self.n_out, self.n_in).uniform_(-bound, bound, generator=generator)
        b = torch.empty(self.n_out).uniform_(-bound, bound, generator=generator)
        return w.double(), b.double()

    def forward(self, quant_spec, x, params):
        w, b = params
        return quant.dense_forward(quant_spec, x, w, b)

    def weight_gradient(self, grad_y, x):
        return grad_y.T @ x

    def input_gradient(self, quant_spec, grad_y, params):
        return quant.input_gradient(quant_spec, grad_y, params[0])

    def update(self, quant_spec, params, weight_grad_acc, grad_y):
        w, b = params
        return (quant.sgd_update(quant_spec, w, weight_grad_acc, quant_spec.weight_update_shift),
                quant.sgd_update(quant_spec, b, grad_y.sum(dim=0), quant_spec.lr_shift))

    @classmethod
    def from_module(cls, index: int, module: torch.nn.Linear,
                    image: tuple[int, int, int] | None = None) -> "Dense":
        """(``image``, the input's image shape, does not matter: a Linear reads it flat.)"""
        if module.bias is None:
            raise InputError(f"module {index}: Linear layers need a bias")
        return cls(module.in_features, module.out_features, False)


_DENSE_DESCRIPTION = re.compile(r"(?P<n_in>\d+)->(?P<n_out>\d+)(?P<relu>\+relu)?")


@lru_cache(maxsize=None)
def _patch_index(channels: int, height: int, width: int, kernel: int, stride: int,
                 padding: int) -> torch.Tensor:
    """The im2col view of one sample: entry [p, c·k² + i·k + j] is the flat NCHW index of the
    input that tap (i, j) of channel c reads at output position p, −1 where it reads padding."""
    out_h = (height + 2 * padding - kernel) // stride + 1
    out_w = (width + 2 * padding - kernel) // stride + 1
    index = torch.full((out_h * out_w, channels * kernel * kernel), -1, dtype=torch.int64)
    for py in range(out_h):
        for px in range(out_w):
            for c in range(channels):
                for i in range(kernel):
                    for j in range(kernel):
                        y, x = py * stride - padding + i, px * stride - padding + j
                        if 0 <= y < height and 0 <= x < width:
                            index[py * out_w + px, (c * kernel + i) * kernel + j] = \
                                (c * height + y) * width + x
    return index


@dataclass(frozen=True)
class Conv2d(Layer):
    """``Conv2d(in_channels, out_channels, kernel, stride, padding)`` with a bias on a fixed
    input height × width. Per sample its input and output are flat NCHW (so torch's Flatten
    after it is the identity); W is out_channels × (in_channels·kernel²), the im2col layout of
    torch's out×in×k×k weight, b is out_channels. The arithmetic is Dense's on the im2col view:
    patches (batch·positions × in·k²) × Wᵀ, so rescales and updates are the shared ones."""
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    padding: int
    height: int
    width: int
    relu: bool

    emitter: ClassVar[str] = "conv"

    @property
    def out_height(self) -> int:
        return (self.height + 2 * self.padding - self.kernel) // self.stride + 1

    @property
    def out_width(self) -> int:
        return (self.width + 2 * self.padding - self.kernel) // self.stride + 1

    @property
    def positions(self) -> int:
        """Output positions per channel (out_height · out_width)."""
        return self.out_height * self.out_width

    @property
    def patch_size(self) -> int:
        return self.in_channels * self.kernel * self.kernel

    @property
    def n_in(self) -> int:
        return self.in_channels * self.height * self.width

    @property
    def n_out(self) -> int:
        return self.out_channels * self.positions

    @property
    def output_shape(self) -> tuple[int, int, int]:
        return self.out_channels, self.out_height, self.out_width

    def patch_index(self) -> torch.Tensor:
        """positions × patch_size: flat input index per im2col entry, −1 for padding (the one
        map from the layer's geometry to its wiring: the reference and the emitter read it)."""
        return _patch_index(self.in_channels, self.height, self.width, self.kernel,
                            self.stride, self.padding)

    def parameter_shapes(self) -> tuple[tuple[str, tuple[int, ...]], ...]:
        return (("w", (self.out_channels, self.patch_size)), ("b", (self.out_channels,)))

    def check(self, quant_spec: QuantSpec, batch: int) -> None:
        if min(self.in_channels, self.kernel, self.stride, self.height, self.width) < 1 \
                or self.padding < 0:
            raise InputError(f"Conv2d {self.describe()}: channels, kernel, stride, height and "
                             "width must be ≥ 1 and padding ≥ 0")
        if self.out_channels < 2 or self.patch_size < 2:
            raise InputError(f"Conv2d {self.describe()}: needs at least 2 output channels and "
                             "2 inputs per patch (in_channels·kernel²)")
        if self.padding >= self.kernel or self.out_height < 1 or self.out_width < 1:
            raise InputError(f"Conv2d {self.describe()}: the kernel must fit the padded input "
                             "and padding must be smaller than the kernel")
        if batch * self.positions < 2:
            raise InputError(f"Conv2d {self.describe()}: batch × output positions must be ≥ 2")
        # an input no kernel tap reads has a gradient row of constant zeros: refused (crop it)
        last_y = (self.out_height - 1) * self.stride - self.padding + self.kernel - 1
        last_x = (self.out_width - 1) * self.stride - self.padding + self.kernel - 1
        if last_y < self.height - 1 or last_x < self.width - 1:
            raise InputError(f"Conv2d {self.describe()}: the stride leaves the last input "
                             "rows or columns unread; crop the input or change the stride")
        fan_in = max(self.patch_size, self.out_channels * self.kernel * self.kernel)
        quant_spec.check_no_wraparound(fan_in, batch * self.positions)

    def describe(self) -> str:
        return (f"conv{self.in_channels}x{self.height}x{self.width}->{self.out_channels}"
                f"k{self.kernel}s{self.stride}p{self.padding}{'+relu' if self.relu else ''}")

    @classmethod
    def from_description(cls, text: str) -> "Conv2d | None":
        m = _CONV_DESCRIPTION.fullmatch(text)
        if m is None:
            return None
        return cls(int(m["c"]), int(m["o"]), int(m["k"]), int(m["s"]), int(m["p"]),
                   int(m["h"]), int(m["w"]), bool(m["relu"]))

    def init(self, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        # torch's default for Conv2d (kaiming_uniform with a = √5): Uniform(±1/√fan-in)
        bound = 1 / self.patch_size ** 0.5
        w = torch.empty(self.out_channels, self.patch_size).uniform_(-bound, bound,
                                                                     generator=generator)
        b = torch.empty(self.out_channels).uniform_(-bound, bound, generator=generator)
        return w.double(), b.double()

    # -- the im2col views ----------------------------------------------------------------
    def patches(self, x: torch.Tensor) -> torch.Tensor:
        """(batch·positions) × patch_size: the im2col view of x (batch × n_in), 0 at padding."""
        index = self.patch_index()
        padded = torch.cat([x, torch.zeros(len(x), 1, dtype=x.dtype)], dim=1)
        return padded[:, torch.where(index < 0, self.n_in, index)].reshape(-1, self.patch_size)

    def rows(self, t: torch.Tensor) -> torch.Tensor:
        """batch × (out_channels·positions), NCHW → (batch·positions) × out_channels."""
        return t.reshape(len(t), self.out_channels, self.positions).transpose(1, 2) \
            .reshape(-1, self.out_channels)

    def nchw(self, rows: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`rows`."""
        return rows.reshape(-1, self.positions, self.out_channels).transpose(1, 2) \
            .reshape(-1, self.n_out)

    def forward(self, quant_spec, x, params):
        w, b = params
        y, acc = quant.dense_forward(quant_spec, self.patches(x), w, b)
        return self.nchw(y), self.nchw(acc)

    def weight_gradient(self, grad_y, x):
        return self.rows(grad_y).T @ self.patches(x)

    def input_gradient(self, quant_spec, grad_y, params):
        # col2im of dY·W: each patch entry's gradient added to the input it was read from
        columns = (self.rows(grad_y) @ params[0]).reshape(len(grad_y), -1)
        index = self.patch_index().reshape(-1)
        index = torch.where(index < 0, self.n_in, index).expand(len(grad_y), -1)
        acc = torch.zeros(len(grad_y), self.n_in + 1, dtype=columns.dtype)
        acc = acc.scatter_add(1, index, columns)[:, :self.n_in]
        return quant.rescale_input_gradient(quant_spec, acc)

    def update(self, quant_spec, params, weight_grad_acc, grad_y):
        w, b = params
        return (quant.sgd_update(quant_spec, w, weight_grad_acc, quant_spec.weight_update_shift),
                quant.sgd_update(quant_spec, b, self.rows(grad_y).sum(dim=0),
                                 quant_spec.lr_shift))

    @classmethod
    def from_module(cls, index: int, module: torch.nn.Conv2d,
                    image: tuple[int, int, int] | None) -> "Conv2d":
        """``image``: (channels, height, width) of the module's input."""
        if image is None:
            raise InputError(f"module {index} (Conv2d): its input image's shape is unknown; "
                             "give input_shape=(channels, height, width) for the model's input "
                             "(a Conv2d must come first or after another Conv2d)")
        if module.bias is None:
            raise InputError(f"module {index}: Conv2d layers need a bias")
        kh, kw = module.kernel_size
        sh, sw = module.stride
        ph, pw = module.padding if not isinstance(module.padding, str) else (-1, -1)
        if kh != kw or sh != sw or ph != pw or ph < 0 or module.dilation != (1, 1) \
                or module.groups != 1 or module.padding_mode != "zeros":
            raise InputError(f"module {index} ({module}): splitverify proves square kernels "
                             "with equal strides and numeric zero padding, no dilation or groups")
        if module.in_channels != image[0]:
            raise InputError(f"module {index}: Conv2d expects {module.in_channels} channels, "
                             f"its input has {image[0]}")
        return cls(module.in_channels, module.out_channels, kh, sh, ph, image[1], image[2],
                   False)


_CONV_DESCRIPTION = re.compile(r"conv(?P<c>\d+)x(?P<h>\d+)x(?P<w>\d+)->(?P<o>\d+)"
                               r"k(?P<k>\d+)s(?P<s>\d+)p(?P<p>\d+)(?P<relu>\+relu)?")

@lru_cache(maxsize=None)
def _pool_index(channels: int, height: int, width: int, kernel: int) -> torch.Tensor:
    """Per sample, (channels·out_h·out_w) × kernel²: the flat NCHW inputs each output of a
    kernel-k, stride-k pool sums (output o = (c·out_h + py)·out_w + px)."""
    out_h, out_w = height // kernel, width // kernel
    index = torch.empty(channels * out_h * out_w, kernel * kernel, dtype=torch.int64)
    for c in range(channels):
        for py in range(out_h):
            for px in range(out_w):
                for i in range(kernel):
                    for j in range(kernel):
                        index[(c * out_h + py) * out_w + px, i * kernel + j] = \
                            (c * height + py * kernel + i) * width + px * kernel + j
    return index


@dataclass(frozen=True)
class AvgPool2d(Layer):
    """``AvgPool2d(kernel)`` with stride = kernel and no padding on a channels × height ×
    width input (flat NCHW per sample): the sum of each window (its accumulator), then
    floor(sum / kernel²) as a rescale by log2(kernel²) bits — so kernel must be a power of two
    (kernel² then is). No parameters. Its input gradient is dY of the window each input lies
    in, rescaled by the same shift (d(sum / k²)/dx = 1/k²)."""
    channels: int
    height: int
    width: int
    kernel: int
    relu: bool

    emitter: ClassVar[str] = "pool"
    claims_accumulators: ClassVar[bool] = False

    @property
    def out_height(self) -> int:
        return self.height // self.kernel

    @property
    def out_width(self) -> int:
        return self.width // self.kernel

    @property
    def n_in(self) -> int:
        return self.channels * self.height * self.width

    @property
    def n_out(self) -> int:
        return self.channels * self.out_height * self.out_width

    @property
    def output_shape(self) -> tuple[int, int, int]:
        return self.channels, self.out_height, self.out_width

    @property
    def shift(self) -> int:
        """log2(kernel²): the division by kernel² as a shift."""
        return 2 * (self.kernel.bit_length() - 1)

    def pool_index(self) -> torch.Tensor:
        """The one map from the pool's geometry to its wiring (reference and emitter)."""
        return _pool_index(self.channels, self.height, self.width, self.kernel)

    def parameter_shapes(self) -> tuple[tuple[str, tuple[int, ...]], ...]:
        return ()

    def rescale_shift(self, quant_spec: QuantSpec) -> int:
        return self.shift

    def check(self, quant_spec: QuantSpec, batch: int) -> None:
        if self.kernel < 2 or self.kernel & (self.kernel - 1):
            raise InputError(f"AvgPool2d {self.describe()}: kernel {self.kernel}: the division "
                             f"by kernel² must be a power-of-two shift; splitverify pools with "
                             "kernel 2, 4, 8, … (stride = kernel, no padding)")
        if min(self.channels, self.height, self.width) < 1 \
                or self.height % self.kernel or self.width % self.kernel:
            raise InputError(f"AvgPool2d {self.describe()}: height and width must be multiples "
                             "of the kernel (no input left unpooled); crop the input")

    def describe(self) -> str:
        return (f"avgpool{self.channels}x{self.height}x{self.width}k{self.kernel}"
                f"{'+relu' if self.relu else ''}")

    @classmethod
    def from_description(cls, text: str) -> "AvgPool2d | None":
        m = _POOL_DESCRIPTION.fullmatch(text)
        if m is None:
            return None
        return cls(int(m["c"]), int(m["h"]), int(m["w"]), int(m["k"]), bool(m["relu"]))

    def init(self, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        return ()

    def forward(self, quant_spec, x, params):
        acc = x[:, self.pool_index()].sum(dim=2)
        y, _ = quant.rescale(acc, self.shift)
        quant_spec.check_range(y, "a layer output")
        return y, acc

    def weight_gradient(self, grad_y, x):
        return grad_y.new_zeros(0)      # no parameters

    def input_gradient(self, quant_spec, grad_y, params):
        acc = torch.zeros(len(grad_y), self.n_in, dtype=grad_y.dtype)
        index = self.pool_index()
        acc[:, index.reshape(-1)] = grad_y.repeat_interleave(index.shape[1], dim=1)
        dx, _ = quant.rescale(acc, self.shift)
        quant_spec.check_range(dx, "an activation gradient")
        return dx, acc

    def update(self, quant_spec, params, weight_grad_acc, grad_y):
        return ()

    @classmethod
    def from_module(cls, index: int, module: torch.nn.AvgPool2d,
                    image: tuple[int, int, int] | None) -> "AvgPool2d":
        """``image``: (channels, height, width) of the module's input."""
        if image is None:
            raise InputError(f"module {index} (AvgPool2d): its input image's shape is unknown; "
                             "an AvgPool2d must follow a Conv2d (or a ReLU after one)")
        kernel, stride, padding = (module.kernel_size, module.stride or module.kernel_size,
                                   module.padding)
        if not all(isinstance(v, int) or len(set(v)) == 1 for v in (kernel, stride, padding)):
            raise InputError(f"module {index} ({module}): splitverify pools square windows")
        kernel, stride, padding = (v if isinstance(v, int) else v[0]
                                   for v in (kernel, stride, padding))
        if stride != kernel or padding != 0 or module.ceil_mode \
                or module.divisor_override is not None:
            raise InputError(f"module {index} ({module}): splitverify proves AvgPool2d with "
                             "stride = kernel, no padding, ceil_mode off, no divisor_override")
        return cls(image[0], image[1], image[2], kernel, False)


_POOL_DESCRIPTION = re.compile(r"avgpool(?P<c>\d+)x(?P<h>\d+)x(?P<w>\d+)k(?P<k>\d+)"
                               r"(?P<relu>\+relu)?")

# Every layer type, for reading a model's description back.
LAYER_TYPES: tuple[type[Layer], ...] = (Dense, Conv2d, AvgPool2d)


def layer_from_description(text: str) -> Layer:
    for layer_type in LAYER_TYPES:
        layer = layer_type.from_description(text)
        if layer is not None:
            return layer
    raise InputError(f"{text!r} describes no layer this version knows "
                     f"({', '.join(t.__name__ for t in LAYER_TYPES)})")


# The one map from a user's torch modules to layers (nn.ReLU is folded into the layer before
# it, nn.Flatten is the identity on the flat NCHW layout: layers_of_modules): module type →
# builder(module index, module, input image shape or None when the input is flat).
TORCH_LAYERS: dict[type[torch.nn.Module],
                   Callable[[int, torch.nn.Module, tuple[int, int, int] | None], Layer]] = {
    torch.nn.Linear: Dense.from_module,
    torch.nn.Conv2d: Conv2d.from_module,
    torch.nn.AvgPool2d: AvgPool2d.from_module,
}


def layer_from_module(index: int, module: torch.nn.Module,
                      image: tuple[int, int, int] | None = None) -> Layer:
    """The layer torch module ``index`` of a Sequential stands for (not a ReLU or Flatten);
    ``image``: its input's (channels, height, width), None when flat."""
    build = TORCH_LAYERS.get(type(module))
    if build is None:
        raise InputError(f"module {index} is a {type(module).__name__}; splitverify proves "
                         f"{', '.join(torch_layer_names())}, ReLU and Flatten layers only")
    return build(index, module, image)


def layers_of_modules(modules: list[torch.nn.Module], first_index: int = 0,
                      input_shape: tuple[int, int, int] | None = None) -> list[Layer]:
    """The layers a run of Sequential modules stands for, each ReLU folded into the layer
    before it (``first_index``: the first module's index in the Sequential, for errors;
    ``input_shape``: (channels, height, width) of the input when a Conv2d reads it)."""
    return layers_and_output_image(modules, first_index, input_shape)[0]


def layers_and_output_image(modules: list[torch.nn.Module], first_index: int = 0,
                            input_shape: tuple[int, int, int] | None = None
                            ) -> tuple[list[Layer], tuple[int, int, int] | None]:
    """:func:`layers_of_modules` and the (channels, height, width) of the run's output when it
    is an image (a Conv2d's, not flattened), else None."""
    layers: list[Layer] = []
    image = input_shape
    for i, module in enumerate(modules, start=first_index):
        if isinstance(module, torch.nn.ReLU):
            if not layers or layers[-1].relu:
                raise InputError(f"module {i}: a ReLU must follow a "
                                 f"{' or '.join(torch_layer_names())}")
            layers[-1] = layers[-1].with_relu()
        elif isinstance(module, torch.nn.Flatten):
            # samples are already flat (NCHW): only the per-sample flatten is the identity
            if (module.start_dim, module.end_dim) != (1, -1):
                raise InputError(f"module {i}: only Flatten(start_dim=1, end_dim=-1) is "
                                 "supported (the per-sample flatten)")
            image = None
        else:
            layer = layer_from_module(i, module, image)
            layers.append(layer)
            image = layer.output_shape if isinstance(layer, (Conv2d, AvgPool2d)) else None
    return layers, image


def torch_layer_names() -> list[str]:
    return [module_type.__name__ for module_type in TORCH_LAYERS]
