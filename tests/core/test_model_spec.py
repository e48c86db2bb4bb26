"""SplitSpec: built from an nn.Sequential and a cut, with clear errors for what it cannot prove."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from splitverify.commit import Segment, commit, pack, poseidon, tag
from splitverify.errors import InputError
from splitverify.model import Dense, SplitSpec


def test_refnet_from_sequential():
    net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    assert SplitSpec.from_sequential(net, cut=2, batch=16) == SplitSpec.refnet()


@pytest.mark.parametrize("net,cut,match", [
    (nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)), 1, "separates a Linear"),
    (nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)), 3, "non-empty"),
    (nn.Sequential(nn.ReLU(), nn.Linear(4, 3), nn.Linear(3, 2)), 2, "must follow a Linear"),
    (nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)), 2, "Linear and ReLU"),
    (nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2, bias=False)), 1, "need a bias"),
    (nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2), nn.ReLU()), 1, "must not end in ReLU"),
    (nn.Sequential(nn.Linear(4, 3), nn.Linear(2, 2)), 1, "do not chain"),
])
def test_unsupported_models_are_named(net, cut, match):
    with pytest.raises(InputError, match=match):
        SplitSpec.from_sequential(net, cut=cut, batch=4)


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
