"""SplitSpec: built from an nn.Sequential and a cut, with clear errors for what it cannot prove."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from splitverify.commit import Segment, commit, pack, poseidon, tag
from splitverify.errors import InputError
from splitverify.model import (AvgPool2d, Conv2d, Dense, SplitSpec,
                               layer_from_description)


def test_refnet_from_sequential():
    net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    assert SplitSpec.from_sequential(net, cut=2, batch=16) == SplitSpec.refnet()


@pytest.mark.parametrize("net,cut,match", [
    (nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)), 1, "separates a Linear"),
    (nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)), 3, "non-empty"),
    (nn.Sequential(nn.ReLU(), nn.Linear(4, 3), nn.Linear(3, 2)), 2, "must follow a Linear"),
    (nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)), 2,
     "module 1 is a Tanh; splitverify proves Linear, Conv2d, AvgPool2d, ReLU and Flatten "
     "layers only"),
    (nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2, bias=False)), 1, "need a bias"),
    (nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2), nn.ReLU()), 1, "must not end in ReLU"),
    (nn.Sequential(nn.Linear(4, 3), nn.Linear(2, 2)), 1, "do not chain"),
])
def test_unsupported_models_are_named(net, cut, match):
    with pytest.raises(InputError, match=match):
        SplitSpec.from_sequential(net, cut=cut, batch=4)


def test_a_convolutional_client_half_is_accepted():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 10))
    spec = SplitSpec.from_sequential(net, cut=3, batch=2, input_shape=(1, 8, 8))
    assert spec.client == (Conv2d(1, 4, 3, 1, 0, 8, 8, True),)
    assert spec.features == 64 and spec.cut_width == 144
    # a Conv2d on the server reads the client's output image (no Flatten at the cut)
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Conv2d(2, 2, 3, stride=2),
                        nn.Flatten(), nn.Linear(2, 2))
    spec = SplitSpec.from_sequential(net, cut=2, batch=2, input_shape=(1, 3, 3))
    assert spec.server[0] == Conv2d(2, 2, 3, 2, 0, 3, 3, False)


@pytest.mark.parametrize("net,shape,match", [
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2, 2)), (1, 5, 5),
     "module 1 is a MaxPool2d; splitverify proves Linear, Conv2d, AvgPool2d, ReLU and "
     "Flatten layers only"),
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(18, 2)), None,
     "input image's shape is unknown; give input_shape"),
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(0), nn.Linear(18, 2)), (1, 5, 5),
     r"only Flatten\(start_dim=1, end_dim=-1\)"),
    (nn.Sequential(nn.Conv2d(1, 2, 3, dilation=2), nn.Flatten(), nn.Linear(2, 2)), (1, 5, 5),
     "no dilation or groups"),
    (nn.Sequential(nn.Conv2d(2, 2, 3), nn.Flatten(), nn.Linear(18, 2)), (1, 5, 5),
     "expects 2 channels, its input has 1"),
    (nn.Sequential(nn.Conv2d(1, 2, 3, stride=3), nn.Flatten(), nn.Linear(8, 2)), (1, 7, 7),
     "leaves the last input rows or columns unread"),
])
def test_unsupported_convolutional_models_are_named(net, shape, match):
    with pytest.raises(InputError, match=match):
        SplitSpec.from_sequential(net, cut=2, batch=2, input_shape=shape)


def test_a_pooled_convolutional_client_half_is_accepted():
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
                        nn.Linear(64, 10))
    spec = SplitSpec.from_sequential(net, cut=4, batch=2, input_shape=(1, 8, 8))
    assert spec.client == (Conv2d(1, 4, 3, 1, 1, 8, 8, True), AvgPool2d(4, 8, 8, 2, False))
    assert spec.cut_width == 64 and spec.client[1].rescale_shift(spec.quant) == 2
    pool = AvgPool2d(4, 8, 8, 4, True)
    assert layer_from_description(pool.describe()) == pool and pool.shift == 4


@pytest.mark.parametrize("net,shape,match", [
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.AvgPool2d(3), nn.Flatten(), nn.Linear(8, 2)), (1, 8, 8),
     "kernel 3: the division by kernel² must be a power-of-two shift"),
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.AvgPool2d(2, stride=1), nn.Flatten(),
                   nn.Linear(50, 2)), (1, 8, 8), "stride = kernel, no padding"),
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(8, 2)), (1, 7, 7),
     "multiples of the kernel"),
    (nn.Sequential(nn.Linear(4, 8), nn.AvgPool2d(2), nn.Linear(2, 2)), None,
     "AvgPool2d must follow a Conv2d"),
])
def test_unsupported_pools_are_named(net, shape, match):
    with pytest.raises(InputError, match=match):
        SplitSpec.from_sequential(net, cut=2, batch=2, input_shape=shape)


def test_a_half_without_parameters_is_refused():
    with pytest.raises(InputError, match="the client's half has no layer with parameters"):
        SplitSpec((AvgPool2d(1, 4, 4, 2, False),), (Dense(4, 2, False),), batch=2)


def test_bad_batches_are_rejected():
    from splitverify import model
    spec = SplitSpec((Dense(4, 3, True),), (Dense(3, 2, False),), batch=2)
    params = [(torch.zeros(3, 4, dtype=torch.int64), torch.zeros(3, dtype=torch.int64))]
    with pytest.raises(InputError, match="2×4"):
        model.client_forward(spec, params, torch.zeros(3, 4, dtype=torch.int64),
                             torch.zeros(3, dtype=torch.int64))
    with pytest.raises(InputError, match=r"\[0, 2\)"):
        model.client_forward(spec, params, torch.zeros(2, 4, dtype=torch.int64),
                             torch.tensor([0, 5]))


def test_poseidon_is_circomlibs():
    # circomlib's test vector: poseidon([1, 2])
    assert poseidon([1, 2]) == \
        7853200120776062878684798364095072458815029376092732009249414926327459813530


def test_commitment_layout():
    assert pack([1, 2, 3], 4) == [1 | 2 << 4 | 3 << 8]
    assert len(pack(list(range(23)), 23)) == 3            # 11 slots of 23 bits per element
    a = commit("data", [Segment.signed([1, -1], 3)], salt=9)
    assert a != commit("data", [Segment.signed([1, -1], 4)], salt=9)   # width is in the tag
    assert a != commit("weights", [Segment.signed([1, -1], 3)], salt=9)
    assert a != commit("data", [Segment.signed([1, -1], 3)], salt=10)
    assert tag("data", [(2, 4)]) != tag("data", [(4, 2)])
    with pytest.raises(InputError, match="does not fit"):
        commit("data", [Segment.signed([8], 3)], salt=0)
