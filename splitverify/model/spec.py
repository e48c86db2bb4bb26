"""A split model: a stack of layers (:mod:`.layers`) cut in two, with its batch and fixed-point
spec; built directly or from an ``nn.Sequential`` and a cut."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..errors import InputError
from ..quant import QuantSpec
from .layers import Conv2d, Dense, Layer, layers_and_output_image, layers_of_modules


@dataclass(frozen=True)
class SplitSpec:
    """The client's layers end at the cut, the server's end with the logits."""
    client: tuple[Layer, ...]
    server: tuple[Layer, ...]
    batch: int
    quant: QuantSpec = field(default_factory=QuantSpec)

    def __post_init__(self):
        if not self.client or not self.server:
            raise InputError("both halves need at least one Linear layer; move the cut")
        for name, half in (("client", self.client), ("server", self.server)):
            if not any(layer.parameter_shapes() for layer in half):
                raise InputError(f"the {name}'s half has no layer with parameters (a Linear or "
                                 "a Conv2d); move the cut")
        if self.batch < 1:
            raise InputError(f"batch must be ≥ 1, not {self.batch}")
        layers = self.client + self.server
        for prev, nxt in zip(layers, layers[1:]):
            if prev.n_out != nxt.n_in:
                raise InputError(f"layer sizes do not chain: {prev.n_out} outputs feed a layer "
                                 f"with {nxt.n_in} inputs")
        if self.server[-1].relu:
            raise InputError("the server's last layer gives the logits; it must not end in ReLU")
        if self.classes < 2:
            raise InputError("the model needs at least 2 output classes")
        for layer in layers:
            layer.check(self.quant, self.batch)

    @property
    def features(self) -> int:
        return self.client[0].n_in

    @property
    def cut_width(self) -> int:
        return self.client[-1].n_out

    @property
    def classes(self) -> int:
        return self.server[-1].n_out

    @classmethod
    def from_sequential(cls, model: torch.nn.Sequential, cut: int, batch: int,
                        quant_spec: QuantSpec | None = None, *,
                        input_shape: tuple[int, int, int] | None = None) -> "SplitSpec":
        """``model[:cut]`` is the client's half, ``model[cut:]`` the server's. Only the modules
        of :data:`~.layers.TORCH_LAYERS`, ReLU and the per-sample Flatten, a ReLU only right
        after such a layer, and the cut between layers (not between a layer and its ReLU).
        ``input_shape``: (channels, height, width) of a sample when the model starts with a
        Conv2d (data stays flat NCHW per sample)."""
        mods = list(model)
        if not 0 < cut < len(mods):
            raise InputError(f"cut {cut} must split the {len(mods)} modules into two non-empty "
                             "halves")
        if isinstance(mods[cut], torch.nn.ReLU):
            raise InputError(f"cut {cut} separates a {type(mods[cut - 1]).__name__} from its "
                             f"ReLU; cut after the ReLU ({cut + 1}) or before the "
                             f"{type(mods[cut - 1]).__name__} ({cut - 1})")
        client, image = layers_and_output_image(mods[:cut], input_shape=input_shape)
        halves = (client, layers_of_modules(mods[cut:], cut, image))
        return cls(tuple(halves[0]), tuple(halves[1]), batch, quant_spec or QuantSpec())

    @classmethod
    def refnet(cls, batch: int = 16, quant_spec: QuantSpec | None = None) -> "SplitSpec":
        """REFERENCE.md's RefNet: client Linear(64→32)+ReLU | server Linear(32→10)."""
        return cls((Dense(64, 32, True),), (Dense(32, 10, False),), batch,
                   quant_spec or QuantSpec())

    @classmethod
    def refcnn(cls, batch: int = 16, quant_spec: QuantSpec | None = None) -> "SplitSpec":
        """The reference CNN on the 8×8 digits: client Conv2d(1→4, 3×3, stride 2, padding 1) +
        ReLU + Flatten (4×4×4 = 64 activations) | server Linear(64→10). The stride keeps the
        server's circuit small: at stride 1 without padding (144 activations) server_step
        needs 251,969 constraints, just under the server's default limit of 2^18."""
        return cls((Conv2d(1, 4, 3, 2, 1, 8, 8, True),), (Dense(64, 10, False),), batch,
                   quant_spec or QuantSpec())


# The reference models by name (`--model` of demo and train): name → spec at a batch.
NAMED_MODELS = {"refnet": SplitSpec.refnet, "cnn": SplitSpec.refcnn}


def named_spec(name: str, batch: int = 16, quant_spec: QuantSpec | None = None) -> SplitSpec:
    build = NAMED_MODELS.get(name)
    if build is None:
        raise InputError(f"no reference model {name!r}; one of {', '.join(NAMED_MODELS)}")
    return build(batch, quant_spec)
