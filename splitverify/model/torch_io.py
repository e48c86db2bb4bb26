"""A user's own half of the model and data: an ``nn.Sequential`` ↔ the spec's layers and
their fixed-point parameters, a model file, and a data file (NPZ or CSV).

A layer's torch parameters (``module.parameters()``) come in the order of its
:meth:`~.layers.Layer.parameter_shapes` (``nn.Linear``: weight, bias), so encoding and decoding
need no per-type code: :data:`~.layers.TORCH_LAYERS` stays the one map from modules to layers.

Model files are ``torch.save``-d ``nn.Sequential`` halves, read by torch's restricted unpickler
(``weights_only``) that accepts only ``nn.Sequential``, ``nn.ReLU`` and the modules of
:data:`~.layers.TORCH_LAYERS`: a model file cannot run code when it is loaded, and a user saves
their half with the one line they already know.
"""

from __future__ import annotations

import copy
import csv
import pickle
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from ..errors import InputError
from ..quant import QuantSpec
from .layers import TORCH_LAYERS, Layer, layers_of_modules, torch_layer_names
from .reference import Params

# the modules a model file may hold besides those of TORCH_LAYERS
_CONTAINER_MODULES = (torch.nn.Sequential, torch.nn.ReLU)


def half_layers(half: torch.nn.Sequential) -> tuple[Layer, ...]:
    """The layers of one half (each ReLU folded into the layer before it)."""
    if not isinstance(half, torch.nn.Sequential):
        raise InputError(f"a model half must be an nn.Sequential, not a {type(half).__name__}")
    layers = layers_of_modules(list(half))
    if not layers:
        raise InputError("the model half holds no layer: give it at least one "
                         f"{' or '.join(torch_layer_names())}")
    return tuple(layers)


def _layer_modules(half: torch.nn.Sequential) -> list[tuple[int, torch.nn.Module]]:
    return [(i, m) for i, m in enumerate(half) if not isinstance(m, torch.nn.ReLU)]


def encode_half(quant_spec: QuantSpec, half: torch.nn.Sequential) -> Params:
    """The half's own weights at the spec's fixed point; a value outside the range the circuits
    prove is refused, naming the module, the parameter and the value."""
    layers = half_layers(half)
    bound = (1 << quant_spec.value_bits) / quant_spec.scale
    params = []
    for (index, module), layer in zip(_layer_modules(half), layers):
        tensors = [p.detach().double() for p in module.parameters()]
        shapes = layer.parameter_shapes()
        encoded = []
        for (name, shape), tensor in zip(shapes, tensors, strict=True):
            if tuple(tensor.shape) != shape:
                raise InputError(f"module {index} ({module}): parameter {name} is "
                                 f"{tuple(tensor.shape)}, expected {shape}")
            q = torch.floor(tensor * quant_spec.scale).to(torch.int64)
            outside = (q >= 1 << quant_spec.value_bits) | (q < -(1 << quant_spec.value_bits))
            if bool(outside.any()):
                value = float(tensor[outside].flatten()[0])
                raise InputError(f"module {index} ({module}): parameter {name} holds {value:g}, "
                                 f"outside the fixed-point range [−{bound:g}, {bound:g}) "
                                 f"(value_bits {quant_spec.value_bits}); scale the weights "
                                 "down or raise value_bits")
            encoded.append(q)
        params.append(tuple(encoded))
    return params


def decode_half(quant_spec: QuantSpec, half: torch.nn.Sequential,
                params: Params) -> torch.nn.Sequential:
    """A copy of ``half`` holding ``params`` (fixed point) as its float weights."""
    trained = copy.deepcopy(half)
    modules = _layer_modules(trained)
    if len(modules) != len(params):
        raise InputError(f"the model half has {len(modules)} layers, the parameters "
                         f"{len(params)}")
    with torch.no_grad():
        for (_, module), layer_params in zip(modules, params):
            for target, value in zip(module.parameters(), layer_params, strict=True):
                target.copy_(quant_spec.decode(value).to(target.dtype))
    return trained


def load_half(path: str | Path) -> torch.nn.Sequential:
    """A ``torch.save``-d ``nn.Sequential`` half (see the module: no code runs on loading)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"model file {path} does not exist: save your half with "
                         "torch.save(nn.Sequential(...), PATH)")
    allowed = [*_CONTAINER_MODULES, *TORCH_LAYERS]
    try:
        with torch.serialization.safe_globals(allowed):
            half = torch.load(path, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"model file {path} does not load as a torch-saved nn.Sequential of "
                         f"{', '.join(t.__name__ for t in allowed[1:])} modules "
                         f"({first_line})") from exc
    if not isinstance(half, torch.nn.Sequential):
        raise InputError(f"model file {path} holds a {type(half).__name__}, not an "
                         "nn.Sequential half (torch.save the nn.Sequential itself, not its "
                         "state_dict)")
    half_layers(half)
    return half


@dataclass
class Dataset:
    """Float features (rows × features) and class labels; the test part may be absent."""
    x: torch.Tensor
    y: torch.Tensor
    x_test: torch.Tensor | None = None
    y_test: torch.Tensor | None = None
    source: str = "the data"           # where it came from, for errors

    def check(self, features: int, classes: int, quant_spec: QuantSpec) -> None:
        """Refuse data the model cannot take, naming its source and what does not fit."""
        source = self.source
        parts = [("", self.x, self.y)]
        if self.x_test is not None:
            parts.append(("test ", self.x_test, self.y_test))
        for what, x, y in parts:
            if x.ndim != 2 or x.shape[1] != features:
                raise InputError(f"{source}: the {what}features are {tuple(x.shape)}; the "
                                 f"model's first layer takes {features} per row")
            if y.ndim != 1 or len(y) != len(x):
                raise InputError(f"{source}: {len(x)} {what}rows but labels of shape "
                                 f"{tuple(y.shape)}; give one class index per row")
            if len(y) and (int(y.min()) < 0 or int(y.max()) >= classes):
                raise InputError(f"{source}: {what}labels lie in [{int(y.min())}, "
                                 f"{int(y.max())}]; the model has {classes} classes "
                                 f"(labels 0 … {classes - 1})")
            bound = (1 << quant_spec.input_bits) / quant_spec.scale
            if len(x) and float(x.abs().max()) >= bound:
                raise InputError(f"{source}: a {what}feature is {float(x.abs().max()):g} in "
                                 f"magnitude; the circuits take features in (−{bound:g}, "
                                 f"{bound:g}) (input_bits {quant_spec.input_bits}): scale the "
                                 "data")


def load_dataset(path: str | Path) -> Dataset:
    """``FILE.npz`` with arrays ``x`` (rows × features) and ``y`` (class indices), optionally
    ``x_test`` and ``y_test``; or ``FILE.csv``: one row per sample, the features then the class
    index in the last column (a first line that is not numbers is a header)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"data file {path} does not exist")
    if path.suffix == ".npz":
        return replace(_load_npz(path), source=f"data file {path}")
    if path.suffix == ".csv":
        return replace(_load_csv(path), source=f"data file {path}")
    raise InputError(f"data file {path}: give a .npz (arrays x, y) or a .csv (features, then "
                     "the label) file")


