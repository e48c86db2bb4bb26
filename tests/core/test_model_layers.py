"""The Layer interface (issue 16): what a layer type provides, the one map from torch modules to
layers, and the integer reference and the circuit generator reading layers only through it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch
from torch import nn

from splitverify.circuitgen import generator
from splitverify.circuitgen.emit import EMITTERS, dense, emitter_of
from splitverify.errors import InputError
from splitverify.keyorigin import spec_from_description
from splitverify.model import (TORCH_LAYERS, AvgPool2d, Conv2d, Dense, SplitSpec,
                               encode_params, init_params, layer_from_module)
from splitverify.quant import QuantSpec


def test_dense_declares_its_parameters_description_and_emitter():
    layer = Dense(4, 3, True)
    assert layer.parameter_shapes() == (("w", (3, 4)), ("b", (3,)))
    assert layer.parameter_count == 15
    assert layer.describe() == "4->3+relu" and Dense(3, 2, False).describe() == "3->2"
    assert Dense(4, 3, False).with_relu() == layer
    assert emitter_of(layer) is dense
    params = init_params((layer,), seed=0, quant_spec=QuantSpec())
    assert [tuple(t.shape) for t in params[0]] == [shape for _, shape in layer.parameter_shapes()]


def test_every_registered_layer_type_has_an_emitter():
    built = [layer_from_module(0, nn.Linear(4, 3)),
             layer_from_module(0, nn.Conv2d(1, 2, 3), (1, 5, 5)),
             layer_from_module(0, nn.AvgPool2d(2), (1, 4, 4))]
    assert {type(layer) for layer in built} == {build.__self__ for build in TORCH_LAYERS.values()}
    assert all(layer.emitter in EMITTERS for layer in built)


class MyLinear(nn.Linear):
    """A user's own module: not a layer until it is registered."""


def test_a_sequential_maps_onto_layers_through_the_one_registry(monkeypatch):
    net = nn.Sequential(MyLinear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    with pytest.raises(InputError, match="module 0 is a MyLinear; splitverify proves Linear, "
                                         "Conv2d, AvgPool2d, ReLU and Flatten layers only"):
        SplitSpec.from_sequential(net, cut=2, batch=2)
    monkeypatch.setitem(TORCH_LAYERS, MyLinear, Dense.from_module)
    spec = SplitSpec.from_sequential(net, cut=2, batch=2)
    assert spec.client == (Dense(4, 3, True),) and spec.server == (Dense(3, 2, False),)


@dataclass(frozen=True)
class UnwrittenLayer(Dense):
    """A layer type whose circuit emitter does not exist."""
    emitter: ClassVar[str] = "unwritten"


def test_a_layer_without_an_emitter_is_named():
    spec = SplitSpec((UnwrittenLayer(4, 3, True),), (Dense(3, 2, False),), batch=2)
    with pytest.raises(InputError, match="no circuit emitter 'unwritten' for UnwrittenLayer"):
        generator.generate(spec, "client_forward")


def test_parameters_of_the_wrong_shape_are_named():
    spec = SplitSpec((Dense(4, 3, True),), (Dense(3, 2, False),), batch=2)
    with pytest.raises(InputError, match=r"layer 0: expected w 3×4 and b 3, got \(4, 3\)"):
        encode_params(spec, spec.client, [(torch.zeros(4, 3), torch.zeros(3))])
    with pytest.raises(InputError, match="parameters for 1 layers, got 2"):
        encode_params(spec, spec.client, [(torch.zeros(3, 4), torch.zeros(3))] * 2)


@pytest.mark.parametrize("spec", [
    SplitSpec((Dense(4, 3, True),), (Dense(3, 2, False),), batch=2),
    SplitSpec((Dense(5, 4, True), Dense(4, 3, False)), (Dense(3, 4, True), Dense(4, 2, False)),
              batch=3, quant=QuantSpec(frac_bits=8)),
    SplitSpec.refnet(),
    SplitSpec((Conv2d(1, 2, 3, 1, 1, 4, 4, True),), (Conv2d(2, 2, 3, 2, 1, 4, 4, False),
                                                    Dense(8, 2, False)), batch=2),
    SplitSpec((Conv2d(1, 2, 3, 1, 1, 4, 4, True), AvgPool2d(2, 4, 4, 2, False)),
              (Dense(8, 2, False),), batch=2)],
    ids=["tiny", "deeper", "refnet", "conv", "pool"])
def test_a_model_description_reads_back_through_the_layer_types(spec):
    """A transcript names its model by generator.describe; the audit reads it back."""
    assert spec_from_description(generator.describe(spec)) == spec


def test_a_description_of_no_known_layer_is_named():
    text = generator.describe(SplitSpec.refnet()).replace("64->32+relu", "conv3x3->32")
    with pytest.raises(InputError, match="'conv3x3->32' describes no layer this version knows "
                                         r"\(Dense, Conv2d, AvgPool2d\)"):
        spec_from_description(text)
