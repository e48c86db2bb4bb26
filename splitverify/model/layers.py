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
    def from_module(cls, index: int, module: torch.nn.Linear) -> "Dense":
        if module.bias is None:
            raise InputError(f"module {index}: Linear layers need a bias")
        return cls(module.in_features, module.out_features, False)


_DENSE_DESCRIPTION = re.compile(r"(?P<n_in>\d+)->(?P<n_out>\d+)(?P<relu>\+relu)?")

# Every layer type, for reading a model's description back.
LAYER_TYPES: tuple[type[Layer], ...] = (Dense,)


def layer_from_description(text: str) -> Layer:
    for layer_type in LAYER_TYPES:
        layer = layer_type.from_description(text)
        if layer is not None:
            return layer
    raise InputError(f"{text!r} describes no layer this version knows "
                     f"({', '.join(t.__name__ for t in LAYER_TYPES)})")


# The one map from a user's torch modules to layers (nn.ReLU is folded into the layer before
# it by SplitSpec.from_sequential): module type → builder(module index, module).
TORCH_LAYERS: dict[type[torch.nn.Module], Callable[[int, torch.nn.Module], Layer]] = {
    torch.nn.Linear: Dense.from_module,
}


def layer_from_module(index: int, module: torch.nn.Module) -> Layer:
    """The layer torch module ``index`` of a Sequential stands for (not a ReLU)."""
    build = TORCH_LAYERS.get(type(module))
    if build is None:
        raise InputError(f"module {index} is a {type(module).__name__}; splitverify proves "
                         f"{', '.join(torch_layer_names())} and ReLU layers only")
    return build(index, module)


def layers_of_modules(modules: list[torch.nn.Module], first_index: int = 0) -> list[Layer]:
    """The layers a run of Sequential modules stands for, each ReLU folded into the layer
    before it (``first_index``: the first module's index in the Sequential, for errors)."""
    layers: list[Layer] = []
    for i, module in enumerate(modules, start=first_index):
        if isinstance(module, torch.nn.ReLU):
            if not layers or layers[-1].relu:
                raise InputError(f"module {i}: a ReLU must follow a "
                                 f"{' or '.join(torch_layer_names())}")
            layers[-1] = layers[-1].with_relu()
        else:
            layers.append(layer_from_module(i, module))
    return layers


def torch_layer_names() -> list[str]:
    return [module_type.__name__ for module_type in TORCH_LAYERS]
