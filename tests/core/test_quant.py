"""The fixed-point spec and its integer reference (issue 3, first part): rounding semantics,
static bounds, and fixed-point RefNet training meeting REFERENCE.md's accuracy bar."""

from __future__ import annotations

import pytest
import torch

from splitverify import quant
from splitverify.errors import InputError
from splitverify.quant import QuantSpec
from splitverify.refnet import train_fixed, train_float, train_float_cnn
from splitverify.zk.curve import R


def test_rescale_is_floor_with_remainder_in_range():
    x = torch.tensor([-(1 << 16) - 1, -1, 0, 1, (1 << 16) + 5, -(3 << 16)], dtype=torch.int64)
    q, rem = quant.rescale(x, 16)
    assert q.tolist() == [-2, -1, 0, 0, 1, -3]
    assert all(0 <= r < (1 << 16) for r in rem.tolist())
    assert torch.equal(q * (1 << 16) + rem, x)


def test_encode_decode_and_field_embedding():
    spec = QuantSpec()
    v = torch.tensor([0.5, -0.25, 1.0])
    q = spec.encode(v)
    one = 1 << spec.frac_bits
    assert q.tolist() == [one >> 1, -(one >> 2), one]
    assert torch.allclose(spec.decode(q), v.double())
    assert quant.to_field(q, R) == [one >> 1, R - (one >> 2), one]


def test_bounds_are_checked():
    spec = QuantSpec()
    spec.check_no_wraparound(64, 16)
    with pytest.raises(InputError, match="value_bits"):
        QuantSpec(frac_bits=16, value_bits=64, lr_shift=6).check_no_wraparound(1 << 130, 16)
    with pytest.raises(InputError, match="outside"):
        spec.encode(torch.tensor([float(1 << 30)]))
    with pytest.raises(InputError, match="input_bits"):
        spec.encode(torch.tensor([4.0]), data=True)


def test_dense_forward_matches_float_within_rounding():
    spec = QuantSpec()
    g = torch.Generator().manual_seed(1)
    x, w, b = (torch.randn(*s, generator=g) * 0.5 for s in ((4, 6), (3, 6), (3,)))
    y, acc = quant.dense_forward(spec, spec.encode(x), spec.encode(w), spec.encode(b))
    assert torch.equal(y, torch.div(acc, spec.scale, rounding_mode="floor"))
    assert torch.allclose(spec.decode(y), (x @ w.T + b).double(), atol=1e-3)


def test_sgd_update_is_one_floor_division():
    spec = QuantSpec(frac_bits=16, value_bits=22, lr_num=3, lr_shift=6)   # shift 22
    w = torch.tensor([5, -5, 0, 100], dtype=torch.int64)
    grad = torch.tensor([(1 << 22) + 1, -1, -(1 << 23), 0], dtype=torch.int64)
    new = quant.sgd_update(spec, w, grad, spec.weight_update_shift)
    # step = floor(3·grad / 2^22): 3, -1, -6, 0
    assert new.tolist() == [2, -4, 6, 100]


def test_fixed_point_refnet_meets_the_accuracy_bar():
    """REFERENCE.md: within 2 points of float32 with the same seed, epochs and lr."""
    epochs, spec = 10, QuantSpec()
    float_acc = train_float(seed=0, epochs=epochs, lr=spec.lr)
    fixed_acc = train_fixed(seed=0, epochs=epochs, quant_spec=spec)
    assert float_acc > 0.85
    assert abs(float_acc - fixed_acc) <= 0.02, (float_acc, fixed_acc)


def test_fixed_point_cnn_meets_the_accuracy_bar():
    """The reference CNN (SplitSpec.refcnn): fixed point within 2 points of float32 (torch's
    conv2d and autograd) with the same seed, epochs, batch and lr (seconds: 10 epochs)."""
    epochs, spec = 10, QuantSpec()
    float_acc = train_float_cnn(seed=0, epochs=epochs, lr=spec.lr)
    fixed_acc = train_fixed(seed=0, epochs=epochs, quant_spec=spec, model_name="cnn")
    assert float_acc > 0.8
    assert abs(float_acc - fixed_acc) <= 0.02, (float_acc, fixed_acc)
