"""What the generator and every layer emitter build with: circom tensors, how a tensor enters a
commitment, what one parameter's SGD update needs, and the constraint cost of Poseidon (the
commitments and the Fiat–Shamir transcript)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

# Constraints of each template after circom's --O2 (linear constraints are substituted away):
# checked against compiled templates by tests/core/circuitgen/test_circuit_costs.py.
POSEIDON_PARTIAL_ROUNDS = [56, 57, 56, 60, 60, 63, 64, 63, 60, 66, 60, 65, 70, 60, 64, 68]


def poseidon_cost(arity: int) -> int:
    """3 constraints per S-box (x^5): all t in the 8 full rounds, one per partial round."""
    t = arity + 1
    return 3 * (8 * t + POSEIDON_PARTIAL_ROUNDS[t - 2]) - 3


def chain_cost(n: int) -> int:
    cost, pos = poseidon_cost(min(n, 12)), min(n, 12)
    while pos < n:
        take = min(11, n - pos)
        cost += poseidon_cost(take + 1)
        pos += take
    return cost


@dataclass(frozen=True)
class Tensor:
    """A circom array (or array expression prefix) and its shape; ``flat`` indexes it by one
    loop variable ``k``."""
    name: str
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    def flat(self, k: str = "k") -> str:
        if len(self.shape) == 1:
            return f"{self.name}[{k}]"
        rows, cols = self.shape
        return f"{self.name}[{k} \\ {cols}][{k} % {cols}]"


@dataclass(frozen=True)
class Slots:
    """How a tensor enters a commitment: ``value + offset`` in [0, 2^width)."""
    tensor: Tensor
    width: int
    offset: int


@dataclass(frozen=True)
class Packed:
    """A tensor that enters a commitment as field elements already packed (the circuit never
    decodes it): ``size`` slots of ``width`` bits."""
    elements: tuple[str, ...]
    size: int
    width: int


@dataclass(frozen=True)
class ParameterUpdate:
    """One parameter's SGD update as a layer emitter wires it: ``size`` entries, entry ``k``'s
    gradient accumulator ``grad(k)`` (a circom expression), rescaled by ``shift``; ``claim``
    puts the rescale remainders into the transcript (when the accumulator is a claimed input)."""
    name: str
    size: int
    shift: int
    grad: Callable[[str], str]
    claim: bool