def _load_npz(path: Path) -> Dataset:
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as arrays:
            found = {name: arrays[name] for name in arrays.files}
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise InputError(f"data file {path} is not a readable .npz ({exc})") from exc
    missing = [name for name in ("x", "y") if name not in found]
    if missing:
        raise InputError(f"data file {path} lacks array(s) {', '.join(missing)}: save it with "
                         "numpy.savez(PATH, x=FEATURES, y=LABELS)")
    if ("x_test" in found) != ("y_test" in found):
        raise InputError(f"data file {path}: give both x_test and y_test, or neither")

    def features(name: str) -> torch.Tensor:
        return torch.as_tensor(found[name].astype("float64")).reshape(len(found[name]), -1)

    def labels(name: str) -> torch.Tensor:
        if found[name].dtype.kind not in "iu":
            raise InputError(f"data file {path}: {name} must hold integer class indices, not "
                             f"{found[name].dtype}")
        return torch.as_tensor(found[name].astype("int64"))
    test = ("x_test" in found)
    return Dataset(features("x"), labels("y"), features("x_test") if test else None,
                   labels("y_test") if test else None)


def _load_csv(path: Path) -> Dataset:
    rows = []
    with path.open(newline="") as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            if not row:
                continue
            try:
                rows.append([float(v) for v in row])
            except ValueError:
                if number == 1 and not rows:
                    continue                    # a header
                raise InputError(f"data file {path}, line {number}: not all numbers "
                                 f"({','.join(row)[:80]})") from None
    if not rows or len({len(r) for r in rows}) != 1 or len(rows[0]) < 2:
        raise InputError(f"data file {path}: give rows of equal length, the features then the "
                         "label")
    table = torch.tensor(rows, dtype=torch.float64)
    labels = table[:, -1]
    if not bool((labels == labels.round()).all()):
        raise InputError(f"data file {path}: the last column must hold integer class indices")
    return Dataset(table[:, :-1], labels.to(torch.int64))


def fixed_point_batches(quant_spec: QuantSpec, batch: int,
                        data: Iterable[tuple[torch.Tensor, torch.Tensor]]
                        ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(x, y)`` batches (a DataLoader, a list, a generator) as the protocol takes them:
    float features quantized by the spec (int64 ones are taken as fixed point already), rows
    flattened, labels int64. A batch of another size is refused: the circuits prove ``batch``
    rows (DataLoader(..., drop_last=True) drops a short last batch)."""
    for number, item in enumerate(data):
        try:
            x, y = item
        except (TypeError, ValueError):
            raise InputError(f"batch {number}: expected an (x, y) pair, got "
                             f"{type(item).__name__}") from None
        x, y = torch.as_tensor(x), torch.as_tensor(y)
        if len(x) != batch:
            raise InputError(f"batch {number} has {len(x)} rows; the circuits prove batches of "
                             f"{batch} (DataLoader(..., batch_size={batch}, drop_last=True))")
        x = x.reshape(batch, -1)
        if x.is_floating_point():
            x = quant_spec.encode(x, data=True)
        elif x.dtype != torch.int64:
            raise InputError(f"batch {number}: features of dtype {x.dtype}; give floats "
                             "(quantized here) or int64 fixed point")
        yield x, y.to(torch.int64)


def epochs_of(dataset: Dataset, batch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The training rows in order, batch by batch, epoch after epoch (a short tail dropped)."""
    if len(dataset.x) < batch:
        raise InputError(f"the data has {len(dataset.x)} rows, fewer than one batch ({batch})")
    while True:
        for i in range(0, len(dataset.x) - batch + 1, batch):
            yield dataset.x[i:i + batch], dataset.y[i:i + batch]


def split_spec(client_half: torch.nn.Sequential,
               server_layers: torch.nn.Sequential | tuple[Layer, ...], batch: int,
               quant_spec: QuantSpec | None = None):
    """The spec of a client half given as a module and the server half's layers (a module of
    the same shape, whose weights are not read, or the layers themselves)."""
    from .spec import SplitSpec

    server = (half_layers(server_layers) if isinstance(server_layers, torch.nn.Module)
              else tuple(server_layers))
    return SplitSpec(half_layers(client_half), server, batch, quant_spec or QuantSpec())
