"""The integer reference of one split training step.

The three functions below are *the* computation of a step, on int64 tensors, in the order the
protocol runs it: :func:`client_forward`, :func:`server_step`, :func:`client_backward`. Training
runs them, and the circuits prove exactly them (golden tests compare bit for bit). Each layer's
own arithmetic is its type's (:mod:`.layers`); the ReLU folded into a layer, the loss and the
order of a pass are here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import quant
from ..errors import InputError
from ..quant import QuantSpec
from .layers import Layer
from .spec import SplitSpec


# Parameters of one half: per layer its parameters in its parameter_shapes order (Dense: W
# out×in, b), int64 at scale 2^frac_bits.
Params = list[tuple[torch.Tensor, ...]]


def encode_params(spec: SplitSpec, layers: tuple[Layer, ...],
                  float_params: list[tuple[torch.Tensor, ...]]) -> Params:
    if len(float_params) != len(layers):
        raise InputError(f"expected parameters for {len(layers)} layers, got {len(float_params)}")
    out = []
    for i, (layer, tensors) in enumerate(zip(layers, float_params)):
        expected = [shape for _, shape in layer.parameter_shapes()]
        got = [tuple(t.shape) for t in tensors]
        if got != expected:
            names = " and ".join(f"{name} {'×'.join(map(str, shape))}"
                                 for name, shape in layer.parameter_shapes())
            raise InputError(f"layer {i}: expected {names}, got {' and '.join(map(str, got))}")
        out.append(tuple(spec.quant.encode(t) for t in tensors))
    return out


def onehot(labels: torch.Tensor, classes: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(labels, classes).to(torch.int64)


@dataclass
class Forward:
    """A stack's forward pass: the input of every layer, its accumulator (x·Wᵀ + b·2^s,
    before rescale) and its pre-activation; ``output`` is the last layer's (ReLU'd) output."""
    inputs: list[torch.Tensor]
    acc: list[torch.Tensor]
    pre: list[torch.Tensor]
    output: torch.Tensor


def forward(spec: SplitSpec, layers: tuple[Layer, ...], params: Params,
            x: torch.Tensor) -> Forward:
    inputs, accs, pres = [], [], []
    a = x
    for layer, layer_params in zip(layers, params):
        inputs.append(a)
        y, acc = layer.forward(spec.quant, a, layer_params)
        accs.append(acc)
        pres.append(y)
        a = quant.relu(y) if layer.relu else y
    return Forward(inputs, accs, pres, a)


@dataclass
class Backward:
    """A stack's backward pass and SGD update, last layer first in the circuit's terms but
    stored in layer order: per layer the output gradient dY (after the ReLU mask), the weight
    gradient accumulator dYᵀ·X, the input-gradient accumulator dY·W (None for the client's
    first layer, whose input is data) and the updated parameters."""
    grad_y: list[torch.Tensor]
    weight_grad_acc: list[torch.Tensor]
    input_grad_acc: list[torch.Tensor | None]
    new_params: Params
    input_grad: torch.Tensor | None


def backward(spec: SplitSpec, layers: tuple[Layer, ...], params: Params, fwd: Forward,
             grad_out: torch.Tensor, *, input_grad: bool) -> Backward:
    """Back-propagate ``grad_out`` (gradient of the stack's output, scale 2^s) and update."""
    q = spec.quant
    n = len(layers)
    grad_y: list = [None] * n
    wacc: list = [None] * n
    xacc: list = [None] * n
    new: list = [None] * n
    g = grad_out
    for i in reversed(range(n)):
        layer = layers[i]
        dy = g * quant.relu_mask(fwd.pre[i]) if layer.relu else g
        grad_y[i] = dy
        wacc[i] = layer.weight_gradient(dy, fwd.inputs[i])
        if i > 0 or input_grad:
            g, xacc[i] = layer.input_gradient(q, dy, params[i])
        new[i] = layer.update(q, params[i], wacc[i], dy)
    return Backward(grad_y, wacc, xacc, new, g if input_grad else None)


@dataclass
class ServerResult:
    forward: Forward
    logits: torch.Tensor
    loss: int
    backward: Backward

    @property
    def gradient(self) -> torch.Tensor:
        """dL/d(cut activations), what the server sends back."""
        return self.backward.input_grad


def check_batch(spec: SplitSpec, x: torch.Tensor, labels: torch.Tensor | None) -> None:
    """``labels`` None: the client holds none (--labels server names its rows by sample id)."""
    if tuple(x.shape) != (spec.batch, spec.features):
        raise InputError(f"data batch must be {spec.batch}×{spec.features}, got {tuple(x.shape)}")
    spec.quant.check_range(x, "the data batch", spec.quant.input_bits, "input_bits")
    if labels is None:
        return
    if tuple(labels.shape) != (spec.batch,):
        raise InputError(f"labels must be {spec.batch} class indices, got {tuple(labels.shape)}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= spec.classes):
        raise InputError(f"labels must lie in [0, {spec.classes})")


def client_forward(spec: SplitSpec, params: Params, x: torch.Tensor,
                   labels: torch.Tensor | None) -> Forward:
    check_batch(spec, x, labels)
    return forward(spec, spec.client, params, x)


def server_step(spec: SplitSpec, params: Params, activations: torch.Tensor,
                labels: torch.Tensor) -> ServerResult:
    if tuple(activations.shape) != (spec.batch, spec.cut_width):
        raise InputError(f"activations must be {spec.batch}×{spec.cut_width}, got "
                         f"{tuple(activations.shape)}")
    spec.quant.check_range(activations, "the received activations")
    fwd = forward(spec, spec.server, params, activations)
    grad, loss = quant.mse_onehot(spec.quant, fwd.output, labels)
    bwd = backward(spec, spec.server, params, fwd, grad, input_grad=True)
    return ServerResult(fwd, fwd.output, loss, bwd)


def client_backward(spec: SplitSpec, params: Params, fwd: Forward,
                    gradient: torch.Tensor) -> Backward:
    if tuple(gradient.shape) != (spec.batch, spec.cut_width):
        raise InputError(f"the gradient must be {spec.batch}×{spec.cut_width}, got "
                         f"{tuple(gradient.shape)}")
    spec.quant.check_range(gradient, "the received gradient")
    return backward(spec, spec.client, params, fwd, gradient, input_grad=False)


def average_params(spec: SplitSpec, layers: tuple[Layer, ...], halves: list[Params]) -> Params:
    """SplitFed-V1's aggregation of K ≥ 2 clients' halves (each ``layers``' parameters):
    entry by entry floor(Σ / K) (:func:`quant.floor_mean`); the Aggregate circuit proves it."""
    if len(halves) < 2:
        raise InputError(f"an average needs the halves of at least 2 clients, got {len(halves)}")
    shapes = [[tuple(shape) for _, shape in layer.parameter_shapes()] for layer in layers]
    for j, half in enumerate(halves):
        if [[tuple(t.shape) for t in tensors] for tensors in half] != shapes:
            raise InputError(f"client {j}'s half does not have the parameter shapes of "
                             f"{len(layers)} layers {shapes}")
        for tensors in half:
            for t in tensors:
                spec.quant.check_range(t, f"client {j}'s parameter")
    return [tuple(quant.floor_mean(torch.stack([half[i][p] for half in halves]))[0]
                  for p in range(len(halves[0][i])))
            for i in range(len(layers))]


def init_params(layers: tuple[Layer, ...], seed: int, quant_spec: QuantSpec) -> Params:
    """Each layer's default initialisation (torch's, e.g. Uniform(±1/√fan-in) for Linear),
    encoded."""
    g = torch.Generator().manual_seed(seed)
    return [tuple(quant_spec.encode(t) for t in layer.init(g)) for layer in layers]
