"""The split model and the integer reference of one split training step.

* :mod:`.layers` — the :class:`Layer` interface and its types (:class:`Dense`,
  :class:`Conv2d`, :class:`AvgPool2d`, listed in :data:`LAYER_TYPES`), and the one map from
  torch modules to layers (:data:`TORCH_LAYERS`).
* :mod:`.spec` — :class:`SplitSpec`: the layers cut in two, the batch, the fixed-point spec.
* :mod:`.reference` — :func:`client_forward`, :func:`server_step`, :func:`client_backward` on
  int64 tensors: what training runs and the circuits prove.
* :mod:`.torch_io` — a user's own ``nn.Sequential`` halves ↔ layers and fixed-point parameters,
  model files (``torch.save``-d halves, loaded without running code), NPZ/CSV data, and
  ``(x, y)`` batches from any iterable or DataLoader.
"""

from __future__ import annotations

from .layers import (LAYER_TYPES, TORCH_LAYERS, AvgPool2d, Conv2d, Dense, Layer, LayerParams,
                     layer_from_description, layer_from_module)
from .reference import (Backward, Forward, Params, ServerResult, average_params, backward,
                        check_batch, client_backward, client_forward, encode_params, forward,
                        init_params, onehot, server_step)
from .spec import NAMED_MODELS, SplitSpec, named_spec

__all__ = ["LAYER_TYPES", "NAMED_MODELS", "named_spec", "TORCH_LAYERS", "AvgPool2d",
           "Backward", "Conv2d", "Dense", "Forward", "Layer", "LayerParams", "Params",
           "ServerResult", "SplitSpec", "average_params", "backward", "check_batch",
           "client_backward",
           "client_forward", "encode_params", "forward", "init_params", "layer_from_description", "layer_from_module",
           "onehot", "server_step"]
