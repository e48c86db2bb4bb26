"""RefNet (and the reference CNN) on scikit-learn's digits (REFERENCE.md): data, and training
in float32 and in the fixed-point reference (proofs off), with the same seed, epochs, batch and
learning rate."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import model
from .model import Params, SplitSpec, encode_params
from .quant import QuantSpec

N_TRAIN = 1437
BATCH = 16


def load_digits_split() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Features scaled to [0, 1]; the first 1437 samples train, the last 360 test."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.data, dtype=torch.float64) / 16.0
    y = torch.tensor(data.target, dtype=torch.int64)
    return x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN:], y[N_TRAIN:]


@dataclass
class RefNetParams:
    w1: torch.Tensor  # 32×64
    b1: torch.Tensor
    w2: torch.Tensor  # 10×32
    b2: torch.Tensor


def init_params(seed: int) -> RefNetParams:
    g = torch.Generator().manual_seed(seed)
    l1, l2 = 1 / 64 ** 0.5, 1 / 32 ** 0.5
    return RefNetParams(torch.empty(32, 64).uniform_(-l1, l1, generator=g).double(),
                        torch.empty(32).uniform_(-l1, l1, generator=g).double(),
                        torch.empty(10, 32).uniform_(-l2, l2, generator=g).double(),
                        torch.empty(10).uniform_(-l2, l2, generator=g).double())


def train_float(seed: int, epochs: int, lr: float) -> float:
    """float32 RefNet with MSE on one-hot targets (gradient logits − onehot, as fixed point)."""
    xtr, ytr, xte, yte = load_digits_split()
    p = init_params(seed)
    w1, b1, w2, b2 = (t.float().clone() for t in (p.w1, p.b1, p.w2, p.b2))
    xtr, xte = xtr.float(), xte.float()
    for _ in range(epochs):
        for i in range(0, N_TRAIN - BATCH + 1, BATCH):
            x, y = xtr[i:i + BATCH], ytr[i:i + BATCH]
            z = x @ w1.T + b1
            h = torch.relu(z)
            logits = h @ w2.T + b2
            g = logits - torch.nn.functional.one_hot(y, 10).float()
            dh = (g @ w2) * (z > 0).float()
            w2 -= lr * (g.T @ h)
            b2 -= lr * g.sum(0)
            w1 -= lr * (dh.T @ x)
            b1 -= lr * dh.sum(0)
    logits = torch.relu(xte @ w1.T + b1) @ w2.T + b2
    return float((logits.argmax(1) == yte).float().mean())


def train_float_cnn(seed: int, epochs: int, lr: float) -> float:
    """float32 reference CNN (``SplitSpec.refcnn``) with torch's conv2d and autograd, the same
    MSE on one-hot targets (½·Σ(logits − onehot)², gradient logits − onehot) and plain SGD,
    from the float initial weights the fixed-point run encodes (``initial_params``)."""
    spec = SplitSpec.refcnn(BATCH)
    (conv,), (dense,) = spec.client, spec.server
    xtr, ytr, xte, yte = load_digits_split()
    w1, b1 = conv.init(torch.Generator().manual_seed(seed))
    w2, b2 = dense.init(torch.Generator().manual_seed(seed + 1))
    params = [t.float().clone().requires_grad_() for t in (w1, b1, w2, b2)]

    def logits_of(x: torch.Tensor) -> torch.Tensor:
        w1, b1, w2, b2 = params
        image = x.reshape(len(x), conv.in_channels, conv.height, conv.width)
        kernels = w1.reshape(conv.out_channels, conv.in_channels, conv.kernel, conv.kernel)
        h = torch.relu(torch.nn.functional.conv2d(image, kernels, b1, stride=conv.stride,
                                                  padding=conv.padding)).flatten(1)
        return h @ w2.T + b2

    xtr, xte = xtr.float(), xte.float()
    for _ in range(epochs):
        for i in range(0, N_TRAIN - BATCH + 1, BATCH):
            x, y = xtr[i:i + BATCH], ytr[i:i + BATCH]
            loss = 0.5 * ((logits_of(x) - torch.nn.functional.one_hot(y, 10).float()) ** 2).sum()
            grads = torch.autograd.grad(loss, params)
            with torch.no_grad():
                for p, g in zip(params, grads):
                    p -= lr * g
    with torch.no_grad():
        return float((logits_of(xte).argmax(1) == yte).float().mean())


def fixed_params(spec: SplitSpec, seed: int) -> tuple[Params, Params]:
    """RefNet's initial weights, encoded: (client half, server half)."""
    p = init_params(seed)
    return (encode_params(spec, spec.client, [(p.w1, p.b1)]),
            encode_params(spec, spec.server, [(p.w2, p.b2)]))


def initial_params(spec: SplitSpec, seed: int) -> tuple[Params, Params]:
    """(client, server) initial parameters: RefNet's own initialisation for RefNet, torch's
    Linear default for any other spec."""
    if spec == SplitSpec.refnet(batch=spec.batch, quant_spec=spec.quant):
        return fixed_params(spec, seed)
    return (model.init_params(spec.client, seed, spec.quant),
            model.init_params(spec.server, seed + 1, spec.quant))


def accuracy(spec: SplitSpec, client: Params, server: Params, x: torch.Tensor,
             y: torch.Tensor) -> float:
    """Test accuracy of the fixed-point model (the forward pass of both halves, any batch)."""
    full = SplitSpec(spec.client, spec.server, len(x), spec.quant)
    h = model.forward(full, spec.client, client, spec.quant.encode(x, data=True)).output
    logits = model.forward(full, spec.server, server, h).output
    return float((logits.argmax(1) == y).float().mean())


def train_fixed(seed: int, epochs: int, quant_spec: QuantSpec, model_name: str = "refnet"
                ) -> float:
    """The same training through the split step of ``splitverify.model`` (what the circuits
    prove): client forward, server step, client backward per batch (``model_name``: a
    reference model of ``splitverify.model.NAMED_MODELS``, its initial weights
    :func:`initial_params`)."""
    spec = model.named_spec(model_name, BATCH, quant_spec)
    xtr, ytr, xte, yte = load_digits_split()
    client, server = initial_params(spec, seed)
    qtr = quant_spec.encode(xtr, data=True)
    for _ in range(epochs):
        for i in range(0, N_TRAIN - BATCH + 1, BATCH):
            x, y = qtr[i:i + BATCH], ytr[i:i + BATCH]
            fwd = model.client_forward(spec, client, x, y)
            result = model.server_step(spec, server, fwd.output, y)
            server = result.backward.new_params
            client = model.client_backward(spec, client, fwd, result.gradient).new_params
    return accuracy(spec, client, server, xte, yte)
