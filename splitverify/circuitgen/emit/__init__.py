"""One Circom emitter per layer type, each with its constraint cost model beside it.

An emitter module provides, for its layer type (``Layer.emitter`` names it here):

* ``INCLUDES`` — the template files its pieces instantiate;
* ``challenge_powers(layer)`` — how many powers of the Freivalds challenge its checks read;
* ``forward_check(m, i, layer, x, acc)`` — constrain layer ``i``'s claimed accumulator;
* ``weight_gradient(m, i, layer, dy, x)`` — constrain its parameter gradients and return one
  :class:`~.base.ParameterUpdate` per parameter (in ``parameter_shapes`` order);
* ``input_gradient_check(m, i, layer, dy, gx)`` — constrain its input-gradient accumulator;
* for a layer that claims no accumulators (``Layer.claims_accumulators`` false: a pool),
  ``forward_sum(m, i, layer, x)`` and ``input_gradient_sum(m, i, layer, dy)`` instead compute
  them in the circuit (and return them) in place of the claimed inputs and their checks.

The generator (:mod:`..generator`) wires what every layer shares: the accumulators as claimed
inputs, rescales, ReLUs, SGD updates, commitments and the challenge.
"""

from __future__ import annotations

from types import ModuleType

from ...errors import InputError
from ...model import Layer
from . import conv, dense, pool

EMITTERS: dict[str, ModuleType] = {"dense": dense, "conv": conv, "pool": pool}


def emitter_of(layer: Layer) -> ModuleType:
    emitter = EMITTERS.get(layer.emitter)
    if emitter is None:
        raise InputError(f"no circuit emitter {layer.emitter!r} for {type(layer).__name__} "
                         f"layers; known: {sorted(EMITTERS)}")
    return emitter
