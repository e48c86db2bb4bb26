"""The split model and the integer reference of one split training step.

A :class:`SplitSpec` is a stack of dense layers (``Linear``, optionally followed by ``ReLU``)
cut in two: the client's layers end at the cut, the server's end with the logits. The three
functions below are *the* computation of a step, on int64 tensors, in the order the protocol
runs it: :func:`client_forward`, :func:`server_step`, :func:`client_backward`. Training runs
them, and the circuits prove exactly them (golden tests compare bit for bit).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from . import quant
from .errors import InputError
from .quant import QuantSpec


@dataclass(frozen=True)
class Dense:
    n_in: int
    n_out: int
    relu: bool


@dataclass(frozen=True)
class SplitSpec:
    client: tuple[Dense, ...]
    server: tuple[Dense, ...]
    batch: int
    quant: QuantSpec = field(default_factory=QuantSpec)

    def __post_init__(self):
        if not self.client or not self.server:
            raise InputError("both halves need at least one Linear layer; move the cut")
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
            if layer.n_in < 2 or layer.n_out < 2:
                raise InputError("every Linear layer needs at least 2 inputs and 2 outputs")
            self.quant.check_no_wraparound(layer.n_in, self.batch)

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
                        quant_spec: QuantSpec | None = None) -> "SplitSpec":
        """``model[:cut]`` is the client's half, ``model[cut:]`` the server's. Only Linear
        (with bias) and ReLU modules, a ReLU only right after a Linear, and the cut between
        layers (not between a Linear and its ReLU)."""
        mods = list(model)
        if not 0 < cut < len(mods):
            raise InputError(f"cut {cut} must split the {len(mods)} modules into two non-empty "
                             "halves")
        if isinstance(mods[cut], torch.nn.ReLU):
            raise InputError(f"cut {cut} separates a Linear from its ReLU; cut after the ReLU "
                             f"({cut + 1}) or before the Linear ({cut - 1})")
        halves: list[list[Dense]] = [[], []]
        for i, mod in enumerate(mods):
            side = halves[0 if i < cut else 1]
            if isinstance(mod, torch.nn.Linear):
                if mod.bias is None:
                    raise InputError(f"module {i}: Linear layers need a bias")
                side.append(Dense(mod.in_features, mod.out_features, False))
            elif isinstance(mod, torch.nn.ReLU):
                if not side or side[-1].relu:
                    raise InputError(f"module {i}: a ReLU must follow a Linear")
                side[-1] = Dense(side[-1].n_in, side[-1].n_out, True)
            else:
                raise InputError(f"module {i} is a {type(mod).__name__}; splitverify proves "
                                 "Linear and ReLU layers only")
        return cls(tuple(halves[0]), tuple(halves[1]), batch, quant_spec or QuantSpec())

    @classmethod
    def refnet(cls, batch: int = 16, quant_spec: QuantSpec | None = None) -> "SplitSpec":
        """REFERENCE.md's RefNet: client Linear(64→32)+ReLU | server Linear(32→10)."""
        return cls((Dense(64, 32, True),), (Dense(32, 10, False),), batch,
                   quant_spec or QuantSpec())


# Parameters of one half: a (W, b) pair per layer, W out×in, int64 at scale 2^frac_bits.
Params = list[tuple[torch.Tensor, torch.Tensor]]


def encode_params(spec: SplitSpec, layers: tuple[Dense, ...],
                  float_params: list[tuple[torch.Tensor, torch.Tensor]]) -> Params:
    if len(float_params) != len(layers):
        raise InputError(f"expected parameters for {len(layers)} layers, got {len(float_params)}")
    out = []
    for i, (layer, (w, b)) in enumerate(zip(layers, float_params)):
        if tuple(w.shape) != (layer.n_out, layer.n_in) or tuple(b.shape) != (layer.n_out,):
            raise InputError(f"layer {i}: expected W {layer.n_out}×{layer.n_in} and b "
                             f"{layer.n_out}, got {tuple(w.shape)} and {tuple(b.shape)}")
        out.append((spec.quant.encode(w), spec.quant.encode(b)))
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


def forward(spec: SplitSpec, layers: tuple[Dense, ...], params: Params,
            x: torch.Tensor) -> Forward:
    inputs, accs, pres = [], [], []
    a = x
    for layer, (w, b) in zip(layers, params):
        inputs.append(a)
        y, acc = quant.dense_forward(spec.quant, a, w, b)
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


def backward(spec: SplitSpec, layers: tuple[Dense, ...], params: Params, fwd: Forward,
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
        w, b = params[i]
        dy = g * quant.relu_mask(fwd.pre[i]) if layers[i].relu else g
        grad_y[i] = dy
        wacc[i] = dy.T @ fwd.inputs[i]
        if i > 0 or input_grad:
            g, xacc[i] = quant.input_gradient(q, dy, w)
        new[i] = (quant.sgd_update(q, w, wacc[i], q.weight_update_shift),
                  quant.sgd_update(q, b, dy.sum(dim=0), q.lr_shift))
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


def check_batch(spec: SplitSpec, x: torch.Tensor, labels: torch.Tensor) -> None:
    if tuple(x.shape) != (spec.batch, spec.features):
        raise InputError(f"data batch must be {spec.batch}×{spec.features}, got {tuple(x.shape)}")
    if tuple(labels.shape) != (spec.batch,):
        raise InputError(f"labels must be {spec.batch} class indices, got {tuple(labels.shape)}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= spec.classes):
        raise InputError(f"labels must lie in [0, {spec.classes})")
    spec.quant.check_range(x, "the data batch", spec.quant.input_bits, "input_bits")


def client_forward(spec: SplitSpec, params: Params, x: torch.Tensor,
                   labels: torch.Tensor) -> Forward:
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


def init_params(layers: tuple[Dense, ...], seed: int, quant_spec: QuantSpec) -> Params:
    """Uniform(±1/√fan-in) weights and biases (torch's Linear default), encoded."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for d in layers:
        bound = 1 / d.n_in ** 0.5
        w = torch.empty(d.n_out, d.n_in).uniform_(-bound, bound, generator=g).double()
        b = torch.empty(d.n_out).uniform_(-bound, bound, generator=g).double()
        out.append((quant_spec.encode(w), quant_spec.encode(b)))
    return out
